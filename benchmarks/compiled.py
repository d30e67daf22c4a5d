"""Milliseconds per training step: hand-written PyTorch, eager and compiled, against Pyro SVI and
ppdgm's engine, eager and with its compiled step (``TrainConfig(compile="replay"|"inductor")``).

Rows (each on the same data and batches for every contender, from the same initial weights):

* ``vae-h64-b16`` and ``vae-h400-b128``: a 784-H-20 Bernoulli VAE written as plain Pyro functions
  that register their networks with ``pyro.module`` (the way Pyro's tutorials write it), trained
  on Trace_ELBO; the hand loop computes the same single-sample ELBO as tensor algebra.
* ``diffusion-mlp``: ppdgm's diffusion model on 2-D points (the denoising MLP, T = 1000, batch
  100) on the denoising loss; the hand loop draws t and the noise and regresses on it.
* ``sbn-vimco50``: a 784-200 sigmoid belief net on VIMCO with 50 particles, batch 24 (no hand
  loop: the estimator is the point).

The contenders' rounds are interleaved in one process (each runs ``--steps`` steps, then the
next), so the machine's drift hits all alike; the figure is the median over ``--rounds`` rounds of
the milliseconds per step, after one warm-up round (which pays tracing and compiling, reported
apart as the first round's extra seconds). ``hand_compiled`` is the hand loss under
``torch.compile`` (forward and backward compiled, Adam eager): the best plain PyTorch does here.
The first step of every contender is checked to give the same loss on the same batch and draws.

    python benchmarks/compiled.py                   # 2 CPU threads; writes results/compiled.{json,md}
    python benchmarks/compiled.py --rows vae-h64-b16 --steps 100 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from torch import nn
from torch.nn import functional as F

from ppdgm.inference import Engine, TrainConfig

RESULTS = Path(__file__).resolve().parent / "results"
ROWS = ("vae-h64-b16", "vae-h400-b128", "diffusion-mlp", "sbn-vimco50")
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


def _diffusion_row(steps: int) -> dict[str, Any]:
    from ppdgm.inference.objectives import DenoisingLoss
    from ppdgm.models import Diffusion, DiffusionConfig

    class Wrapped:
        def __init__(self) -> None:
            self.net = Diffusion(DiffusionConfig(x_shape=(2,), timesteps=1000, hidden=(256, 256, 256)))
            self.model, self.guide = self.net.model, self.net.guide

        def hand_loss(self, x: torch.Tensor) -> torch.Tensor:
            d, sched = self.net, self.net.schedule
            t = torch.randint(1, d.config.timesteps + 1, (x.shape[0],), device=x.device)
            y = d.normalize(x)
            eps = torch.randn_like(y)
            noisy = sched.at("sqrt_alpha_bar", t, y) * y + sched.at("sqrt_one_minus_alpha_bar", t, y) * eps
            return (d.denoiser(noisy, t.to(y.dtype)) - eps).pow(2).mean(-1).sum()

        def parameters(self) -> list[torch.Tensor]:
            return list(self.net.parameters())

    torch.manual_seed(0)
    data = torch.randn(100 * steps, 2)
    return {"make": Wrapped, "objective": DenoisingLoss, "data": data, "batch": 100, "hand": True}


def _sbn_row(steps: int) -> dict[str, Any]:
    from ppdgm.inference.objectives import VIMCO
    from ppdgm.models import SBNConfig, SigmoidBeliefNet

    class Wrapped:
        def __init__(self) -> None:
            self.net = SigmoidBeliefNet(SBNConfig(x_shape=(784,), layers=(200,)))
            self.model, self.guide = self.net.model, self.net.guide

    torch.manual_seed(0)
    data = (torch.rand(24 * steps, 784) < 0.3).float()
    return {"make": Wrapped, "objective": lambda: VIMCO(num_particles=50), "data": data,
            "batch": 24, "hand": False}


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
            loss.item()  # what a loop that logs its loss pays
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


def measure(row: str, steps: int, rounds: int) -> dict[str, Any]:
    spec = {"vae-h64-b16": lambda: _vae_row(64, 16, steps),
            "vae-h400-b128": lambda: _vae_row(400, 128, steps),
            "diffusion-mlp": lambda: _diffusion_row(steps),
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
    out["how_players_ran"] = {c: e[0].compiled_players for c, e in engines.items() if e}
    return out


def _loss_check(spec: dict[str, Any], x: torch.Tensor) -> dict[str, float]:
    """The hand loss and the Pyro objective on one batch, from the same weights and seed."""
    pyro.clear_param_store()
    torch.manual_seed(1)
    pair = spec["make"]()
    pyro.set_rng_seed(7)
    hand = pair.hand_loss(x).item()
    pyro.set_rng_seed(7)
    pyro_loss = float(spec["objective"]().differentiable_loss(pair.model, pair.guide, x)) \
        if hasattr(spec["objective"](), "differentiable_loss") else \
        float(spec["objective"]()(pair.model, pair.guide, x))
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
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [measure(r, args.steps, args.rounds) for r in args.rows.split(",")]
    command = "python benchmarks/compiled.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"rows": rows, "command": command.strip(), "threads": args.threads,
              "torch": torch.__version__, "pyro": pyro.__version__, "machine": platform.machine(),
              "numpyro": "not run (NumPyro's own environment is not built by this benchmark yet)"}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compiled.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "compiled.md").write_text(_table(result))
    print(_table(result))
    return result


def _table(result: dict[str, Any]) -> str:
    head = ["workload", "hand eager", "hand compiled", "Pyro SVI", "ppdgm eager", "ppdgm replay",
            "ppdgm compiled", "ppdgm compiled / hand compiled"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(v: Any) -> str:
        return "–" if v is None else f"{v:.2f}"

    for r in result["rows"]:
        ratio = (f"{r['ppdgm_compiled_ms'] / r['hand_compiled_ms']:.2f}x"
                 if r["hand_compiled_ms"] and r["ppdgm_compiled_ms"] else "–")
        lines.append("| " + " | ".join([r["workload"], *(cell(r[c]) for c in COLUMNS[:6]), ratio]) + " |")
    lines.append("")
    lines.append(f"Milliseconds per step, median of the rounds; `{result['command']}` "
                 f"({result['threads']} CPU threads, torch {result['torch']}, Pyro {result['pyro']}). "
                 "NumPyro: " + result["numpyro"] + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
