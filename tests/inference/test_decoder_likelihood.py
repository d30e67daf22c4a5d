"""AIS log-likelihoods of given data and of a decoder under a Gaussian observation model, against
the closed form of a linear decoder (probabilistic PCA) and enumeration of a small SBN."""

import pyro
import pyro.distributions as dist
import pytest
import torch

from ppdgm.inference.evaluation import ais_log_marginal, decoder_log_likelihood
from ppdgm.models import SigmoidBeliefNet

WEIGHT = torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 0.8]])
BIAS = torch.tensor([0.2, -0.1, 0.0])


def linear(z):
    return z @ WEIGHT.T + BIAS


def simulate(n, scale, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g)
    return linear(z) + scale * torch.randn(n, 3, generator=g)


def exact(x, scale):
    cov = WEIGHT @ WEIGHT.T + scale**2 * torch.eye(3)
    return dist.MultivariateNormal(BIAS, cov).log_prob(x)


def test_a_linear_decoder_gets_its_closed_form_and_the_validation_data_choose_its_scale():
    x, held_out = simulate(6, 0.5, seed=0), simulate(6, 0.5, seed=1)
    result = decoder_log_likelihood(linear, x, z_dim=2, validation=held_out,
                                    scales=(0.1, 0.5, 2.0), num_steps=100, num_chains=32,
                                    check_points=4)
    assert result.scale == 0.5 and set(result.validation) == {0.1, 0.5, 2.0}
    assert result.validation[0.5] > max(result.validation[0.1], result.validation[2.0])
    # Each point's Monte Carlo error is about 0.05 nat at 32 runs.
    assert (result.per_point - exact(x, 0.5)).abs().max() < 0.2
    assert abs(result.log_px.mean - exact(x, 0.5).mean().item()) < 0.08
    assert result.check is not None and result.check.lower.shape == (4,)
    summary = result.summary()
    assert summary["scale"] == 0.5 and summary["bdmc"]["units"] == 4


def test_ais_of_given_data_approaches_the_enumerated_log_likelihood_of_a_sigmoid_belief_net():
    pyro.set_rng_seed(0)
    sbn = SigmoidBeliefNet(x_shape=(6,), layers=(2, 3))
    with torch.no_grad():
        for p in sbn.parameters():
            p.normal_(0, 1.5)
    x = (torch.rand(5, 6, generator=torch.Generator().manual_seed(2)) < 0.5).float()  # not simulated
    estimate = ais_log_marginal(sbn.model, x, num_steps=60, num_chains=32)
    assert estimate.per_point and estimate.acceptance is None
    assert (estimate.log_px - sbn.exact_log_marginal(x)).abs().max() < 0.1


@pytest.mark.parametrize("kwargs, message", [
    ({"x": [1.0]}, "x: expected a tensor of points"),
    ({"validation": None}, "validation: expected held-out points shaped like x"),
    ({"scales": (0.5, -1.0)}, "scales: expected positive numbers"),
    ({"scale": -1.0}, "scale: expected a positive number or None"),
    ({"scale": 0.5, "check_points": -1}, "check_points: expected an int >= 0"),
    ({"decoder": "g"}, "decoder: expected a Pyro program"),
])
def test_bad_arguments_are_refused_in_one_line(kwargs, message):
    arguments = {"decoder": linear, "x": simulate(2, 0.5, 0), "z_dim": 2,
                 "validation": simulate(2, 0.5, 1), "num_steps": 2, **kwargs}
    with pytest.raises((TypeError, ValueError), match=message):
        decoder_log_likelihood(**arguments)


def test_ais_of_given_data_refuses_what_is_not_a_tensor():
    with pytest.raises(TypeError, match="x: expected a tensor of data"):
        ais_log_marginal(lambda x: None, [1.0])
