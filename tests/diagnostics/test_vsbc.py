"""VSBC against closed-form posteriors: an exact or merely narrow guide is symmetric, a biased one
is not; guides fitted anew to each simulated data set through the engine (svi_draws)."""

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer.autoguide import AutoDelta, AutoNormal

from ppdgm.diagnostics.calibration import sbc, svi_draws
from ppdgm.diagnostics.vsbc import vsbc

N_OBS = 4
POST_SD = (1 + N_OBS) ** -0.5


def model(x=None):
    mu = pyro.sample("mu", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    with pyro.plate("data", N_OBS):
        return pyro.sample("x", dist.Normal(mu, 1.0).to_event(1), obs=x)


def posterior_guide(scale=1.0, shift=0.0):
    def guide(x):
        mean = x.sum(-2) / (1 + N_OBS)
        pyro.sample("mu", dist.Normal(mean + shift * POST_SD, scale * POST_SD).to_event(1))
    return guide


def test_the_exact_posterior_is_symmetric_at_about_the_nominal_rate():
    rejected = [not vsbc(model, posterior_guide(), num_simulations=100, seed=seed).symmetric["mu"]
                for seed in range(10)]
    assert sum(rejected) <= 3, rejected  # level 0.05: more than 3 of 10 has probability < 0.2 %


def test_a_narrow_guide_is_unbiased_though_miscalibrated_and_a_shifted_one_is_biased():
    narrow = posterior_guide(scale=0.4)
    assert vsbc(model, narrow, num_simulations=150, seed=3).symmetric == {"mu": True}
    assert sbc(model, narrow, num_simulations=150, seed=3).calibrated["mu"] is False
    shifted = vsbc(model, posterior_guide(shift=0.5), num_simulations=150, seed=3)
    assert shifted.symmetric == {"mu": False}
    # Each probability Pr_q(mu < truth) falls when q's mean moves up.
    assert shifted.summary()["mu"]["mean_probability"] < 0.4
    assert shifted.probabilities["mu"].shape == (150, 2)


def test_guides_fitted_to_each_data_set_through_the_engine():
    def scalar(x=None):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("data", 3):
            return pyro.sample("x", dist.Normal(mu, 1.0), obs=x)

    # Mean-field VI is exact for this conjugate model; a MAP fit (a point mass) is unbiased but
    # has no spread at all, which VSBC accepts and SBC rejects.
    normal = svi_draws(scalar, lambda: AutoNormal(scalar), steps=100, lr=0.05)
    assert vsbc(scalar, sampler=normal, num_simulations=12, num_draws=200).symmetric["mu"]
    point = svi_draws(scalar, lambda: AutoDelta(scalar), steps=100, lr=0.05)
    assert not sbc(scalar, sampler=point, num_simulations=12).calibrated["mu"]


def test_probabilities_count_ties_as_half_below():
    def coin(x=None):
        z = pyro.sample("z", dist.Bernoulli(0.5))
        with pyro.plate("data", 2):
            return pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    def certain(x):  # draws equal the truth only when it is 1
        pyro.sample("z", dist.Bernoulli(torch.tensor(1.0)))

    result = vsbc(coin, certain, num_simulations=40, num_draws=10, seed=0)
    assert set(np.unique(result.probabilities["z"])) <= {0.0, 0.5}


@pytest.mark.parametrize("kwargs, message", [
    ({"num_simulations": 0}, "num_simulations: expected an int >= 1"),
    ({"alpha": 1.5}, "alpha"),
    ({"guide": None}, "guide"),
])
def test_bad_arguments_are_refused_in_one_line(kwargs, message):
    arguments = {"guide": posterior_guide(), **kwargs}
    with pytest.raises((TypeError, ValueError), match=message):
        vsbc(model, **arguments)


def test_svi_draws_refuses_what_is_not_a_guide_factory():
    with pytest.raises(TypeError, match="make_guide: expected a Pyro program"):
        svi_draws(model, "AutoNormal")
    with pytest.raises(ValueError, match="steps: expected an int >= 1"):
        svi_draws(model, lambda: posterior_guide(), steps=0)
