"""Bidirectional Monte Carlo against exact log-likelihoods: the closed form of a linear-Gaussian
model and of a model with a global latent, and enumeration of a small sigmoid belief net."""

import pyro
import pyro.distributions as dist
import pytest
import torch

from ppdgm.inference.evaluation import Annealing, bdmc, sigmoid_schedule
from ppdgm.models import SigmoidBeliefNet
from ppdgm.models.linear_gaussian import LinearGaussian, LinearGaussianConfig

POINTS = {"num_samples": 6}


def test_with_the_exact_posterior_as_guide_both_bounds_are_log_p_x_at_any_number_of_steps():
    # f_0 = p(z | x) makes every f_beta the posterior times p(x)^beta: each weight is exactly
    # p(x) forward and 1 / p(x) in reverse, whatever the transitions do.
    lg = LinearGaussian(LinearGaussianConfig(x_dim=3, z_dim=1, obs_scale=0.7))
    with torch.no_grad():
        precision = 1 + (lg.weight.T @ lg.weight).squeeze() / 0.49
        lg.enc_weight.copy_(lg.weight.T / 0.49 / precision)
        lg.enc_bias.copy_(-(lg.bias @ lg.weight) / 0.49 / precision)
        lg.enc_scale = precision ** -0.5 * torch.ones(1)
    for steps in (1, 7):
        result = bdmc(lg.model, lg.guide, num_steps=steps, num_chains=4, kwargs=POINTS, seed=3)
        exact = lg.log_marginal(result.x).detach()
        assert result.per_point and result.lower.shape == (6,)
        torch.testing.assert_close(result.lower, exact, atol=1e-4, rtol=0)
        torch.testing.assert_close(result.upper, exact, atol=1e-4, rtol=0)


def test_the_linear_gaussian_log_likelihood_lies_between_bounds_whose_gap_shrinks():
    lg = LinearGaussian(LinearGaussianConfig(x_dim=3, z_dim=2, obs_scale=1.0))
    gaps = []
    for steps in (3, 30, 120):
        result = bdmc(lg.model, num_steps=steps, num_chains=32, kwargs=POINTS, seed=1)
        exact = lg.log_marginal(result.x).detach()
        # Each bound holds in expectation; the mean over points keeps the check sharp while
        # the Monte Carlo noise of single points (about 0.1 nat at 32 chains) averages out.
        assert (result.lower - exact).mean() < 0.1, steps
        assert (result.upper - exact).mean() > -0.1, steps
        gaps.append(result.gap.mean().item())
    assert gaps[0] > 3 * gaps[1] > 0 and gaps[2] < gaps[1], gaps
    assert result.acceptance is not None and 0.5 < result.acceptance < 0.95


def test_a_global_latent_makes_the_whole_data_set_one_unit():
    def model(x=None):
        mu = pyro.sample("mu", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        with pyro.plate("data", 4):
            return pyro.sample("x", dist.Normal(mu, 1.0).to_event(1), obs=x)

    result = bdmc(model, num_steps=100, num_chains=128, seed=2)
    # Each coordinate's column of x is N(0, I + 1 1^T).
    exact = dist.MultivariateNormal(torch.zeros(4), torch.eye(4) + 1).log_prob(result.x.T).sum()
    assert not result.per_point and result.lower.shape == (1,)
    # 128 runs of log-weight sd about 0.4: each bound's Monte Carlo error is about 0.04.
    assert result.lower.item() - 0.15 < exact.item() < result.upper.item() + 0.15
    assert abs(result.gap.item()) < 0.3


def test_an_enumerable_sigmoid_belief_net_lies_between_its_bounds():
    pyro.set_rng_seed(0)
    sbn = SigmoidBeliefNet(x_shape=(6,), layers=(2, 3))
    with torch.no_grad():
        for p in sbn.parameters():
            p.normal_(0, 1.5)  # a peaked posterior, not the near-uniform one of a fresh net
    loose = bdmc(sbn.model, num_steps=2, num_chains=16, kwargs=POINTS, seed=1)
    tight = bdmc(sbn.model, num_steps=40, num_chains=16, kwargs=POINTS, seed=1)
    exact = sbn.exact_log_marginal(tight.x)
    assert tight.acceptance is None  # Gibbs alone: no real-valued latent
    assert (tight.lower - exact).mean() < 0.03 and (tight.upper - exact).mean() > -0.03
    assert ((tight.lower - 0.15 < exact) & (exact < tight.upper + 0.15)).all()
    assert loose.gap.mean() > 2 * tight.gap.mean()


def test_the_guide_may_start_the_runs_and_must_sample_the_latents():
    lg = LinearGaussian(LinearGaussianConfig(x_dim=3, z_dim=1))
    result = bdmc(lg.model, lg.guide, num_steps=5, num_chains=4, kwargs=POINTS)
    assert torch.isfinite(result.lower).all() and torch.isfinite(result.upper).all()
    with pytest.raises(ValueError, match="guide: it samples none of the model's latent"):
        bdmc(lg.model, lambda x, num_samples=None: None, num_steps=2, kwargs=POINTS)


def test_the_global_random_state_is_left_as_it_was():
    lg = LinearGaussian(LinearGaussianConfig(x_dim=3, z_dim=1))
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    first = bdmc(lg.model, num_steps=3, num_chains=4, kwargs=POINTS, seed=4)
    assert torch.equal(torch.rand(3), before)
    again = bdmc(lg.model, num_steps=3, num_chains=4, kwargs=POINTS, seed=4)
    assert torch.equal(first.lower, again.lower) and torch.equal(first.upper, again.upper)


def test_the_sigmoid_schedule_rises_from_zero_to_one():
    betas = sigmoid_schedule(10)
    assert betas[0] == 0 and betas[-1] == 1 and (betas.diff() > 0).all()
    # Denser at both ends than in the middle.
    assert betas.diff()[0] < betas.diff()[5] > betas.diff()[-1]


def test_a_latent_neither_real_nor_enumerable_is_refused_by_name():
    def model(x=None):
        rate = pyro.sample("rate", dist.Gamma(2.0, 1.0))
        with pyro.plate("data", 3):
            return pyro.sample("x", dist.Poisson(rate), obs=x)

    with pytest.raises(ValueError, match="latent site 'rate' has support"):
        bdmc(model, num_steps=2)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_steps": 0}, "num_steps: expected an int >= 1"),
    ({"num_chains": 1.5}, "num_chains: expected an int"),
    ({"step_size": -1.0}, "step_size: expected a finite number > 0"),
    ({"target_accept": 1.0}, r"target_accept: expected a number in \(0, 1\)"),
    ({"seed": -1}, r"seed: expected an int in \[0, 2\*\*32\)"),
    ({"args": [1]}, "args: expected a tuple"),
    ({"guide": "q"}, "guide: expected a Pyro program"),
])
def test_bad_arguments_are_refused_in_one_line(kwargs, message):
    lg = LinearGaussian(LinearGaussianConfig(x_dim=3, z_dim=1))
    with pytest.raises((TypeError, ValueError), match=message):
        bdmc(lg.model, **kwargs)


def test_annealing_refuses_a_model_without_latents():
    def model(x=None):
        with pyro.plate("data", 2):
            return pyro.sample("x", dist.Normal(0.0, 1.0), obs=x)

    trace = pyro.poutine.trace(model).get_trace(torch.zeros(2))
    with pytest.raises(ValueError, match="model: it has no latent sample site"):
        Annealing(model, None, torch.zeros(2), trace, (), {}, leapfrog_steps=1)
