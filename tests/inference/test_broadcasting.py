"""Models written with fixed shapes are refused before the first step, naming their statement."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC

from ppdgm.inference.mcmc import DMALA, Gibbs, GibbsWithGradients, HMCGibbs
from ppdgm.inference.mcmc.broadcasting import check_broadcasts
from ppdgm.inference.mcmc.gibbs import is_latent_site


def _filled(y):
    z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(3)).to_event(1))
    loc = torch.zeros(3)  # a fixed-shape buffer: stacked values do not fit
    loc[:] = z
    pyro.sample("y", dist.Normal(loc, 1.0).to_event(1), obs=y)


def _collapsed(y):
    # z.sum() adds the stacked values together
    z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(3)).to_event(1))
    pyro.sample("y", dist.Normal(z.sum(), 1.0), obs=y.sum())


def _first(y):
    # z[0] is the first of the stacked values, not the first unit
    z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(3)).to_event(1))
    pyro.sample("y", dist.Normal(z[0], 1.0), obs=y[0])


def _broadcasting(y):
    z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(3)).to_event(1))
    pyro.sample("y", dist.Normal(z.sum(-1) + z[..., 0], 1.0), obs=y.sum())


@pytest.mark.parametrize("kernel", [lambda m: Gibbs(m), lambda m: Gibbs(m, chains=4),
                                    lambda m: GibbsWithGradients(m, chains=4),
                                    lambda m: DMALA(m)])
@pytest.mark.parametrize("model, statement", [
    (_filled, r"test_broadcasting.py:\d+: `loc\[:\] = z`: expand"),
    (_collapsed, r"site 'y' mixes .*`pyro.sample\(\"y\", dist.Normal\(z.sum\(\), 1.0\)"),
    (_first, r"`pyro.sample\(\"y\", dist.Normal\(z\[0\], 1.0\), obs=y\[0\]\)`"),
])
def test_a_model_that_does_not_broadcast_is_refused_naming_its_statement(kernel, model, statement):
    with pytest.raises(ValueError, match=f"^model: .*{statement}.*index and reduce from the right"):
        MCMC(kernel(model), num_samples=2, warmup_steps=0, disable_progbar=True).run(torch.ones(3))


def test_hmc_gibbs_refuses_it_too_and_a_broadcasting_model_runs():
    def mixed(y):
        loc = pyro.sample("loc", dist.Normal(0.0, 1.0))
        z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(3)).to_event(1))
        pyro.sample("y", dist.Normal(loc + z.sum(), 1.0), obs=y.sum())

    with pytest.raises(ValueError, match="site 'y' mixes"):
        MCMC(HMCGibbs(mixed, kernel="hmc", num_steps=2), num_samples=2, warmup_steps=0,
             disable_progbar=True).run(torch.ones(3))
    mcmc = MCMC(Gibbs(_broadcasting, chains=4), num_samples=3, warmup_steps=0,
                disable_progbar=True)
    mcmc.run(torch.ones(3))
    assert mcmc.get_samples()["z"].shape == (3, 4, 3)


def test_the_check_leaves_the_rng_alone_and_spares_models_that_drift():
    state = torch.random.get_rng_state()
    check_broadcasts(_broadcasting, (torch.ones(3),), is_latent=is_latent_site)
    assert torch.equal(state, torch.random.get_rng_state())

    calls = []

    def drifting(y):  # its output changes with every call: no comparison can judge it
        calls.append(1)
        z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(3)).to_event(1))
        pyro.sample("y", dist.Normal(z.sum(-1) + len(calls), 1.0), obs=y.sum())

    check_broadcasts(drifting, (torch.ones(3),), is_latent=is_latent_site)
