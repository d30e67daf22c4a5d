"""NumPyro's side of benchmarks/discrete_samplers.py, run in NumPyro's environment:
``DiscreteGibbs(modified=True)`` (the discrete move of ``DiscreteHMCGibbs``, Liu's Metropolized
Gibbs, standalone because these targets have no continuous site), jitted, on the target an .npz
describes. Its chains run one after the other: ``DiscreteGibbs.init`` takes one random key, so
``chain_method="vectorized"`` fails in it (NumPyro 0.22: "split accepts a single key").

    python _numpyro_discrete.py TARGET.npz OUT.npz CHAINS TUNE DRAWS SEED

A step is one sweep over every discrete coordinate in a random order. Writes each site's draws
as ``(chains, draws, ...)`` arrays and the seconds of the draws: the same run is made twice, the
first compiling it, and the second's time (warm-up and draws in one jitted loop, every sweep of
the same cost) is scaled to its draws."""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC
from numpyro.infer.gibbs import DiscreteGibbs

jax.config.update("jax_platform_name", "cpu")


def ising(spec: dict):
    size, coupling, field = int(spec["size"]), float(spec["coupling"]), float(spec["field"])

    def model():
        with numpyro.plate("spins", size * size):
            x = numpyro.sample("x", dist.Bernoulli(0.5))
        spins = (2 * x - 1).reshape(size, size)
        bonds = (spins[1:, :] * spins[:-1, :]).sum() + (spins[:, 1:] * spins[:, :-1]).sum()
        numpyro.factor("bonds", coupling * bonds + field * spins.sum())
    return model


def rbm(spec: dict):
    W, b, c = (jnp.asarray(spec[k]) for k in "Wbc")

    def model():
        with numpyro.plate("visible", W.shape[0]):
            v = numpyro.sample("v", dist.Bernoulli(0.5))
        numpyro.factor("energy", v @ b + jax.nn.softplus(v @ W + c).sum())
    return model


def sbn(spec: dict):
    layers = int(spec["layers"])
    top, x = jnp.asarray(spec["top"]), jnp.asarray(spec["x"])
    weights = [(jnp.asarray(spec[f"w{i}"]), jnp.asarray(spec[f"b{i}"]))
               for i in range(1, layers + 1)]

    def model():
        # Plates, not to_event: DiscreteGibbs enumerates each site's support, which an
        # Independent Bernoulli does not offer.
        with numpyro.plate("z1_units", len(top)):
            z = numpyro.sample("z1", dist.Bernoulli(logits=top))
        for i, (w, bias) in enumerate(weights[:-1]):
            with numpyro.plate(f"z{i + 2}_units", len(bias)):
                z = numpyro.sample(f"z{i + 2}", dist.Bernoulli(logits=z @ w.T + bias))
        w, bias = weights[-1]
        numpyro.sample("x", dist.Bernoulli(logits=z @ w.T + bias).to_event(1), obs=x)
    return model


def mixture(spec: dict):
    y, locs = jnp.asarray(spec["y"]), jnp.asarray(spec["locs"])

    def model():
        with numpyro.plate("data", len(y)):
            z = numpyro.sample("z", dist.Categorical(jnp.ones(len(locs)) / len(locs)))
            numpyro.sample("y", dist.Normal(locs[z], 1.0), obs=y)
    return model


def main(target: str, out: str, chains: int, tune: int, draws: int, seed: int) -> None:
    spec = dict(np.load(target))
    task = str(spec.pop("task"))
    model = {"ising": ising, "rbm": rbm, "sbn": sbn, "mixture": mixture}[task](spec)

    def run(warmup: int, samples: int, key: int) -> tuple[MCMC, float]:
        mcmc = MCMC(DiscreteGibbs(model, modified=True), num_warmup=warmup, num_samples=samples,
                    num_chains=chains, chain_method="sequential", progress_bar=False)
        started = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(key))
        jax.block_until_ready(mcmc.get_samples())
        return mcmc, time.perf_counter() - started

    _, first_seconds = run(tune, draws, seed)  # compiles the loop for these lengths
    mcmc, seconds = run(tune, draws, seed)
    samples = mcmc.get_samples(group_by_chain=True)
    np.savez(out, **{k: np.asarray(v) for k, v in samples.items()},
             sampling_time=seconds * draws / (tune + draws), total_time=seconds,
             compile_seconds=first_seconds - seconds, version=numpyro.__version__)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7]))
