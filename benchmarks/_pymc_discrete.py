"""PyMC's side of benchmarks/discrete_samplers.py, run in PyMC's environment: BinaryGibbsMetropolis
(CategoricalGibbsMetropolis for the mixture's assignments) on the target an .npz describes.

    python _pymc_discrete.py TARGET.npz OUT.npz CHAINS TUNE DRAWS SEED

Writes each site's draws as ``(chains, draws, ...)`` arrays and PyMC's own ``sampling_time``
(which leaves out its compilation)."""

import sys
import time

import numpy as np
import pymc as pm
import pytensor.tensor as pt


def ising(spec: dict) -> list:
    size, coupling, field = int(spec["size"]), float(spec["coupling"]), float(spec["field"])
    x = pm.Bernoulli("x", p=0.5, shape=size * size)
    spins = (2 * x - 1).reshape((size, size))
    bonds = (spins[1:, :] * spins[:-1, :]).sum() + (spins[:, 1:] * spins[:, :-1]).sum()
    pm.Potential("bonds", coupling * bonds + field * spins.sum())
    return [x]


def rbm(spec: dict) -> list:
    W, b, c = spec["W"], spec["b"], spec["c"]
    v = pm.Bernoulli("v", p=0.5, shape=W.shape[0])
    pm.Potential("energy", pt.dot(v, b) + pt.softplus(pt.dot(v, W) + c).sum())
    return [v]


def sbn(spec: dict) -> list:
    layers = int(spec["layers"])
    z = pm.Bernoulli("z1", logit_p=spec["top"], shape=spec["top"].shape[0])
    latents = [z]
    for i in range(1, layers):
        w, bias = spec[f"w{i}"], spec[f"b{i}"]
        z = pm.Bernoulli(f"z{i + 1}", logit_p=pt.dot(z, w.T) + bias, shape=w.shape[0])
        latents.append(z)
    w, bias = spec[f"w{layers}"], spec[f"b{layers}"]
    pm.Bernoulli("x", logit_p=pt.dot(z, w.T) + bias, observed=spec["x"])
    return latents


def mixture(spec: dict) -> list:
    y, locs = spec["y"], spec["locs"]
    z = pm.Categorical("z", p=np.ones(len(locs)) / len(locs), shape=len(y))
    pm.Normal("y", mu=pt.as_tensor(locs)[z], sigma=1.0, observed=y)
    return [z]


def main(target: str, out: str, chains: int, tune: int, draws: int, seed: int) -> None:
    spec = dict(np.load(target))
    task = str(spec.pop("task"))
    with pm.Model():
        latents = {"ising": ising, "rbm": rbm, "sbn": sbn, "mixture": mixture}[task](spec)
        step = (pm.CategoricalGibbsMetropolis(latents) if task == "mixture"
                else pm.BinaryGibbsMetropolis(latents))
        started = time.perf_counter()
        idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, step=step,
                          random_seed=seed, progressbar=False, compute_convergence_checks=False)
        total = time.perf_counter() - started
    post = idata.posterior
    np.savez(out, **{v.name: post[v.name].values for v in latents},
             sampling_time=post.attrs["sampling_time"], total_time=total, version=pm.__version__)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7]))
