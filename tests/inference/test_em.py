"""EM on mixtures: the enumerated E-step is the exact posterior, the closed-form M-step is a
stationary point of Q, and the data log-likelihood never decreases."""

import pytest
import torch

from ppdgm.data import load_dataset
from ppdgm.inference.objectives.em import (
    enumerate_joint,
    expectation_maximization,
    posterior_by_enumeration,
)
from ppdgm.models.mixture import BernoulliMixture, GaussianMixture, MixtureConfig


def _digits(n=300):
    return load_dataset("digits-binarized").train[:n].reshape(n, -1)


def _grid(n=1000):
    return load_dataset("grid25", num_train=n).train


@pytest.mark.parametrize("cls, data", [(BernoulliMixture, _digits), (GaussianMixture, _grid)])
def test_enumerated_e_step_is_the_exact_posterior(cls, data):
    x = data()
    model = cls(MixtureConfig(x_dim=x.shape[1], components=5))
    torch.testing.assert_close(posterior_by_enumeration(model.model, x, "c"),
                               model.responsibilities(x).detach())
    torch.testing.assert_close(torch.logsumexp(enumerate_joint(model.model, x, "c"), -1),
                               model.log_marginal(x))


@pytest.mark.parametrize("cls, data", [(BernoulliMixture, _digits), (GaussianMixture, _grid)])
def test_closed_form_m_step_is_a_stationary_point_of_q(cls, data):
    x = data()
    model = cls(MixtureConfig(x_dim=x.shape[1], components=5))
    resp = posterior_by_enumeration(model.model, x, "c")
    model.m_step(x, resp)
    q = (resp * enumerate_joint(model.model, x, "c")).sum()
    grads = torch.autograd.grad(q, list(model.parameters()))
    # Clamped coordinates (pixels a component never turns on) sit on the boundary; the rest of
    # the gradient vanishes.
    for g in grads:
        assert g.abs().max().item() < 1e-2 * x.shape[0]
    assert max(g.abs().median().item() for g in grads) < 1e-3


@pytest.mark.parametrize(
    "cls, data, m_step",
    [(BernoulliMixture, _digits, "closed-form"), (GaussianMixture, _grid, "closed-form"),
     (GaussianMixture, _grid, "gradient")],
)
def test_log_likelihood_never_decreases(cls, data, m_step):
    x = data()
    model = cls(MixtureConfig(x_dim=x.shape[1], components=10))
    result = expectation_maximization(model, x, iterations=40, tol=None, m_step=m_step)
    ll = torch.tensor(result.log_likelihood, dtype=torch.float64)
    assert result.iterations == 40
    assert bool((ll[1:] >= ll[:-1] - 1e-5 * ll.abs().max()).all()), ll
    assert ll[-1] > ll[0] + 1.0


def test_gaussian_mixture_finds_well_separated_clusters():
    torch.manual_seed(0)
    centres = torch.tensor([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    x = (centres.repeat_interleave(200, 0) + 0.3 * torch.randn(600, 2))
    model = GaussianMixture(MixtureConfig(x_dim=2, components=3))
    model.initialize(x, seed=0)
    expectation_maximization(model, x, iterations=100)
    found = model.loc.detach()
    distances = torch.cdist(centres, found).min(dim=1).values
    assert distances.max().item() < 0.1
    assert torch.softmax(model.weight_logits, -1).detach().min().item() > 0.3


def test_bad_arguments_are_named():
    model = BernoulliMixture(MixtureConfig(x_dim=4, components=2))
    x = model.sample(5)
    with pytest.raises(ValueError, match="m_step"):
        expectation_maximization(model, x, m_step="newton")
    with pytest.raises(ValueError, match="site: the model has no sample site 'z'"):
        posterior_by_enumeration(model.model, x, "z")
    with pytest.raises((TypeError, ValueError), match="iterations"):
        expectation_maximization(model, x, iterations=0)
