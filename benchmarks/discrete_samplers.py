"""Effective samples per second of ppdgm's discrete kernels, DISCS-style (Goshvadi et al., 2023):
Gibbs, Gibbs-with-Gradients and DMALA on the same targets, the same chains and the same budget.

Targets, each a Pyro program:
- ``ising``: a 2-D Ising lattice (``--ising-size`` squared spins, coupling 0.4, field 0.1);
- ``rbm``: an RBM's visible units with the hidden ones summed out (``RBM.visible_program``), the
  RBM trained by ``ppdgm fit rbm`` on binarized MNIST (``--rbm CHECKPOINT``, or trained here for
  ``--rbm-epochs``);
- ``sbn``: the posterior p(z | x) of a trained SBN (``--sbn CHECKPOINT``, or trained here) given
  one test image;
- ``mixture``: the one-hot assignments of ``--mixture-points`` points to 5 Gaussian components.

For each target and kernel: ``--chains`` vectorized chains, ``--warmup`` steps, then ``--draws``
steps timed (Gibbs: ``--gibbs-warmup`` and ``--gibbs-draws`` sweeps, each a model run per unit).
The test statistic is the target's log joint density of each draw; its bulk ESS (ArviZ, over the
chains) divided by the timed seconds is the row's ``ess_per_s``. Gibbs's step is a full
systematic sweep (one model run per unit), a gradient kernel's one move (one model run and one
backward pass): per second is the fair unit. Kernels run one after the other, ``--repeats`` times
(2) in alternating order, and the fastest of each kernel's runs counts.

    python benchmarks/discrete_samplers.py --data-path ../shared/data/binarized_mnist.npz

Writes ``benchmarks/results/discrete_samplers.json`` (``rows``: task, sampler, ess_per_s, ...) and
``discrete_samplers.md``. PyMC's and NumPyro's discrete samplers on the same targets are not in
this script yet.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.infer import MCMC

from ppdgm._pyro import local_params
from ppdgm.cli import main as ppdgm_main
from ppdgm.data import load_dataset
from ppdgm.inference.mcmc import DMALA, Gibbs, GibbsWithGradients
from ppdgm.recipes import load_trained_model

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = Path(__file__).resolve().parent / "runs" / "discrete-samplers"
KERNELS: dict[str, Callable[..., Any]] = {
    "gibbs": lambda model, chains: Gibbs(model, chains=chains, metropolized=True),
    "gwg": lambda model, chains: GibbsWithGradients(model, chains=chains),
    "dmala": lambda model, chains: DMALA(model, chains=chains)}
TASKS = ("ising", "rbm", "sbn", "mixture")


def ising(size: int) -> tuple[Callable, tuple]:
    def model() -> None:
        x = pyro.sample("x", dist.Bernoulli(0.5 * torch.ones(size * size)).to_event(1))
        spins = (2 * x - 1).reshape(*x.shape[:-1], size, size)
        bonds = ((spins[..., 1:, :] * spins[..., :-1, :]).sum((-1, -2))
                 + (spins[..., :, 1:] * spins[..., :, :-1]).sum((-1, -2)))
        pyro.factor("bonds", 0.4 * bonds + 0.1 * spins.sum((-1, -2)))
    return model, ()


def mixture(points: int, seed: int) -> tuple[Callable, tuple]:
    generator = torch.Generator().manual_seed(seed)
    locs = torch.linspace(-4.0, 4.0, 5)
    y = locs[torch.randint(5, (points,), generator=generator)] + torch.randn(points, generator=generator)

    def model(y: torch.Tensor) -> None:
        with pyro.plate("data", len(y)):
            z = pyro.sample("z", dist.OneHotCategorical(torch.ones(5) / 5))
            pyro.sample("y", dist.Normal(z @ locs, 1.0), obs=y)
    return model, (y,)


def trained(family: str, flags: list[str], checkpoint: str | None, args: argparse.Namespace) -> Any:
    if checkpoint is None:
        out = args.runs / family
        if not (out / "checkpoint.pt").exists():
            command = ["fit", family, "--data", "binarized-mnist", *flags, "--out", str(out),
                       "--no-progress", "--device", "cpu", "--resume", "auto"]
            if args.data_path:
                command += ["--data-path", args.data_path]
            if ppdgm_main(command) != 0:
                raise SystemExit(f"ppdgm {shlex.join(command)} failed")
        checkpoint = str(out / "checkpoint.pt")
    return load_trained_model(checkpoint, device="cpu")


def log_joint(model: Callable, args: tuple, draws: dict[str, torch.Tensor]) -> np.ndarray:
    """The model's log joint density of every draw, ``(chains, draws)``."""
    n_draws, chains = next(iter(draws.values())).shape[:2]
    with torch.no_grad():
        nesting = max((-f.dim for s in poutine.trace(model).get_trace(*args).nodes.values()
                       if s["type"] == "sample" for f in s["cond_indep_stack"]
                       if f.dim is not None), default=0)
        flat = {k: v.reshape(n_draws * chains, *v.shape[2:]) for k, v in draws.items()}

        def stacked(*a: Any) -> Any:
            with pyro.plate("_draws", n_draws * chains, dim=-(nesting + 1)):
                return model(*a)
        trace = poutine.trace(poutine.condition(stacked, data=flat)).get_trace(*args)
        trace.compute_log_prob()
        total = torch.zeros(n_draws * chains, dtype=torch.float64)
        for site in trace.nodes.values():
            if site["type"] == "sample":
                lp = site["log_prob"]
                lp = lp.reshape((1,) * (nesting + 1 - lp.dim()) + tuple(lp.shape))
                total += lp.reshape(lp.shape[0], -1).sum(1).double().expand(n_draws * chains)
    return total.reshape(n_draws, chains).T.numpy()


def run_kernel(name: str, model: Callable, args: tuple, chains: int, warmup: int,
               draws: int) -> dict[str, Any]:
    kernel = KERNELS[name](model, chains)
    stamps: list[float] = []
    mcmc = MCMC(kernel, num_samples=draws, warmup_steps=warmup, disable_progbar=True,
                hook_fn=lambda *_: stamps.append(time.perf_counter()))
    with local_params():
        mcmc.run(*args)
    seconds = stamps[-1] - stamps[warmup - 1] if warmup else stamps[-1] - stamps[0]
    statistic = log_joint(model, args, mcmc.get_samples())
    ess = float(az.ess(statistic, method="bulk"))
    return {"sampler": name, "chains": chains, "warmup": warmup, "draws": draws,
            "seconds": round(seconds, 3), "ess": round(ess, 1), "ess_per_s": round(ess / seconds, 2),
            "acceptance_rate": getattr(kernel, "acceptance_rate", None),
            "mean_log_joint": float(statistic.mean())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--samplers", default=",".join(KERNELS))
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--gibbs-warmup", type=int, default=20,
                   help="Gibbs's warm-up sweeps (a sweep runs the model once per unit)")
    p.add_argument("--gibbs-draws", type=int, default=100, help="Gibbs's timed sweeps")
    p.add_argument("--ising-size", type=int, default=20)
    p.add_argument("--mixture-points", type=int, default=100)
    p.add_argument("--rbm", default=None, help="an RBM checkpoint (default: trained here)")
    p.add_argument("--rbm-flags", default="--hidden 500 --epochs 5 --ais-runs 16 --ais-steps 2000",
                   help="ppdgm fit rbm flags when training here")
    p.add_argument("--sbn", default=None, help="an SBN checkpoint (default: trained here)")
    p.add_argument("--sbn-flags", default="--layers 200,200,200 --epochs 5 --eval-k 50",
                   help="ppdgm fit sbn flags when training here")
    p.add_argument("--data-path", default=None, help="binarized MNIST .npz")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2,
                   help="runs of each kernel, in alternating order; the fastest counts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=Path, default=RUNS)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    tasks = [t for t in args.tasks.split(",") if t]
    samplers = [s for s in args.samplers.split(",") if s]
    rows = []
    for task in tasks:
        if task == "ising":
            model, model_args = ising(args.ising_size)
        elif task == "mixture":
            model, model_args = mixture(args.mixture_points, args.seed)
        elif task == "rbm":
            model, model_args = trained("rbm", shlex.split(args.rbm_flags), args.rbm,
                                        args).visible_program(), ()
        elif task == "sbn":
            sbn = trained("sbn", shlex.split(args.sbn_flags), args.sbn, args)
            x = load_dataset("binarized-mnist", path=args.data_path).test[:1]
            model, model_args = sbn.model, (x,)
        else:
            raise SystemExit(f"--tasks: expected some of {', '.join(TASKS)}, got {task!r}")
        best: dict[str, dict[str, Any]] = {}
        orders = [samplers if i % 2 == 0 else samplers[::-1] for i in range(args.repeats)]
        for order in orders:  # alternating: drift favours no kernel
            for name in order:
                pyro.set_rng_seed(args.seed)
                warmup, draws = ((args.gibbs_warmup, args.gibbs_draws) if name == "gibbs"
                                 else (args.warmup, args.draws))
                row = run_kernel(name, model, model_args, args.chains, warmup, draws)
                if name not in best or row["ess_per_s"] > best[name]["ess_per_s"]:
                    best[name] = row
        for name in samplers:
            rows.append({"task": task, **best[name]})
            print(rows[-1], flush=True)
    args.results.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": "discrete-samplers", "rows": rows,
              "machine": f"{platform.processor() or platform.machine()}, {args.threads} "
                         f"thread(s), torch {torch.__version__}",
              "command": "python benchmarks/discrete_samplers.py " + shlex.join(argv or [])}
    (args.results / "discrete_samplers.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = ["| task | sampler | ESS/s of log p | ESS | seconds | acceptance |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        accept = "-" if r["acceptance_rate"] is None else f"{r['acceptance_rate']:.2f}"
        lines.append(f"| {r['task']} | {r['sampler']} | {r['ess_per_s']:.1f} | {r['ess']:.0f} | "
                     f"{r['seconds']:.1f} | {accept} |")
    lines += ["", f"{args.chains} chains; {args.warmup} warm-up steps and {args.draws} timed steps "
                  f"of each gradient kernel, {args.gibbs_warmup} and {args.gibbs_draws} sweeps of "
                  f"Metropolized Gibbs; {record['machine']}.", "", f"    {record['command']}", ""]
    (args.results / "discrete_samplers.md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
