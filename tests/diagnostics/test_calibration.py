"""Simulation-based calibration against closed-form posteriors: the exact guide passes at the
nominal rate, a guide too narrow, a biased one and ranks off by one fail."""

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

from ppdgm.diagnostics.calibration import JOINT, sbc
from ppdgm.diagnostics.uniformity import ecdf_uniformity_test
from ppdgm.models import VAE

N_OBS, PRIOR_SD, NOISE_SD = 4, 1.0, 1.0
POST_PRECISION = 1 / PRIOR_SD**2 + N_OBS / NOISE_SD**2


def model(x=None):
    mu = pyro.sample("mu", dist.Normal(torch.zeros(2), PRIOR_SD).to_event(1))
    with pyro.plate("data", N_OBS):
        return pyro.sample("x", dist.Normal(mu, NOISE_SD).to_event(1), obs=x)


def posterior_guide(scale=1.0, shift=0.0):
    """The closed-form posterior of ``mu``, its sd multiplied by ``scale`` and its mean moved
    by ``shift`` posterior sds."""
    sd = POST_PRECISION ** -0.5

    def guide(x):
        mean = x.sum(-2) / NOISE_SD**2 / POST_PRECISION
        pyro.sample("mu", dist.Normal(mean + shift * sd, scale * sd).to_event(1))
    return guide


def test_the_exact_posterior_passes_at_about_the_nominal_rate():
    rejected = [not all(sbc(model, posterior_guide(), num_simulations=100, seed=seed)
                        .calibrated.values()) for seed in range(12)]
    # Two sites at level 0.05 each: about 10 % of runs reject one; 12 runs rejecting more than
    # 4 happens with probability < 1 %.
    assert sum(rejected) <= 4, rejected


@pytest.mark.parametrize("scale, shift", [(0.5, 0.0), (1.0, 0.5), (2.0, 0.0)])
def test_a_guide_too_narrow_biased_or_too_wide_fails(scale, shift):
    result = sbc(model, posterior_guide(scale, shift), num_simulations=200, seed=3)
    assert not result.calibrated["mu"], result.summary()
    assert result.ranks["mu"].shape == (200, 2) and result.ranks[JOINT].shape == (200, 1)


def test_ranks_off_by_one_fail():
    result = sbc(model, posterior_guide(), num_simulations=400, num_draws=3, seed=5)
    ranks = result.ranks["mu"][:, 0]
    assert ecdf_uniformity_test(ranks, 3).calibrated
    assert not ecdf_uniformity_test(np.minimum(ranks + 1, 3), 3).calibrated


def test_the_uniformity_test_holds_its_level_and_its_band_is_simultaneous():
    rng = np.random.default_rng(0)
    tests = [ecdf_uniformity_test(rng.integers(0, 20, size=50), 19, seed=1) for _ in range(400)]
    rate = np.mean([not t.calibrated for t in tests])
    assert 0.02 <= rate <= 0.09, rate  # 0.05 within sampling error of 400 tests
    for t in tests:  # rejected exactly when the ECDF leaves the band somewhere
        outside = np.any((t.counts < t.lower) | (t.counts > t.upper))
        assert outside == (not t.calibrated) or abs(t.p_value - t.alpha) < 0.01


def test_an_amortized_encoder_is_ranked_site_by_site_without_a_refit():
    pyro.set_rng_seed(0)
    vae = VAE(x_shape=(6,), z_dim=2, hidden=(8,))
    state = torch.get_rng_state()
    result = sbc(vae.model, vae.guide, num_simulations=30, num_draws=9,
                 kwargs={"num_samples": 1}, seed=0)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random stream is left alone
    assert set(result.ranks) == {"z", JOINT} and result.ranks["z"].shape == (30, 2)
    assert result.ranks["z"].min() >= 0 and result.ranks["z"].max() <= 9
    assert set(result.summary()["z"]) == {"calibrated", "p_value", "coordinates"}


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="guide: expected a Pyro program"):
        sbc(model, "guide")
    with pytest.raises(ValueError, match="num_draws"):
        sbc(model, posterior_guide(), num_draws=0)
    with pytest.raises(ValueError, match="ranks: expected integers in"):
        ecdf_uniformity_test(np.array([0, 5]), 3)


def coin_model(x=None):
    p = pyro.sample("p", dist.Beta(2.0, 2.0))
    on = pyro.sample("on", dist.Bernoulli(p))
    with pyro.plate("data", 3):
        return pyro.sample("x", dist.Normal(2.0 * on, 1.0), obs=x)


def coin_guide(x, flip=1.0):
    # The exact posterior of `on` (p integrated out: P(on = 1) = 1/2), then p | on; flip=-1
    # turns the evidence around, a wrong conditional.
    loglik = [dist.Normal(2.0 * k, 1.0).log_prob(x).sum() for k in (0.0, 1.0)]
    on = pyro.sample("on", dist.Bernoulli(logits=flip * (loglik[1] - loglik[0])))
    pyro.sample("p", dist.Beta(2.0 + on, 3.0 - on))


def test_a_discrete_latent_ties_are_broken_so_an_exact_posterior_passes():
    exact = sbc(coin_model, coin_guide, num_simulations=300, num_draws=19, seed=2)
    assert all(exact.calibrated.values()), exact.summary()
    assert set(np.unique(exact.ranks["on"])) - set(range(20)) == set()
    flipped = sbc(coin_model, lambda x: coin_guide(x, flip=-1.0), num_simulations=300,
                  num_draws=19, seed=2)
    assert not flipped.calibrated["on"]


def switch_model(x=None, flip=1.0):
    """Three independent switches, each seen through noise; ``flip=-1`` reads the evidence the
    wrong way round (the test double of a kernel with a wrong conditional)."""
    with pyro.plate("data", 3):
        z = pyro.sample("z", dist.Bernoulli(0.3))
        return pyro.sample("x", dist.Normal(flip * (2.0 * z - 1.0), 1.0), obs=x)


def test_a_gibbs_kernel_is_calibrated_and_a_wrong_conditional_is_not():
    from ppdgm.diagnostics.calibration import chain_draws
    from ppdgm.inference.mcmc import Gibbs

    right = chain_draws(lambda chains: Gibbs(switch_model, chains=chains), warmup_steps=2)
    passed = sbc(switch_model, sampler=right, num_simulations=150, num_draws=19, seed=4)
    assert all(passed.calibrated.values()), passed.summary()
    assert passed.ranks["z"].shape == (150, 3)
    wrong = chain_draws(lambda chains: Gibbs(lambda x: switch_model(x, flip=-1.0),
                                             chains=chains), warmup_steps=2)
    failed = sbc(switch_model, sampler=wrong, num_simulations=150, num_draws=19, seed=4)
    assert not failed.calibrated["z"]
    with pytest.raises(TypeError, match="either a guide or a sampler"):
        sbc(switch_model, posterior_guide(), sampler=right)


def test_tarp_gives_the_diagonal_for_the_exact_posterior_and_bends_for_wrong_ones():
    from ppdgm.diagnostics.tarp import tarp

    exact = tarp(model, posterior_guide(), num_simulations=200, seed=6)
    assert exact.calibrated and exact.deviation < 0.12, exact.deviation
    assert exact.counts.shape == (200,) and exact.expected[0] == 0
    assert np.all(np.diff(exact.expected) >= 0)
    for scale, shift in [(0.4, 0.0), (2.5, 0.0), (1.0, 1.0)]:
        wrong = tarp(model, posterior_guide(scale, shift), num_simulations=200, seed=6)
        assert not wrong.calibrated and wrong.deviation > 0.15, (scale, shift, wrong.deviation)
