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
# # Your first VAE as a Pyro program
#
# A variational autoencoder is two Pyro programs. The **model** says how an image $x$ is made:
# draw a code $z \sim \mathcal N(0, I)$, then every pixel $x_i \sim \text{Bernoulli}(f_\theta(z)_i)$
# through a decoder network $f_\theta$. The **guide** $q_\phi(z \mid x) = \mathcal N(\mu_\phi(x),
# \sigma^2_\phi(x))$ guesses, from the image, which code made it. Training maximises the
# evidence lower bound
#
# $$\log p_\theta(x) \ \ge\ \text{ELBO} = \mathbb E_{q_\phi(z \mid x)}\big[\log p_\theta(x \mid z)\big]
#   - \text{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big),$$
#
# whose gradient Pyro estimates with the reparameterization trick. Below: the two programs, what
# Pyro's tools see in them, twenty seconds of training, and what the trained model generates. It
# uses the bundled 8x8 digits, so it runs anywhere in well under a minute.

# %%
import pyro
import pyro.poutine as poutine
import torch
from pyro.infer import Predictive, Trace_ELBO
from pyro.poutine.util import site_is_subsample

from ppdgm import VAE, Engine, TrainConfig, VAEConfig, estimate_elbo, load_dataset
from ppdgm.diagnostics import save_image_grid

pyro.set_rng_seed(0)
data = load_dataset("digits-binarized")   # scikit-learn's digits, thresholded to {0, 1}
vae = VAE(VAEConfig(x_shape=data.event_shape, z_dim=8, likelihood="bernoulli"))
print(len(data.train), "training images of shape", tuple(data.event_shape))

# %% [markdown]
# ## What Pyro sees
#
# `vae.model(x)` and `vae.guide(x)` are ordinary Pyro programs. `poutine.trace` runs one and
# records every `pyro.sample` statement: the latent site `z` and the observed site `x`, each with
# its distribution and the shapes Pyro reads from the `data` plate (batch shape) and the event.

# %%
batch = data.train[:5]
model_trace = poutine.trace(vae.model).get_trace(batch)
guide_trace = poutine.trace(vae.guide).get_trace(batch)
for program, trace in (("model", model_trace), ("guide", guide_trace)):
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site):
            continue  # the plate's own entry, which records the batch indices
        d = site["fn"]
        print(f"{program:5s} {name:2s} observed={site['is_observed']!s:5s} "
              f"batch={tuple(d.batch_shape)} event={tuple(d.event_shape)}")

# %% [markdown]
# ## Training
#
# The engine runs the pair with any Pyro objective; here `Trace_ELBO`. It shows a progress bar
# (a widget in Jupyter, text in a terminal), keeps a history, and writes a checkpoint that
# `Engine.fit` would resume from. The cell builds a fresh model, so running it again starts over
# and prints the same numbers; the engine reads the parameters from the model itself, so nothing
# piles up in Pyro's parameter store either.

# %% tags=["training"]
pyro.set_rng_seed(0)
vae = VAE(VAEConfig(x_shape=data.event_shape, z_dim=8, likelihood="bernoulli"))
config = TrainConfig(epochs=30, batch_size=64, lr=3e-3, device="cpu", seed=0,
                     out_dir="runs/tutorial-first-vae")
history = Engine(vae.model, vae.guide, Trace_ELBO(), config=config).fit(data.train)
print("last epoch's negative ELBO per image:", round(history.last(), 2))
print("parameter store entries:", len(pyro.get_param_store()))

# %% [markdown]
# The held-out ELBO, averaged over 10 draws of $z$ per image, is a lower bound on the test
# log-likelihood in nats per image:

# %%
print(estimate_elbo(vae.model, vae.guide, data.test, num_particles=10))

# %% [markdown]
# ## Generating, and the posterior predictive
#
# `Predictive` runs the model forward: with no guide it draws $z$ from the prior (new digits);
# with the guide it draws $z \sim q(z \mid x)$ for given images and re-generates them
# (reconstructions). The figure is written to a file and shown here.

# %%
with torch.no_grad():
    prior = Predictive(vae.model, num_samples=1, return_sites=["x"])(None, 32)
    recon = Predictive(vae.model, guide=vae.guide, num_samples=1, return_sites=["x"])(data.test[:16])
grid = torch.cat([prior["x"][0], data.test[:16], recon["x"][0]])
save_image_grid(grid, "runs/tutorial-first-vae/samples.png", nrow=16)

# %% [markdown]
# Rows 1-2 are new digits, row 3 test digits, row 4 their reconstructions. They are Bernoulli
# draws, so speckled; the [VAE page](../vae.md) shows means, importance-weighted bounds and honest
# log-likelihoods.
