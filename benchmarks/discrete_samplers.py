"""Effective samples per second of discrete samplers, DISCS-style (Goshvadi et al., 2023):
ppdgm's Gibbs, Gibbs-with-Gradients and DMALA, PyMC's BinaryGibbsMetropolis and NumPyro's
DiscreteGibbs, on the same targets, the same chains and a comparable budget.

Targets, each a Pyro program (and the same model written for PyMC and for NumPyro):
- ``ising``: a 2-D Ising lattice (``--ising-size`` squared spins, coupling 0.4, field 0.1);
- ``rbm``: an RBM's visible units with the hidden ones summed out (``RBM.visible_program``), the
  RBM trained by ``ppdgm fit rbm`` on binarized MNIST (``--rbm CHECKPOINT``, or trained here for
  ``--rbm-flags``);
- ``sbn``: the posterior p(z | x) of a trained SBN (``--sbn CHECKPOINT``, or trained here) given
  one test image;
- ``mixture``: the assignments of ``--mixture-points`` points to 5 Gaussian components (one-hot
  for ppdgm, a Categorical index for PyMC, with its CategoricalGibbsMetropolis, and NumPyro).

Samplers (``--samplers``):
- ``gibbs``: ppdgm's Metropolized Gibbs, a systematic sweep, one model run per unit
  (``--gibbs-warmup`` and ``--gibbs-draws`` sweeps). It runs eagerly: traced, a sweep of
  hundreds of model runs is no faster (a 20x20 Ising sweep of 16 chains: 171 ms eager, 195 ms
  replayed) and compiling it with Inductor takes minutes;
- ``gwg``, ``dmala``: the gradient kernels, ``--warmup`` steps then ``--draws`` timed steps, each
  one model run and one backward pass, compiled as ``--compile`` says (Inductor by default: the
  compilation falls in the warm-up and is reported as ``compile_seconds``);
- ``pymc``: PyMC's BinaryGibbsMetropolis (CategoricalGibbsMetropolis on the mixture), its chains
  one after the other on one core, ``--peer-warmup`` and ``--peer-draws`` sweeps, its own
  ``sampling_time`` (compilation left out);
- ``numpyro``: NumPyro's ``DiscreteGibbs(modified=True)``, Liu's Metropolized Gibbs (the discrete
  move of ``DiscreteHMCGibbs``; ``MixedHMC`` and ``DiscreteHMCGibbs`` need a continuous site,
  which none of these targets has), the sweep jitted, its chains one after the other (its
  `init` takes one key: vectorized chains fail), the same sweeps.

PyMC and NumPyro run in their own environments under benchmarks/ (``--pymc``/``--numpyro``:
``make`` them when missing, ``use`` them only if present, or ``skip``).

The test statistic is the target's log joint density of each draw, computed by the Pyro program
for every sampler's draws; its bulk ESS (ArviZ, over the chains) divided by the timed seconds is
the row's ``ess_per_s``, and the mean log joint shows whether each sampler reached the target.
Samplers run one after the other, ``--repeats`` times (2) in alternating order, and the fastest
of each sampler's runs counts.

    python benchmarks/discrete_samplers.py --data-path ../shared/data/binarized_mnist.npz

Writes ``benchmarks/results/discrete_samplers.json`` (``rows``: task, sampler, ess_per_s, ...),
``discrete_samplers.md`` and, per target, ``discrete-samplers-TASK.png``: one chain's log joint
against the seconds of sampling, and the ESS per second, of every sampler side by side.
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
from ppdgm.models.sbn import latent_name
from ppdgm.recipes import load_trained_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import peer_python, run_peer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = Path(__file__).resolve().parent / "runs" / "discrete-samplers"
KERNELS: dict[str, Callable[..., Any]] = {
    "gibbs": lambda model, chains, compile: Gibbs(model, chains=chains, metropolized=True),
    "gwg": lambda model, chains, compile: GibbsWithGradients(model, chains=chains, compile=compile),
    "dmala": lambda model, chains, compile: DMALA(model, chains=chains, compile=compile)}
PEER_SCRIPTS = {"pymc": "_pymc_discrete.py", "numpyro": "_numpyro_discrete.py"}
SAMPLERS = (*KERNELS, *PEER_SCRIPTS)
TASKS = ("ising", "rbm", "sbn", "mixture")
COUPLING, FIELD, COMPONENTS = 0.4, 0.1, 5


def ising(size: int) -> tuple[Callable, tuple, dict]:
    def model() -> None:
        x = pyro.sample("x", dist.Bernoulli(0.5 * torch.ones(size * size)).to_event(1))
        spins = (2 * x - 1).reshape(*x.shape[:-1], size, size)
        bonds = ((spins[..., 1:, :] * spins[..., :-1, :]).sum((-1, -2))
                 + (spins[..., :, 1:] * spins[..., :, :-1]).sum((-1, -2)))
        pyro.factor("bonds", COUPLING * bonds + FIELD * spins.sum((-1, -2)))
    return model, (), {"task": "ising", "size": size, "coupling": COUPLING, "field": FIELD}


def mixture(points: int, seed: int) -> tuple[Callable, tuple, dict]:
    generator = torch.Generator().manual_seed(seed)
    locs = torch.linspace(-4.0, 4.0, COMPONENTS)
    y = locs[torch.randint(COMPONENTS, (points,), generator=generator)] + torch.randn(
        points, generator=generator)

    def model(y: torch.Tensor) -> None:
        with pyro.plate("data", len(y)):
            z = pyro.sample("z", dist.OneHotCategorical(torch.ones(COMPONENTS) / COMPONENTS))
            pyro.sample("y", dist.Normal(z @ locs, 1.0), obs=y)
    return model, (y,), {"task": "mixture", "y": y.numpy(), "locs": locs.numpy()}


def rbm_target(rbm: Any) -> tuple[Callable, tuple, dict]:
    return rbm.visible_program(), (), {
        "task": "rbm", "W": rbm.weight.detach().numpy(), "b": rbm.visible_bias.detach().numpy(),
        "c": rbm.hidden_bias.detach().numpy()}


def sbn_target(sbn: Any, x: torch.Tensor) -> tuple[Callable, tuple, dict]:
    spec: dict[str, Any] = {"task": "sbn", "layers": len(sbn.generative),
                            "top": sbn.top_logits.detach().numpy(),
                            "x": x.reshape(-1).numpy().astype("int64")}
    for i, layer in enumerate(sbn.generative, start=1):
        spec[f"w{i}"], spec[f"b{i}"] = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    return sbn.model, (x,), spec


def as_pyro_draws(task: str, peer: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """A peer's draws (``(chains, draws, ...)``) as the Pyro program's values,
    ``(draws, chains, ...)``."""
    names = {"ising": ["x"], "rbm": ["v"], "mixture": ["z"],
             "sbn": [k for k in peer if k.startswith("z")]}[task]
    out = {}
    for name in names:
        value = torch.as_tensor(np.asarray(peer[name])).transpose(0, 1)
        if task == "mixture":
            value = torch.nn.functional.one_hot(value.long(), COMPONENTS)
        elif task == "sbn":
            value = value.unsqueeze(2)  # the data plate of one point
            name = latent_name(int(name[1:]))
        out[name] = value.float()
    return out


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


def scored(name: str, model: Callable, args: tuple, values: dict[str, torch.Tensor],
           seconds: float, **extra: Any) -> dict[str, Any]:
    statistic = log_joint(model, args, values)
    ess = float(az.ess(statistic, method="bulk"))
    return {"sampler": name, **extra, "seconds": round(seconds, 3), "ess": round(ess, 1),
            "ess_per_s": round(ess / seconds, 2), "mean_log_joint": round(float(statistic.mean()), 2),
            "_trace": statistic[0]}


def run_kernel(name: str, model: Callable, args: tuple, chains: int, warmup: int,
               draws: int, compile: str) -> dict[str, Any]:
    compile = "off" if name == "gibbs" else compile
    kernel = KERNELS[name](model, chains, False if compile == "off" else compile)
    stamps: list[float] = []
    mcmc = MCMC(kernel, num_samples=draws, warmup_steps=warmup, disable_progbar=True,
                hook_fn=lambda *_: stamps.append(time.perf_counter()))
    started = time.perf_counter()
    with local_params():
        mcmc.run(*args)
    steps = np.diff([started, *stamps])
    seconds = float(steps[warmup:].sum())
    eager = getattr(getattr(kernel, "graphs", None), "eager", {})
    return scored(name, model, args, mcmc.get_samples(), seconds, chains=chains, warmup=warmup,
                  draws=draws, compile=compile if not eager else f"{compile} (ran eagerly)",
                  compile_seconds=round(float(steps[0] - np.median(steps[1:])), 2),
                  acceptance_rate=getattr(kernel, "acceptance_rate", None))


def run_peer_sampler(name: str, python: Path, task: str, spec: dict, model: Callable,
                     args: tuple, chains: int, warmup: int, draws: int, seed: int,
                     threads: int) -> dict[str, Any]:
    out = run_peer(python, PEER_SCRIPTS[name], spec, chains, warmup, draws, seed,
                   threads=threads)
    return scored(name, model, args, as_pyro_draws(task, out), float(out["sampling_time"]),
                  chains=chains, warmup=warmup, draws=draws, compile="jit" if name == "numpyro"
                  else "pytensor", compile_seconds=round(float(out.get("compile_seconds", 0.0)), 2)
                  if "compile_seconds" in out else None, acceptance_rate=None,
                  version=str(out["version"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--samplers", default=",".join(SAMPLERS))
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--warmup", type=int, default=1000, help="the gradient kernels' warm-up steps")
    p.add_argument("--draws", type=int, default=5000, help="the gradient kernels' timed steps")
    p.add_argument("--compile", default="inductor", choices=["off", "replay", "inductor"],
                   help="how the gradient kernels' moves run")
    p.add_argument("--gibbs-warmup", type=int, default=20,
                   help="Gibbs's warm-up sweeps (a sweep runs the model once per unit)")
    p.add_argument("--gibbs-draws", type=int, default=100, help="Gibbs's timed sweeps")
    p.add_argument("--peer-warmup", type=int, default=20, help="PyMC's and NumPyro's warm-up sweeps")
    p.add_argument("--peer-draws", type=int, default=100, help="PyMC's and NumPyro's timed sweeps")
    p.add_argument("--pymc", choices=["make", "use", "skip"], default="make",
                   help="PyMC's rows: make its environment under benchmarks/ if missing, use it "
                        "only if present, or leave them out")
    p.add_argument("--numpyro", choices=["make", "use", "skip"], default="make",
                   help="NumPyro's rows, as --pymc")
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
                   help="runs of each sampler, in alternating order; the fastest counts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=Path, default=RUNS)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    tasks = [t for t in args.tasks.split(",") if t]
    samplers = [s for s in args.samplers.split(",") if s]
    unknown = sorted(set(samplers) - set(SAMPLERS))
    if unknown:
        raise SystemExit(f"--samplers: expected some of {', '.join(SAMPLERS)}, got {unknown}")
    pythons: dict[str, Path] = {}
    left_out: dict[str, str] = {}
    for peer in PEER_SCRIPTS:
        if peer in samplers:
            choice = getattr(args, peer)
            python, why = (None, "skipped") if choice == "skip" else peer_python(
                peer, choice == "make")
            if python is None:
                left_out[peer] = why
                print(f"{peer}: left out: {why}", flush=True)
            else:
                pythons[peer] = python
    samplers = [s for s in samplers if s in KERNELS or s in pythons]
    rows = []
    for task in tasks:
        if task == "ising":
            model, model_args, spec = ising(args.ising_size)
        elif task == "mixture":
            model, model_args, spec = mixture(args.mixture_points, args.seed)
        elif task == "rbm":
            model, model_args, spec = rbm_target(
                trained("rbm", shlex.split(args.rbm_flags), args.rbm, args))
        elif task == "sbn":
            sbn = trained("sbn", shlex.split(args.sbn_flags), args.sbn, args)
            x = load_dataset("binarized-mnist", path=args.data_path).test[:1]
            model, model_args, spec = sbn_target(sbn, x)
        else:
            raise SystemExit(f"--tasks: expected some of {', '.join(TASKS)}, got {task!r}")
        best: dict[str, dict[str, Any]] = {}
        orders = [samplers if i % 2 == 0 else samplers[::-1] for i in range(args.repeats)]
        for order in orders:  # alternating: drift favours no sampler
            for name in order:
                pyro.set_rng_seed(args.seed)
                if name in pythons:
                    row = run_peer_sampler(name, pythons[name], task, spec, model, model_args,
                                           args.chains, args.peer_warmup, args.peer_draws,
                                           args.seed, args.threads)
                else:
                    warmup, draws = ((args.gibbs_warmup, args.gibbs_draws) if name == "gibbs"
                                     else (args.warmup, args.draws))
                    row = run_kernel(name, model, model_args, args.chains, warmup, draws,
                                     args.compile)
                if name not in best or row["ess_per_s"] > best[name]["ess_per_s"]:
                    best[name] = row
        traces = {name: best[name].pop("_trace") for name in samplers}
        for name in samplers:
            rows.append({"task": task, **best[name]})
            print(rows[-1], flush=True)
        mixing_figure(task, rows[-len(samplers):], traces, args.results)
    args.results.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": "discrete-samplers", "rows": rows, "left_out": left_out,
              "machine": f"{platform.processor() or platform.machine()}, {args.threads} "
                         f"thread(s), torch {torch.__version__}",
              "command": "python benchmarks/discrete_samplers.py " + shlex.join(argv or [])}
    (args.results / "discrete_samplers.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.results / "discrete_samplers.md").write_text(markdown(record, args))
    return 0


def mixing_figure(task: str, rows: list[dict[str, Any]], traces: dict[str, np.ndarray],
                  folder: Path) -> None:
    """``discrete-samplers-TASK.png``: one chain's log joint against the seconds it took, and
    the ESS per second, of every sampler side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), width_ratios=(2, 1))
    for row in rows:
        trace = traces[row["sampler"]]
        per_draw = row["seconds"] / row["draws"]
        left.plot(np.arange(1, len(trace) + 1) * per_draw, trace, lw=0.8, label=row["sampler"])
    left.set_xscale("log")
    left.set_xlabel("seconds of sampling, all chains (log scale)")
    left.set_ylabel("log p of chain 1's draws")
    left.legend(fontsize=8)
    right.barh([r["sampler"] for r in rows], [r["ess_per_s"] for r in rows], color="tab:gray")
    right.set_xscale("log")
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.set_xlabel("bulk ESS of log p per second")
    right.invert_yaxis()
    figure.suptitle(f"{task}: {rows[0]['chains']} chains, one thread")
    figure.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    figure.savefig(folder / f"discrete-samplers-{task}.png", dpi=110)
    plt.close(figure)


def markdown(record: dict[str, Any], args: argparse.Namespace) -> str:
    lines = ["| task | sampler | ESS/s of log p | vs ppdgm Gibbs | vs PyMC | ESS | seconds | "
             "mean log p | acceptance |", "|---|---|---|---|---|---|---|---|---|"]
    by_task: dict[str, dict[str, float]] = {}
    for r in record["rows"]:
        by_task.setdefault(r["task"], {})[r["sampler"]] = r["ess_per_s"]
    for r in record["rows"]:
        speeds = by_task[r["task"]]
        ratio = {base: f"{r['ess_per_s'] / speeds[base]:.1f}x" if speeds.get(base) else "-"
                 for base in ("gibbs", "pymc")}
        accept = "-" if r["acceptance_rate"] is None else f"{r['acceptance_rate']:.2f}"
        name = r["sampler"] if r["compile"] in ("off", "jit", "pytensor") else \
            f"{r['sampler']} ({r['compile']})"
        lines.append(f"| {r['task']} | {name} | {r['ess_per_s']:.1f} | {ratio['gibbs']} | "
                     f"{ratio['pymc']} | {r['ess']:.0f} | {r['seconds']:.1f} | "
                     f"{r['mean_log_joint']:.1f} | {accept} |")
    lines += ["", f"{args.chains} chains; the gradient kernels {args.warmup} warm-up steps and "
                  f"{args.draws} timed steps, ppdgm's Gibbs {args.gibbs_warmup} and "
                  f"{args.gibbs_draws} sweeps, PyMC and NumPyro {args.peer_warmup} and "
                  f"{args.peer_draws} sweeps; {record['machine']}."]
    for peer, why in record["left_out"].items():
        lines.append(f"{peer} left out: {why}.")
    lines += ["", f"    {record['command']}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
