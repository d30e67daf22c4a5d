"""Effective samples per second of ppdgm's generic Gibbs kernel against PyMC's
BinaryGibbsMetropolis, on the same sigmoid-belief-net posterior p(z1, z2 | x), in one run.

The SBN (64 pixels, layers 8-8) is first trained for a few epochs on the bundled binarized digits
so the posterior is a real one. Both samplers run the same number of chains, warm-up sweeps and
draws; ESS is ArviZ's bulk ESS per latent element (the same function on both sides), and the
speed is the median ESS over elements divided by the sampling seconds (PyMC's own
``sampling_time``, which leaves out its compilation). PyMC runs once before ppdgm and once after,
and the faster of the two counts. The posterior means must agree, or the two were not sampling
the same model.

ppdgm runs five times: heat-bath Gibbs and Metropolized Gibbs (PyMC's move) with PyMC's number
of chains, then Metropolized Gibbs with many chains carried as one batch dimension, which is how
the kernel is meant to be used: its cost per sweep barely grows with the chains, while PyMC's
grows linearly (its ESS per second does not change with the number of chains on one core). The
last two runs trace the many-chain sweep once and replay it (``compile="replay"``), or compile it
with Inductor (``compile="inductor"``). A run's first sweep holds its tracing and compilation:
``compile_seconds`` is that sweep's excess over the median sweep, and ``sampling_seconds`` the
run without it, which is what the ratio to PyMC divides by (PyMC's ``sampling_time`` leaves out
its compilation too); ``ratio_to_pymc_with_compile`` counts it in.

PyMC lives only in the benchmark's environment:
    python -m venv benchmarks/.venv-pymc && benchmarks/.venv-pymc/bin/pip install pymc
    python benchmarks/gibbs_ess.py --pymc-python benchmarks/.venv-pymc/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import arviz as az
import numpy as np
import torch
from pyro.infer import MCMC

from ppdgm._pyro import local_params
from ppdgm.data import load_dataset
from ppdgm.inference import CHECKPOINT_NAME, TrainConfig
from ppdgm.inference.mcmc import Gibbs
from ppdgm.recipes import fit_sbn, load_trained_model

RESULTS = Path(__file__).parent / "results"


def _median_ess(draws: dict[str, np.ndarray]) -> float:
    values = []
    for array in draws.values():
        chains, n = array.shape[:2]
        ess = az.ess(az.convert_to_dataset(array.reshape(chains, n, -1).astype(float)))["x"].values
        values.append(ess[np.isfinite(ess)])
    return float(np.median(np.concatenate(values)))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pymc-python", default=str(Path(__file__).parent / ".venv-pymc/bin/python"))
    p.add_argument("--points", type=int, default=16, help="test points whose posteriors are sampled")
    p.add_argument("--chains", type=int, default=4, help="chains of PyMC and of the like-for-like ppdgm runs")
    p.add_argument("--many-chains", type=int, default=64, help="vectorized chains of the third ppdgm run")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=200)
    p.add_argument("--train-epochs", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--compiled", default="replay,inductor",
                   help="the compiled many-chain runs after the eager ones (comma-separated; "
                        "empty for none)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    data = load_dataset("digits-binarized")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(epochs=args.train_epochs, batch_size=50, lr=3e-3, seed=0, device="cpu",
                          progress=False, out_dir=tmp)
        fit_sbn(data, cfg, layers=(8, 8), objective="rws", k=10, eval_k=10)
        sbn = load_trained_model(Path(tmp) / CHECKPOINT_NAME, device="cpu")
        x = data.test[: args.points]
        layer1, layer2 = sbn.generative[0], sbn.generative[1]
        weights = {"x": x.reshape(args.points, -1).numpy().astype("int64"),
                   "top": sbn.top_logits.detach().numpy(),
                   "w1": layer1.weight.detach().numpy(), "b1": layer1.bias.detach().numpy(),
                   "w2": layer2.weight.detach().numpy(), "b2": layer2.bias.detach().numpy()}
        np.savez(Path(tmp) / "weights.npz", **weights)

        def pymc(tag: str) -> dict:
            out = Path(tmp) / f"pymc-{tag}.npz"
            cmd = [args.pymc_python, str(Path(__file__).parent / "_pymc_sbn.py"),
                   str(Path(tmp) / "weights.npz"), str(out), str(args.draws), str(args.tune),
                   str(args.chains), "0"]
            subprocess.run(cmd, check=True, capture_output=True,
                           env={"OMP_NUM_THREADS": str(args.threads), "PATH": "/usr/bin:/bin"})
            loaded = np.load(out)
            return {k: loaded[k] for k in loaded.files}

        # PyMC runs before and after ppdgm, and the faster of its two runs counts: the machine's
        # drift during the run then favours PyMC, never ppdgm.
        before = pymc("before")
        runs = []
        compiled = [(True, args.many_chains, mode) for mode in args.compiled.split(",") if mode]
        for metropolized, chains, compile in [(False, args.chains, False), (True, args.chains, False),
                                              (True, args.many_chains, False), *compiled]:
            torch.manual_seed(0)
            stamps: list[float] = []
            with local_params():
                mcmc = MCMC(Gibbs(sbn.model, chains=chains, metropolized=metropolized,
                                  compile=compile),
                            num_samples=args.draws, warmup_steps=args.tune, disable_progbar=True,
                            hook_fn=lambda *_, s=stamps: s.append(time.perf_counter()))
                started = time.perf_counter()
                mcmc.run(x)
                seconds = time.perf_counter() - started
            sweeps = np.diff([started, *stamps])
            first_excess = float(sweeps[0] - np.median(sweeps[1:]))
            # (chains, draws, ...), as ArviZ and PyMC lay them out
            draws = {k: v.transpose(0, 1).numpy() for k, v in mcmc.get_samples().items()}
            runs.append((metropolized, chains, compile, seconds, first_excess, draws))
        after = pymc("after")
        pymc_seconds = [float(before["sampling_time"]), float(after["sampling_time"])]
        theirs_file = before if pymc_seconds[0] <= pymc_seconds[1] else after
        theirs = {"z1": theirs_file["z1"], "z2": theirs_file["z2"]}
        theirs_seconds = min(pymc_seconds)

    theirs_ess = _median_ess(theirs)
    theirs_speed = theirs_ess / theirs_seconds
    rows = []
    for metropolized, chains, compile, seconds, first_excess, draws in runs:
        ess = _median_ess(draws)
        sampling = seconds - max(first_excess, 0.0)
        rows.append({
            "sampler": "ppdgm Gibbs" + (" (Metropolized)" if metropolized else " (heat bath)"),
            "compile": compile or "off",
            "chains": chains, "seconds": round(seconds, 2), "compile_seconds": round(first_excess, 2),
            "sampling_seconds": round(sampling, 2), "median_ess": round(ess, 1),
            "ess_per_s": round(ess / sampling, 1),
            "ratio_to_pymc": round(ess / sampling / theirs_speed, 1),
            "ratio_to_pymc_with_compile": round(ess / seconds / theirs_speed, 1),
            "max_posterior_mean_difference_to_pymc": round(max(
                float(np.abs(draws[k].mean((0, 1)) - theirs[k].mean((0, 1))).max()) for k in theirs), 3),
        })
    result = {
        "model": f"SBN 64-8-8 trained {args.train_epochs} epochs (RWS, k=10) on binarized digits; "
                 f"posterior p(z1, z2 | x) of {args.points} test points",
        "draws": args.draws, "tune": args.tune, "threads": args.threads,
        "pymc": {"sampler": "PyMC BinaryGibbsMetropolis", "chains": args.chains,
                 "sampling_seconds": round(theirs_seconds, 2),
                 "sampling_seconds_before_and_after_ppdgm": [round(v, 2) for v in pymc_seconds],
                 "total_seconds": round(float(theirs_file["total_time"]), 2),
                 "median_ess": round(theirs_ess, 1), "ess_per_s": round(theirs_speed, 1),
                 "version": str(theirs_file["version"])},
        "ppdgm": rows,
        "torch_version": torch.__version__,
        "command": "python benchmarks/gibbs_ess.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gibbs_ess.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
