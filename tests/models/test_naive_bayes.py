"""Naive Bayes against closed forms: scikit-learn's fits, enumeration of the label, 2^D images."""

import itertools

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO
from sklearn.naive_bayes import BernoulliNB, GaussianNB

from ppdgm.inference.objectives.em import posterior_by_enumeration
from ppdgm.models.naive_bayes import LABEL, NaiveBayes, NaiveBayesConfig
from ppdgm.recipes.generative_discriminative import semi_supervised_em


def _f64(array):
    return torch.as_tensor(array, dtype=torch.float64)


def _binary_data(n=60, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    p = torch.rand(k, d, generator=g)
    return torch.bernoulli(p[y], generator=g), y


def _class_prior(y, k, a):
    counts = torch.bincount(y, minlength=k).double()
    return ((counts + a) / (counts.sum() + k * a)).numpy()


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_bernoulli_fit_is_scikit_learns(alpha):
    x, y = _binary_data()
    nb = NaiveBayes(NaiveBayesConfig(x_dim=5, classes=3, pseudo_count=alpha))
    nb.fit(x, y)
    sk = BernoulliNB(alpha=alpha, class_prior=_class_prior(y, 3, alpha)).fit(x.numpy(), y.numpy())
    torch.testing.assert_close(nb.loc.sigmoid().double(), _f64(sk.feature_log_prob_).exp(),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(nb.class_log_posterior(x).double(),
                               _f64(sk.predict_log_proba(x.numpy())), rtol=1e-4, atol=1e-4)


def test_maximum_likelihood_is_the_class_means():
    x, y = _binary_data(n=300)
    nb = NaiveBayes(NaiveBayesConfig(x_dim=5, classes=3, pseudo_count=0.0))
    nb.fit(x, y)
    means = torch.stack([x[y == c].mean(0) for c in range(3)])
    torch.testing.assert_close(nb.loc.sigmoid(), means.clamp(1e-12, 1 - 1e-12), atol=1e-6, rtol=0)
    torch.testing.assert_close(nb.class_logits.exp(), torch.full((3,), 1 / 3), atol=1e-6, rtol=0)


def test_gaussian_fit_is_scikit_learns():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(90) % 3
    x = torch.randn(90, 4, generator=g) + y.unsqueeze(1).float()
    nb = NaiveBayes(NaiveBayesConfig(x_dim=4, classes=3, likelihood="gaussian",
                                     pseudo_count=0.0, var_smoothing=1e-2))
    nb.fit(x, y)
    sk = GaussianNB(var_smoothing=1e-2).fit(x.numpy(), y.numpy())
    torch.testing.assert_close(nb.loc.double(), _f64(sk.theta_), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(nb.log_scale.exp().square().double(), _f64(sk.var_),
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(nb.class_log_posterior(x).double(),
                               _f64(sk.predict_log_proba(x.numpy())), rtol=1e-4, atol=1e-4)


def test_pyro_enumeration_of_the_label_is_bayes_rule():
    x, y = _binary_data()
    nb = NaiveBayes(NaiveBayesConfig(x_dim=5, classes=3))
    nb.fit(x, y)
    by_hand = []
    for k in range(3):  # log p(x, y = k) from the model's own trace with the label observed
        trace = pyro.poutine.trace(nb.model).get_trace(x, torch.full((60,), k))
        trace.compute_log_prob()
        by_hand.append(trace.nodes["x"]["log_prob"] + trace.nodes[LABEL]["log_prob"])
    expected = torch.softmax(torch.stack(by_hand, -1), -1)
    torch.testing.assert_close(posterior_by_enumeration(nb.model, x, LABEL), expected)
    torch.testing.assert_close(nb.class_log_posterior(x).exp(), expected)


def test_log_marginal_sums_to_one_over_every_image():
    x, y = _binary_data(d=4)
    nb = NaiveBayes(NaiveBayesConfig(x_dim=4, classes=3))
    nb.fit(x[:, :4], y)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    assert nb.log_marginal(images).logsumexp(0).exp().item() == pytest.approx(1.0, abs=1e-6)


def test_exact_posterior_guide_makes_the_elbo_log_px():
    x, y = _binary_data()
    nb = NaiveBayes(NaiveBayesConfig(x_dim=5, classes=3))
    nb.fit(x, y)
    for _ in range(3):  # every draw of the label gives the same value: the bound is tight
        loss = Trace_ELBO().loss(nb.model, nb.guide, x)
        assert loss == pytest.approx(-nb.log_marginal(x).sum().item(), rel=1e-5)


def test_labelled_svi_reaches_the_closed_form():
    x, y = _binary_data(n=300)
    nb = NaiveBayes(NaiveBayesConfig(x_dim=5, classes=3, pseudo_count=0.0))
    svi = pyro.infer.SVI(nb.model, nb.guide, pyro.optim.Adam({"lr": 0.1}), Trace_ELBO())
    for _ in range(600):
        svi.step(x, y)
    closed = NaiveBayes(NaiveBayesConfig(x_dim=5, classes=3, pseudo_count=0.0))
    closed.fit(x, y)
    torch.testing.assert_close(nb.loc.sigmoid(), closed.loc.sigmoid(), atol=5e-3, rtol=0)


def test_semi_supervised_em_never_lowers_its_objective():
    x, y = _binary_data(n=200, seed=3)
    nb = NaiveBayes(NaiveBayesConfig(x_dim=5, classes=3))
    nb.fit(x[:12], y[:12])
    trace = semi_supervised_em(nb, x[:12], y[:12], x[12:], iterations=25, tol=0.0)
    assert len(trace) == 26
    assert all(b >= a - 1e-4 * abs(a) for a, b in zip(trace, trace[1:]))
    assert trace[-1] > trace[0]


def test_sample_draws_from_the_class_conditionals():
    nb = NaiveBayes(NaiveBayesConfig(x_dim=3, classes=2, pseudo_count=0.0))
    nb.fit(torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), torch.tensor([0, 1]))
    draws = nb.sample(50)
    assert draws.shape == (50, 3)
    assert {tuple(r) for r in draws.tolist()} <= {(1.0, 1.0, 0.0), (0.0, 0.0, 1.0)}


@pytest.mark.parametrize("field, value, message", [
    ("likelihood", "poisson", "likelihood"), ("classes", 1, "classes"),
    ("pseudo_count", -1.0, "pseudo_count"), ("var_smoothing", "big", "var_smoothing"),
])
def test_bad_config_is_named(field, value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        NaiveBayes(NaiveBayesConfig(x_dim=3, **{field: value}))


def test_bad_input_is_named():
    nb = NaiveBayes(NaiveBayesConfig(x_dim=3, classes=2))
    with pytest.raises(ValueError, match="y: expected labels in"):
        nb.fit(torch.zeros(2, 3), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="y: expected int64"):
        nb.fit(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="Bernoulli likelihood needs values"):
        nb.fit(torch.full((2, 3), 0.5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="y: expected labels of shape"):
        nb.model(torch.zeros(2, 3), torch.tensor([0]))
