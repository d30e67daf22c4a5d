"""PyMC's side of benchmarks/gibbs_ess.py, run in the PyMC environment: BinaryGibbsMetropolis on
the same SBN posterior. Reads the weights and data from an .npz, writes the draws to another."""

import sys
import time

import numpy as np
import pymc as pm
import pytensor.tensor as pt


def main(weights_path: str, out_path: str, draws: int, tune: int, chains: int, seed: int) -> None:
    w = np.load(weights_path)
    x = w["x"]
    n = x.shape[0]
    with pm.Model():
        z1 = pm.Bernoulli("z1", logit_p=np.broadcast_to(w["top"], (n, w["top"].shape[0])))
        z2 = pm.Bernoulli("z2", logit_p=pt.dot(z1, w["w1"].T) + w["b1"])
        pm.Bernoulli("x", logit_p=pt.dot(z2, w["w2"].T) + w["b2"], observed=x)
        step = pm.BinaryGibbsMetropolis([z1, z2])
        started = time.perf_counter()
        idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, step=step, random_seed=seed,
                          progressbar=False, compute_convergence_checks=False)
        total = time.perf_counter() - started
    post = idata.posterior
    np.savez(out_path, z1=post["z1"].values, z2=post["z2"].values,
             sampling_time=post.attrs["sampling_time"], total_time=total, version=pm.__version__)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7]))
