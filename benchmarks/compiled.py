"""Milliseconds per training step: hand-written PyTorch, eager and compiled, against Pyro SVI and
ppdgm's engine, eager and with its compiled step (``TrainConfig(compile="replay"|"inductor")``).

Rows (each on the same data and batches for every contender, from the same initial weights):

* ``vae-h64-b16`` and ``vae-h400-b128``: a 784-H-20 Bernoulli VAE written as plain Pyro functions
  that register their networks with ``pyro.module`` (the way Pyro's tutorials write it), trained
  on Trace_ELBO; the hand loop computes the same single-sample ELBO as tensor algebra.
* ``diffusion-mlp``: ppdgm's diffusion model on 2-D points (the denoising MLP, T = 1000, batch
  100) on the denoising loss; the hand loop draws t and the noise and regresses on it.
* ``diffusion-unet``: the same on 1x8x8 images with ppdgm's U-Net (32 channels, multipliers
  1-2-2, batch 128), a tenth as many steps per round (a step is about a hundred times longer).
* ``sbn-vimco50``: a 784-200 sigmoid belief net on VIMCO with 50 particles, batch 24; the hand
  loop computes VIMCO's surrogate (bound and leave-one-out signals) as tensor algebra.
* ``gibbs-64-chains``: milliseconds per Metropolized Gibbs sweep over an SBN 64-8-8 posterior
  with 64 vectorized chains, hand-written (eager and under ``torch.compile``) against ppdgm's
  ``Gibbs`` kernel (eager, replayed, Inductor); see ``_gibbs_sweeps.py``. A round is a tenth of
  ``--steps`` sweeps; the posterior means of every contender are checked against the hand sweep's.
* ``rbm-ais``: milliseconds per temperature of AIS on a 784-500 RBM with 1000 runs
  (``ais_log_partition``, ``--steps`` uniform temperatures a round), eager (itself a plain tensor
  loop) and ``compile=True``; the two log Z estimates are reported side by side.

The contenders' rounds are interleaved in one process (each runs ``--steps`` steps, then the
next), so the machine's drift hits all alike; the figure is the median over ``--rounds`` rounds of
the milliseconds per step, after one warm-up round (which pays tracing and compiling, reported
apart as the first round's extra seconds). ``hand_compiled`` is the hand loss under
``torch.compile`` (forward and backward compiled, Adam eager): the best plain PyTorch does here.
The hand loss and Pyro's objective are checked to agree on one batch with the same draws.

NumPyro's column (the VAE rows): the same VAE as NumPyro functions, the same batches and initial
weights, ``jax.jit(svi.update)``, run in NumPyro's own environment, ``benchmarks/.venv-numpyro``,
which the script makes with pip when it is missing (``--numpyro use`` only uses one that exists,
``--numpyro skip`` leaves the column out). It runs after the PyTorch contenders, in its own process.

    python benchmarks/compiled.py                   # 2 CPU threads; writes results/compiled.{json,md}
    python benchmarks/compiled.py --rows vae-h64-b16 --steps 100 --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from torch import nn
from torch.nn import functional as F

from ppdgm.inference import Engine, TrainConfig

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from _peers import peer_python  # noqa: E402

ROWS = ("vae-h64-b16", "vae-h400-b128", "diffusion-mlp", "diffusion-unet", "sbn-vimco50",
        "gibbs-64-chains", "rbm-ais")
COLUMNS = ("hand_eager_ms", "hand_compiled_ms", "svi_ms", "ppdgm_eager_ms", "ppdgm_replay_ms",
           "ppdgm_compiled_ms", "numpyro_jit_ms")
LR = 1e-3


# ----------------------------------------------------------------------------- the workloads


class PlainVAE:
    """A VAE as plain Pyro functions over torch networks, and the same ELBO as tensor algebra."""

    def __init__(self, hidden: int, z_dim: int = 20) -> None:
        self.z_dim = z_dim
        self.encoder = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 2 * z_dim))
        self.decoder = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, 784))

    def model(self, x: torch.Tensor) -> None:
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.z_dim), 1.0).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=self.decoder(z)).to_event(1), obs=x)

    def guide(self, x: torch.Tensor) -> None:
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0]):
            loc, raw = self.encoder(x).split(self.z_dim, -1)
            pyro.sample("z", dist.Normal(loc, F.softplus(raw)).to_event(1))

    def hand_loss(self, x: torch.Tensor) -> torch.Tensor:
        loc, raw = self.encoder(x).split(self.z_dim, -1)
        scale = F.softplus(raw)
        z = loc + scale * torch.randn_like(loc)
        log_px = -F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum")
        log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum()
        log_qz = (-0.5 * ((z - loc) / scale).pow(2) - scale.log() - 0.5 * math.log(2 * math.pi)).sum()
        return -(log_px + log_pz - log_qz)

    def parameters(self) -> list[torch.Tensor]:
        return [*self.encoder.parameters(), *self.decoder.parameters()]


def _vae_row(hidden: int, batch: int, steps: int) -> dict[str, Any]:
    torch.manual_seed(0)
    data = (torch.rand(batch * steps, 784) < 0.3).float()
    return {"make": lambda: PlainVAE(hidden), "objective": Trace_ELBO, "data": data, "batch": batch,
            "hand": True}


def _diffusion_row(steps: int, unet: bool = False) -> dict[str, Any]:
    from ppdgm.inference.objectives import DenoisingLoss
    from ppdgm.models import Diffusion, DiffusionConfig

    config = (DiffusionConfig(x_shape=(1, 8, 8), timesteps=1000, denoiser="unet") if unet else
              DiffusionConfig(x_shape=(2,), timesteps=1000, hidden=(256, 256, 256)))

    class Wrapped:
        def __init__(self) -> None:
            self.net = Diffusion(config)
            self.model, self.guide = self.net.model, self.net.guide
            # The hand loop's network: the same one as a plain torch module (a PyroModule's
            # attribute reads go through Pyro, which torch.compile cannot trace without breaks).
            self.plain = plain_module(self.net.denoiser)
            self.schedule, self.timesteps = self.net.schedule, config.timesteps
            self.shift, self.scale = config.data_shift, config.data_scale

        def hand_loss(self, x: torch.Tensor) -> torch.Tensor:
            sched = self.schedule
            t = torch.randint(1, self.timesteps + 1, (x.shape[0],), device=x.device)
            y = (x - self.shift) / self.scale
            eps = torch.randn_like(y)
            noisy = sched.at("sqrt_alpha_bar", t, y) * y + sched.at("sqrt_one_minus_alpha_bar", t, y) * eps
            return (self.plain(noisy, t.to(y.dtype)) - eps).pow(2).flatten(1).mean(-1).sum()

        def parameters(self) -> list[torch.Tensor]:
            return list(self.plain.parameters())

    torch.manual_seed(0)
    batch = 128 if unet else 100
    data = torch.randn(batch * max(steps // 10, 2), 1, 8, 8) if unet else torch.randn(batch * steps, 2)
    return {"make": Wrapped, "objective": DenoisingLoss, "data": data, "batch": batch, "hand": True}


def plain_module(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every PyroModule turned back into its torch class and every
    parameter a plain ``nn.Parameter``: the hand-written loops' own network, at the same weights."""
    from pyro.nn import PyroModule

    copy_ = copy.deepcopy(module)
    for sub in copy_.modules():
        if isinstance(sub, PyroModule):
            sub.__class__ = type(sub).__bases__[0]
        for name, p in list(sub._parameters.items()):
            if p is not None:
                sub._parameters[name] = nn.Parameter(p.detach().clone())
    return copy_


def _sbn_row(steps: int, particles: int = 50) -> dict[str, Any]:
    from ppdgm.inference.objectives import VIMCO
    from ppdgm.inference.objectives.vimco import leave_one_out_bounds
    from ppdgm.models import SBNConfig, SigmoidBeliefNet

    class Wrapped:
        def __init__(self) -> None:
            self.net = SigmoidBeliefNet(SBNConfig(x_shape=(784,), layers=(200,)))
            self.model, self.guide = self.net.model, self.net.guide
            self.plain = nn.Module()  # the same weights as plain torch modules
            self.plain.recognition = plain_module(self.net.recognition)
            self.plain.generative = plain_module(self.net.generative)
            self.plain.top_logits = nn.Parameter(self.net.top_logits.detach().clone())

        def hand_loss(self, x: torch.Tensor) -> torch.Tensor:
            # VIMCO's surrogate as tensor algebra: K particles of q(z | x), their weights, the
            # bound, and each particle's score times its leave-one-out signal.
            net = self.plain
            logits_q = net.recognition[0](x)
            z = torch.bernoulli(torch.sigmoid(logits_q).expand(particles, *logits_q.shape))
            log_q = -F.binary_cross_entropy_with_logits(
                logits_q.expand_as(z), z, reduction="none").sum(-1)
            log_pz = -F.binary_cross_entropy_with_logits(
                net.top_logits.expand_as(z), z, reduction="none").sum(-1)
            log_px = -F.binary_cross_entropy_with_logits(
                net.generative[0](z), x.expand(particles, *x.shape), reduction="none").sum(-1)
            log_w = log_pz + log_px - log_q
            bound = torch.logsumexp(log_w, dim=0) - math.log(particles)
            signal = bound.detach().unsqueeze(0) - leave_one_out_bounds(log_w.detach())
            surrogate = bound.sum() + (signal * log_q).sum()
            return -bound.sum().detach() - (surrogate - surrogate.detach())

        def parameters(self) -> list[torch.Tensor]:
            return list(self.plain.parameters())

    torch.manual_seed(0)
    data = (torch.rand(24 * steps, 784) < 0.3).float()
    return {"make": Wrapped, "objective": lambda: VIMCO(num_particles=particles), "data": data,
            "batch": 24, "hand": True}


# ----------------------------------------------------------------------------- the contenders


def _batches(data: torch.Tensor, batch: int) -> list[torch.Tensor]:
    return [data[i:i + batch] for i in range(0, len(data) - batch + 1, batch)]


def hand_runner(pair: Any, data: torch.Tensor, batch: int, compiled: bool) -> Callable[[], float]:
    params = pair.parameters()
    opt = torch.optim.Adam(params, lr=LR)
    loss_fn = torch.compile(pair.hand_loss) if compiled else pair.hand_loss
    batches = _batches(data, batch)

    def run() -> float:
        started = time.perf_counter()
        for x in batches:
            loss = loss_fn(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.detach().item()  # what a loop that logs its loss pays
        return (time.perf_counter() - started) / len(batches)

    return run


def svi_runner(pair: Any, objective: Any, data: torch.Tensor, batch: int) -> Callable[[], float]:
    svi = SVI(pair.model, pair.guide, pyro.optim.Adam({"lr": LR}), objective)
    batches = _batches(data, batch)

    def run() -> float:
        started = time.perf_counter()
        for x in batches:
            svi.step(x)
        return (time.perf_counter() - started) / len(batches)

    return run


def engine_runner(pair: Any, make_objective: Callable[[], Any], data: torch.Tensor, batch: int,
                  compile: str, engines: list[Engine]) -> Callable[[], float]:
    """A fresh run of two epochs; its first pays tracing and compiling, its second is timed."""
    steps = len(_batches(data, batch))

    def run() -> float:
        config = TrainConfig(epochs=2, batch_size=batch, lr=LR, device="cpu", progress=False,
                             shuffle=False, drop_last=True, validate="never", compile=compile)
        engine = Engine(pair.model, pair.guide, make_objective(), config=config)
        history = engine.fit(data)
        engines[:] = [engine]
        return history.epochs[-1]["seconds"] / steps

    return run


# ----------------------------------------------------------------------------- measuring


def numpyro_vae(python: Path, initial: dict[str, torch.Tensor], data: torch.Tensor, batch: int,
                rounds: int, threads: int) -> dict[str, Any]:
    """The same VAE, data, batches and initial weights as NumPyro's jit-compiled SVI."""
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "data.npy", data.numpy())
        np.savez(Path(folder) / "weights.npz", **{k: v.numpy() for k, v in initial.items()})
        env = {**os.environ, "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen=true "
                                          f"intra_op_parallelism_threads={threads}"}
        done = subprocess.run([str(python), str(HERE / "_numpyro_vae.py"), "--data",
                               str(Path(folder) / "data.npy"), "--weights",
                               str(Path(folder) / "weights.npz"), "--batch", str(batch),
                               "--rounds", str(rounds)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(row: str, steps: int, rounds: int, numpyro: Path | None = None,
            threads: int = 2) -> dict[str, Any]:
    if row == "gibbs-64-chains":
        return _measure_gibbs(max(steps // 10, 2), rounds)
    if row == "rbm-ais":
        return _measure_ais(steps, rounds)
    spec = {"vae-h64-b16": lambda: _vae_row(64, 16, steps),
            "vae-h400-b128": lambda: _vae_row(400, 128, steps),
            "diffusion-mlp": lambda: _diffusion_row(steps),
            "diffusion-unet": lambda: _diffusion_row(steps, unet=True),
            "sbn-vimco50": lambda: _sbn_row(steps)}[row]()
    data, batch = spec["data"], spec["batch"]
    runners: dict[str, Callable[[], float]] = {}
    engines: dict[str, list[Engine]] = {}
    initial = None
    for column in COLUMNS:
        if column == "numpyro_jit_ms" or (column.startswith("hand") and not spec["hand"]):
            continue
        pyro.clear_param_store()
        torch.manual_seed(1)
        pair = spec["make"]()
        if initial is None:
            initial = [p.detach().clone() for p in _params(pair)]
        else:  # every contender starts from the same weights
            with torch.no_grad():
                for p, q in zip(_params(pair), initial):
                    p.copy_(q)
        if column == "hand_eager_ms":
            runners[column] = hand_runner(pair, data, batch, compiled=False)
        elif column == "hand_compiled_ms":
            runners[column] = hand_runner(pair, data, batch, compiled=True)
        elif column == "svi_ms":
            runners[column] = svi_runner(pair, spec["objective"](), data, batch)
        else:
            mode = {"ppdgm_eager_ms": "off", "ppdgm_replay_ms": "replay",
                    "ppdgm_compiled_ms": "inductor"}[column]
            engines[column] = []
            runners[column] = engine_runner(pair, spec["objective"], data, batch, mode,
                                            engines[column])
    check = _loss_check(spec, data[:batch]) if spec["hand"] else None
    times: dict[str, list[float]] = {c: [] for c in runners}
    first: dict[str, float] = {}
    for round_ in range(rounds + 1):
        for column, run in runners.items():
            pyro.clear_param_store()  # each contender's own networks, under the same names
            pyro.set_rng_seed(round_)
            started = time.perf_counter()
            per_step = run()
            if round_ == 0:
                first[column] = time.perf_counter() - started
            else:
                times[column].append(per_step * 1e3)
    out: dict[str, Any] = {"workload": row}
    for column in COLUMNS:
        out[column] = round(statistics.median(times[column]), 3) if column in times else None
    out["first_round_seconds"] = {c: round(v, 2) for c, v in first.items()}
    out["loss_check"] = check
    if numpyro is not None and row.startswith("vae"):
        pyro.clear_param_store()
        torch.manual_seed(1)
        pair = spec["make"]()
        with torch.no_grad():
            for p, q in zip(_params(pair), initial):
                p.copy_(q)
        weights = {f"encoder.{k}": v.detach() for k, v in pair.encoder.state_dict().items()}
        weights.update({f"decoder.{k}": v.detach() for k, v in pair.decoder.state_dict().items()})
        result = numpyro_vae(numpyro, weights, data, batch, rounds, threads)
        out["numpyro"] = result
        if "numpyro_jit_ms" in result:
            out["numpyro_jit_ms"] = round(result["numpyro_jit_ms"], 3)
    out["how_players_ran"] = {c: e[0].compiled_players for c, e in engines.items() if e}
    return out


def _measure_gibbs(sweeps: int, rounds: int) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from _gibbs_sweeps import gibbs_row_runners

    runners, mean_check = gibbs_row_runners(sweeps)
    times: dict[str, list[float]] = {c: [] for c in runners}
    first: dict[str, float] = {}
    for round_ in range(rounds + 1):
        for column, run in runners.items():
            torch.manual_seed(round_)
            per_sweep = run()
            if round_ == 0:
                first[column] = per_sweep * sweeps
            else:
                times[column].append(per_sweep * 1e3)
    out: dict[str, Any] = {"workload": "gibbs-64-chains"}
    for column in COLUMNS:
        out[column] = round(statistics.median(times[column]), 3) if column in times else None
    out["first_round_seconds"] = {c: round(v, 2) for c, v in first.items()}
    out["mean_check"] = mean_check()
    return out


def _measure_ais(temperatures: int, rounds: int) -> dict[str, Any]:
    from ppdgm.inference.ais import ais_log_partition
    from ppdgm.models import RBM

    torch.manual_seed(0)
    rbm = RBM(visible=784, hidden=500)
    with torch.no_grad():
        rbm.weight.normal_(0.0, 0.05)
    columns = {"ppdgm_eager_ms": False, "ppdgm_compiled_ms": True}
    times: dict[str, list[float]] = {c: [] for c in columns}
    first: dict[str, float] = {}
    log_z: dict[str, float] = {}
    for round_ in range(rounds + 1):
        for column, compile in columns.items():
            started = time.perf_counter()
            result = ais_log_partition(rbm, num_runs=1000, betas=temperatures, seed=round_,
                                       compile=compile)
            seconds = time.perf_counter() - started
            if round_ == 0:
                first[column] = round(seconds, 2)
            else:
                times[column].append(seconds / temperatures * 1e3)
                log_z[column] = round(result.log_z, 3)
    out: dict[str, Any] = {"workload": "rbm-ais"}
    for column in COLUMNS:
        out[column] = round(statistics.median(times[column]), 3) if column in times else None
    out["first_round_seconds"] = first
    out["log_z_last_round"] = log_z
    return out


def _loss_check(spec: dict[str, Any], x: torch.Tensor) -> dict[str, float]:
    """The hand loss and the Pyro objective on one batch, from the same weights and seed."""
    pyro.clear_param_store()
    torch.manual_seed(1)
    pair = spec["make"]()
    pyro.set_rng_seed(7)
    hand = pair.hand_loss(x).detach().item()
    pyro.set_rng_seed(7)
    objective = spec["objective"]()
    loss = (objective.differentiable_loss(pair.model, pair.guide, x)
            if hasattr(objective, "differentiable_loss") else objective(pair.model, pair.guide, x))
    pyro_loss = loss.detach().item()
    pyro.clear_param_store()
    return {"hand": round(hand, 4), "pyro": round(pyro_loss, 4)}


def _params(pair: Any) -> list[torch.Tensor]:
    if hasattr(pair, "parameters"):
        return list(pair.parameters())
    return list(pair.net.parameters())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--steps", type=int, default=200, help="steps per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--numpyro", choices=["make", "use", "skip"], default="make",
                   help="NumPyro's column: make its environment under benchmarks/ if missing "
                        "(make), use it only if present (use), or leave the column out (skip)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    numpyro, why_not = (None, "skipped") if args.numpyro == "skip" else \
        peer_python("numpyro", args.numpyro == "make")
    given = argv if argv is not None else sys.argv[1:]
    command = ("python benchmarks/compiled.py " + " ".join(given)).strip()
    rows = [{**measure(r, args.steps, args.rounds, numpyro, args.threads), "command": command}
            for r in args.rows.split(",")]
    out = Path(args.results)
    # A run of some rows keeps the other rows of the results file, each with its own command.
    kept = _earlier_rows(out / "compiled.json", {r["workload"] for r in rows})
    order = {name: i for i, name in enumerate(ROWS)}
    rows = sorted([*kept, *rows], key=lambda r: order.get(r["workload"], len(ROWS)))
    result = {"rows": rows, "command": command, "threads": args.threads,
              "torch": torch.__version__, "pyro": pyro.__version__, "machine": platform.machine(),
              "numpyro": _numpyro_note(numpyro is not None, why_not, kept)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "compiled.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "compiled.md").write_text(_table(result))
    print(_table(result))
    return result


def _numpyro_note(ran: bool, why_not: str, kept: list[dict[str, Any]]) -> str:
    ran_before = any(r.get("numpyro_jit_ms") is not None for r in kept)
    if ran or ran_before:
        return "jit-compiled SVI in its own environment, run after the other contenders"
    return f"not run: {why_not}"


def _earlier_rows(path: Path, measured: set[str]) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    earlier = json.loads(path.read_text())
    rows = [r for r in earlier.get("rows", []) if r.get("workload") not in measured]
    for r in rows:
        r.setdefault("command", earlier.get("command"))
    return rows


def _table(result: dict[str, Any]) -> str:
    head = ["workload", "hand eager", "hand compiled", "Pyro SVI", "ppdgm eager", "ppdgm replay",
            "ppdgm compiled", "NumPyro jit", "ppdgm compiled / hand compiled"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(v: Any) -> str:
        return "–" if v is None else f"{v:.2f}"

    for r in result["rows"]:
        ratio = (f"{r['ppdgm_compiled_ms'] / r['hand_compiled_ms']:.2f}x"
                 if r["hand_compiled_ms"] and r["ppdgm_compiled_ms"] else "–")
        lines.append("| " + " | ".join([r["workload"], *(cell(r[c]) for c in COLUMNS), ratio]) + " |")
    lines.append("")
    commands = sorted({r.get("command") or result["command"] for r in result["rows"]})
    lines.append("Milliseconds per step, median of the rounds; " + ", ".join(f"`{c}`" for c in commands)
                 + f" ({result['threads']} CPU threads, torch {result['torch']}, Pyro {result['pyro']}). "
                 "NumPyro: " + result["numpyro"] + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
