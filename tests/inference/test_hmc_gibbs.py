"""Gibbs within HMC against a posterior computed on a grid."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC
from pyro.ops.stats import effective_sample_size

from ppdgm.inference.mcmc.hmc_gibbs import HMCGibbs

Y = torch.tensor([0.2, 2.8, 3.4, -0.5, 2.5, 3.1])


def _model(y):
    loc = pyro.sample("loc", dist.Normal(0.0, 3.0))
    with pyro.plate("data", len(y)):
        z = pyro.sample("z", dist.Bernoulli(0.7))
        pyro.sample("y", dist.Normal(loc * z, 1.0), obs=y)


def _exact_posterior_of_loc():
    grid = torch.linspace(-5.0, 8.0, 20001, dtype=torch.float64)
    y = Y.double()[:, None]
    off = torch.tensor(0.3, dtype=torch.float64).log() + dist.Normal(0.0, 1.0).log_prob(y)
    on = torch.tensor(0.7, dtype=torch.float64).log() + dist.Normal(grid, 1.0).log_prob(y)
    mixture = torch.logaddexp(off, on)
    log_post = dist.Normal(0.0, 3.0).log_prob(grid) + mixture.sum(0)
    weights = log_post.softmax(0)
    mean = (weights * grid).sum()
    return mean.item(), (weights * (grid - mean) ** 2).sum().sqrt().item()


def test_nuts_gibbs_matches_the_grid_posterior():
    torch.manual_seed(0)
    mcmc = MCMC(HMCGibbs(_model), num_samples=400, warmup_steps=150, disable_progbar=True)
    mcmc.run(Y)
    loc = mcmc.get_samples()["loc"]
    mean, sd = _exact_posterior_of_loc()
    ess = effective_sample_size(loc[None, :, None]).item()
    assert ess > 50
    # Four Monte-Carlo standard errors; the prior mean (0) is many standard errors away.
    assert abs(loc.mean().item() - mean) < 4 * sd / ess**0.5
    assert abs(loc.std().item() - sd) < 0.25 * sd
    z = mcmc.get_samples()["z"]
    assert z.shape == (400, len(Y))
    assert z[:, 0].mean() < 0.5 < z[:, 1].mean()  # the point near 0 is explained by z = 0
    diagnostics = mcmc.diagnostics()
    assert "divergences" in diagnostics and "flip rate" in diagnostics


def test_needs_a_discrete_site_and_a_known_kernel():
    def continuous_only():
        pyro.sample("a", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="kernel"):
        HMCGibbs(_model, kernel="slice")
    with pytest.raises(ValueError, match="no discrete latent site"):
        MCMC(HMCGibbs(continuous_only), num_samples=1, disable_progbar=True).run()
