"""NUTS chains in separate processes (Pyro's MCMC with num_chains) on ppdgm's models.

Pyro draws chains in processes only when it sees a spare core for each (cpu_count - 1 >=
num_chains); these tests make it see four, so the process path runs on a two-core machine too.
"""

import pyro
import pyro.infer.mcmc.api as mcmc_api
import pytest
import torch
from pyro.infer import MCMC, NUTS

from ppdgm.diagnostics import to_inference_data
from ppdgm.diagnostics.amortization import amortization_gap
from ppdgm.models import VAE
from ppdgm.models.linear_gaussian import LinearGaussian, LinearGaussianConfig


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(mcmc_api.mp, "cpu_count", lambda: 4)


def test_nuts_chains_in_processes_match_the_exact_posterior(four_cores):
    pyro.set_rng_seed(0)
    model = LinearGaussian(LinearGaussianConfig(x_dim=3, z_dim=1))
    x = model.sample(2).detach()
    mcmc = MCMC(NUTS(model.model), num_samples=300, warmup_steps=150, num_chains=2,
                mp_context="spawn", disable_progbar=True)
    mcmc.run(x)
    assert type(mcmc.sampler).__name__ == "_MultiSampler"
    z = mcmc.get_samples(group_by_chain=True)["z"]  # (chains, draws, n, z_dim)
    assert z.shape == (2, 300, 2, 1)
    assert not torch.equal(z[0], z[1])
    exact = model.posterior(x)
    # The posterior sd is 0.18: 600 draws put the mean within 0.06 at about six standard errors.
    torch.testing.assert_close(z.mean((0, 1)), exact.mean.detach(), atol=0.06, rtol=0)
    idata = to_inference_data(mcmc)
    assert idata.posterior.sizes["chain"] == 2


def test_amortization_gap_runs_its_chains_in_processes(four_cores):
    pyro.set_rng_seed(0)
    vae = VAE(x_shape=(4,), z_dim=2, hidden=(8,))
    gap = amortization_gap(vae, torch.ones(2, 4), num_samples=30, warmup_steps=30, num_chains=2,
                           num_is=100, optimal_steps=5, mp_context="spawn")
    assert gap.posterior.shape == (2, 30, 2, 2)
    assert not torch.equal(gap.posterior[0], gap.posterior[1])
    assert torch.isfinite(gap.rhat).all()
