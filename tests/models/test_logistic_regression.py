"""Logistic regression against closed forms: scikit-learn's L2 fit, its log joint, and NUTS
against importance sampling from the prior."""

import math

import pyro
import pytest
import torch
from pyro.infer import MCMC, NUTS, Trace_ELBO
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from ppdgm.models.logistic_regression import LogisticRegression, LogisticRegressionConfig
from ppdgm.recipes.generative_discriminative import fit_logistic_regression


def _f64(array):
    return torch.as_tensor(array, dtype=torch.float64)


def _data(n=120, d=4, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    logits = x @ torch.randn(k, d, generator=g).T
    return x, torch.distributions.Categorical(logits=logits).sample()


def test_map_by_the_engine_is_l2_logistic_regression():
    x, y = _data()
    model = fit_logistic_regression(x, y, classes=3, steps=800, lr=0.05, prior_scale=0.7,
                                    bias_prior_scale=1e4)
    sk = SkLogisticRegression(C=0.7**2, tol=1e-10, max_iter=10_000).fit(x.numpy(), y.numpy())
    torch.testing.assert_close(model.weight_loc.detach().double(), _f64(sk.coef_),
                               atol=2e-3, rtol=0)
    bias = model.bias_loc.detach().double()
    torch.testing.assert_close(bias - bias.mean(), _f64(sk.intercept_ - sk.intercept_.mean()),
                               atol=2e-3, rtol=0)


def test_log_joint_is_the_closed_form():
    x, y = _data(n=10)
    model = LogisticRegression(LogisticRegressionConfig(x_dim=4, classes=3, prior_scale=2.0,
                                                        bias_prior_scale=3.0))
    trace = pyro.poutine.trace(model.model).get_trace(x, y)
    w, b = trace.nodes["weight"]["value"], trace.nodes["bias"]["value"]
    expected = (torch.log_softmax(x @ w.T + b, -1).gather(1, y.unsqueeze(1)).sum()
                + torch.distributions.Normal(0.0, 2.0).log_prob(w).sum()
                + torch.distributions.Normal(0.0, 3.0).log_prob(b).sum())
    assert trace.log_prob_sum().item() == pytest.approx(expected.item(), rel=1e-6)


def test_nuts_posterior_mean_matches_importance_sampling():
    # Two classes, one feature: four parameters, whose posterior mean importance sampling from
    # the prior (10^6 draws) gets to about 0.01.
    g = torch.Generator().manual_seed(2)
    x = torch.randn(12, 1, generator=g)
    y = (x[:, 0] + 0.5 * torch.randn(12, generator=g) > 0).long()
    model = LogisticRegression(LogisticRegressionConfig(x_dim=1, classes=2, bias_prior_scale=1.0))
    mcmc = MCMC(NUTS(model.model), num_samples=400, warmup_steps=200, disable_progbar=True)
    mcmc.run(x, y)
    nuts_w = mcmc.get_samples()["weight"][:, :, 0]  # (S, 2)
    w = torch.randn(1_000_000, 2, generator=g)
    b = torch.randn(1_000_000, 2, generator=g)
    logits = x[:, 0] * w.unsqueeze(-1) + b.unsqueeze(-1)  # (S, 2, N)
    log_lik = torch.log_softmax(logits, 1).gather(1, y.expand(len(w), 1, -1)).sum((1, 2))
    weights = torch.softmax(log_lik, 0)
    is_mean = (weights.unsqueeze(1) * w).sum(0)
    spread = (nuts_w.std(0) / math.sqrt(len(nuts_w) / 4)).max().item()  # ESS ~ S / 4 at worst
    assert (nuts_w.mean(0) - is_mean).abs().max().item() < 4 * spread + 0.02


def test_normal_guide_trains_and_shrinks_its_loss():
    x, y = _data(n=200)
    model = LogisticRegression(LogisticRegressionConfig(x_dim=4, classes=3, guide="normal"))
    svi = pyro.infer.SVI(model.model, model.guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    first = sum(svi.step(x, y) for _ in range(10)) / 10
    for _ in range(300):
        svi.step(x, y)
    last = sum(svi.step(x, y) for _ in range(10)) / 10
    assert last < first - 50
    assert (model.predict(x) == y).float().mean() > 0.7


def test_bad_input_is_named():
    model = LogisticRegression(LogisticRegressionConfig(x_dim=2, classes=2))
    with pytest.raises(ValueError, match="x: logistic regression models p"):
        model.model(None)
    with pytest.raises(ValueError, match="y: expected labels of shape"):
        model.model(torch.zeros(3, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="x: expected shape"):
        model.predict(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="guide"):
        LogisticRegression(LogisticRegressionConfig(guide="laplace"))
    with pytest.raises(ValueError, match="prior_scale"):
        LogisticRegression(LogisticRegressionConfig(prior_scale=0))
