"""Ancestral sampling against closed-form prior and prior-predictive moments."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from ppdgm.diagnostics import to_inference_data
from ppdgm.inference.sampling import AncestralSampler, ancestral_samples
from ppdgm.models import VAE, SBNConfig, SigmoidBeliefNet

S = 20_000


def _within(estimate: torch.Tensor, truth: float, sd: float, n: int = S) -> bool:
    """Whether a Monte-Carlo mean is within 5 standard errors of the truth."""
    return abs(estimate.item() - truth) < 5 * sd / math.sqrt(n)


def normal_model():
    z = pyro.sample("z", dist.Normal(1.5, 2.0))
    return pyro.sample("x", dist.Normal(z, 0.5))


def test_normal_prior_and_prior_predictive_moments():
    sampler = AncestralSampler(normal_model, S)
    draws = sampler()
    assert sampler.vectorized is True
    z, x = draws["z"], draws["x"]
    assert z.shape == x.shape == (S,)
    assert _within(z.mean(), 1.5, 2.0) and _within(x.mean(), 1.5, math.sqrt(4.25))
    # Var z = 4 and Var x = 4 + 0.25 (sd of a sample variance of a normal: var * sqrt(2 / n)).
    assert _within(z.var(), 4.0, 4.0 * math.sqrt(2))
    assert _within(x.var(), 4.25, 4.25 * math.sqrt(2))
    # Cov(z, x) = Var z = 4: x - z is the likelihood's noise alone, N(0, 0.25), independent of z.
    assert _within((x - z).var(), 0.25, 0.25 * math.sqrt(2))
    assert abs(torch.corrcoef(torch.stack([z, x - z]))[0, 1].item()) < 5 / math.sqrt(S)


def scalar_only_model():
    # float(z) only works on one draw at a time: not vectorizable.
    z = pyro.sample("z", dist.Normal(0.0, 1.0))
    pyro.sample("x", dist.Normal(float(z) * 2.0, 1.0))


def test_a_model_that_cannot_be_vectorized_is_looped():
    sampler = AncestralSampler(scalar_only_model, 2000)
    draws = sampler()
    assert sampler.vectorized is False
    assert draws["x"].shape == (2000,)
    assert _within(draws["x"].var(), 5.0, 5.0 * math.sqrt(2), n=2000)  # 4 Var z + 1
    with pytest.raises(ValueError, match="one element tensors"):
        AncestralSampler(scalar_only_model, 10, parallel=True)()
    looped = AncestralSampler(normal_model, 10, parallel=False)
    looped()
    assert looped.vectorized is False


def test_vae_prior_draws_through_its_data_plate(device):
    vae = VAE(x_shape=(1, 4, 4), z_dim=2, hidden=(8,)).to(device)
    draws = ancestral_samples(vae.model, 4000, None, num_samples=3)
    assert draws["z"].device.type == draws["x"].device.type == device.type
    assert draws["z"].shape == (4000, 3, 2) and draws["x"].shape == (4000, 3, 1, 4, 4)
    z = draws["z"].reshape(-1, 2).cpu()
    for j in range(2):
        assert _within(z[:, j].mean(), 0.0, 1.0, n=z.shape[0])
        assert _within(z[:, j].var(), 1.0, math.sqrt(2), n=z.shape[0])
    assert set(draws["x"].unique().cpu().tolist()) <= {0.0, 1.0}
    only_z = ancestral_samples(vae.model, 5, None, num_samples=3, return_sites=["z"])
    assert list(only_z) == ["z"]


def test_sbn_top_layer_follows_its_prior():
    sbn = SigmoidBeliefNet(SBNConfig(x_shape=(6,), layers=(3,)))
    with torch.no_grad():
        sbn.top_logits.copy_(torch.tensor([-2.0, 0.0, 1.0]))
    draws = ancestral_samples(sbn.model, 10_000, None, num_samples=1)
    p = torch.sigmoid(torch.tensor([-2.0, 0.0, 1.0]))
    mean = draws["z1"].reshape(-1, 3).mean(0)
    for j in range(3):
        assert _within(mean[j], p[j].item(), math.sqrt(p[j] * (1 - p[j])), n=10_000)


def test_draws_convert_to_one_chain_of_inference_data():
    draws = ancestral_samples(normal_model, 50)
    idata = to_inference_data(prior={"z": draws["z"]}, prior_predictive={"x": draws["x"]})
    assert dict(idata.prior.sizes) == {"chain": 1, "draw": 50}
    assert torch.equal(torch.from_numpy(idata.prior["z"].values[0]), draws["z"])
    assert torch.equal(torch.from_numpy(idata.prior_predictive["x"].values[0]), draws["x"])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"num_samples": 0}, ValueError, "num_samples:"),
    ({"num_samples": 2.0}, TypeError, "num_samples:"),
    ({"model": "m"}, TypeError, "model:"),
    ({"return_sites": "z"}, TypeError, "return_sites:"),
    ({"return_sites": ["y"]}, ValueError, "return_sites: the model has no sample site"),
    ({"parallel": "yes"}, TypeError, "parallel:"),
])
def test_inputs_are_checked(kwargs, error, message):
    args = {"model": normal_model, "num_samples": 3, **kwargs}
    with pytest.raises(error, match=message):
        ancestral_samples(args.pop("model"), args.pop("num_samples"), **args)
