# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Discrete latents by Gibbs under `pyro.infer.MCMC`, into ArviZ
#
# Pyro's HMC and NUTS move continuous variables only; its answer to a discrete latent is to sum
# it out. ppdgm's kernels sample discrete sites instead, as `pyro.infer.MCMC` kernels, so the
# draws reach ArviZ like any other. The model: twelve points $y_i$ around an unknown level $\mu$,
# each shifted by one of three known offsets $o_k$ picked by a categorical $k_i$,
#
# $$\mu \sim \mathcal N(0, 5^2), \qquad k_i \sim \text{Categorical}(\tfrac13, \tfrac13, \tfrac13),
#   \qquad y_i \sim \mathcal N(\mu + o_{k_i}, 0.5^2).$$
#
# With $\mu$ fixed, each $k_i$'s posterior is exact and cheap,
# $p(k_i = k \mid y_i, \mu) \propto \mathcal N(y_i \mid \mu + o_k, 0.5^2)$, which lets us check
# the sampler.

# %%
import numpy as np
import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.infer import MCMC

from ppdgm import DMALA, Gibbs, HMCGibbs, to_inference_data
from ppdgm.diagnostics import save_mcmc_plots
from ppdgm.diagnostics.arviz_api import arviz

OFFSETS, NOISE = torch.tensor([-2.0, 0.0, 2.0]), 0.5


def model(y):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    with pyro.plate("data", len(y)):
        k = pyro.sample("k", dist.Categorical(torch.ones(3) / 3))
        pyro.sample("y", dist.Normal(mu + OFFSETS[k], NOISE), obs=y)


pyro.set_rng_seed(0)
truth = torch.randint(0, 3, (12,))
y = 1.0 + OFFSETS[truth] + NOISE * torch.randn(12)
exact = torch.softmax(dist.Normal(1.0 + OFFSETS, NOISE).log_prob(y[:, None]), -1)

# %% [markdown]
# ## Gibbs over the assignments
#
# `Gibbs` finds the discrete sites from one run of the model and updates them by their full
# conditionals, every data point at once (they are independent given $\mu$, which the `data`
# plate tells it). `chains=4` runs four chains as one batch dimension. `to_inference_data`
# turns the run into ArviZ's data, the assignments kept as integers.

# %%
fixed = poutine.condition(model, data={"mu": torch.tensor(1.0)})
mcmc = MCMC(Gibbs(fixed, chains=4), num_samples=500, warmup_steps=20, disable_progbar=True)
mcmc.run(y)
posterior = to_inference_data(mcmc).posterior
k = posterior["k"].values                                   # (chains, draws, points), int64
sampled = np.stack([(k == c).mean((0, 1)) for c in range(3)], -1)
print("dtype:", k.dtype, "| largest total variation from the exact p(k_i | y_i):",
      round(float(np.abs(sampled - exact.numpy()).sum(-1).max() / 2), 3))

# %% [markdown]
# ## Gibbs within NUTS, and ArviZ's diagnostics
#
# Freeing $\mu$ couples the points. `HMCGibbs` alternates a Gibbs sweep over the $k_i$ with
# NUTS steps on $\mu$, each with the other held fixed. ArviZ reads the result: the bulk effective
# sample size of $\mu$, and trace and rank plots, written to files and shown here. The exact
# posterior mean of $\mu$ (every $k_i$ summed out, on a grid) checks the draws.

# %%
hmc_gibbs = MCMC(HMCGibbs(model), num_samples=1000, warmup_steps=300, num_chains=1,
                 disable_progbar=True)
hmc_gibbs.run(y)
idata = to_inference_data(hmc_gibbs)
mu = idata.posterior["mu"].values
grid = torch.linspace(-10, 10, 20001, dtype=torch.float64)
log_post = dist.Normal(0.0, 5.0).log_prob(grid) + torch.logsumexp(
    dist.Normal(grid[:, None, None] + OFFSETS.double(), NOISE).log_prob(y.double()[:, None]), -1
).sum(-1)
print(f"E[mu | y]: sampled {mu.mean():.3f} +- {mu.std() / np.sqrt(float(arviz().ess(mu))):.3f}, "
      f"exact {float((log_post.softmax(0) * grid).sum()):.3f}; bulk ESS {float(arviz().ess(mu)):.0f}")
plots = save_mcmc_plots(idata, "runs/tutorial-gibbs", var_names=["mu"], max_elements=1)

# %% [markdown]
# ## Moves from the gradient, and where they fail
#
# A Gibbs sweep runs the model once per unit it updates. `DMALA` (discrete Langevin) instead
# moves every variable at once from the gradient of the log density, with an exact
# Metropolis-Hastings correction: one model run and one backward pass per step. A gradient needs
# the choice to enter the model through arithmetic, so the assignment is written one-hot.
#
# The proposal trusts a first-order expansion of the log density. Here the likelihood is a
# parabola in the offset: from the offset $-2$, a point that belongs to $0$ sees the gradient
# pointing past $0$ to $+2$, and from $+2$ back to $-2$; the middle option, the right one, is
# proposed rarely. The exact correction keeps the answer right in the long run, but the chains
# need far more steps than Gibbs's sweeps, which compute each point's three options exactly.

# %%
def one_hot_model(y):
    with pyro.plate("data", len(y)):
        z = pyro.sample("z", dist.OneHotCategorical(torch.ones(3) / 3))
        pyro.sample("y", dist.Normal(1.0 + z @ OFFSETS, NOISE), obs=y)


kernel = DMALA(one_hot_model, chains=4)
langevin = MCMC(kernel, num_samples=1000, warmup_steps=200, disable_progbar=True)
langevin.run(y)
z = langevin.get_samples()["z"].float().mean((0, 1))       # p(k_i = k), every point
gap = (z - exact).abs().sum(-1) / 2
print("acceptance:", round(kernel.acceptance_rate, 2), "| step size:", round(kernel.step_size, 2))
print("total variation per point:", gap.numpy().round(2))
print("exact offset of the worst points:", OFFSETS[exact.argmax(-1)][gap > 0.05].tolist())

# %% [markdown]
# The points that go wrong, if any in this run, are those whose exact offset is the middle one.
# Gradient moves pay off where many units interact weakly, as in an RBM or a sigmoid belief
# net; the [benchmarks](../benchmarks.md) measure both kinds against PyMC and NumPyro, and the
# [MCMC page](../mcmc.md) has the kernels' details (Metropolized Gibbs, plates, compiled moves,
# `Compound`).
