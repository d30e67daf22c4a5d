"""Where a training step's time goes: the engine's VAE step profiled and split by library layer.

The 784-400-20 MLP VAE of ``benchmarks/overhead.py`` (Trace_ELBO, batch 128, Adam) trains for
``--steps`` engine steps under cProfile, after a warm-up epoch, and the own time of every function
is summed by where it lives: torch's C++ kernels and autograd (compute that a hand-written loop
pays too), Pyro's effect handlers and runtime (``pyro/poutine``), Pyro's ``PyroModule`` parameter
reads (``pyro/nn``), Pyro's distributions and ELBO (``pyro/distributions``, ``pyro/infer``),
torch's Python layers (``torch/nn``, ``torch/optim``, ``torch/distributions``...), ppdgm itself,
and the rest. The hand-written PyTorch step is profiled the same way beside it.

    python benchmarks/profile_step.py        # writes benchmarks/results/profile-step.{json,md}
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

import pyro
import torch
from pyro.infer import Trace_ELBO

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import BATCH, LR, HandVAE  # noqa: E402  (the same networks and loss)

from ppdgm.inference import Engine, TrainConfig  # noqa: E402
from ppdgm.models import VAE, VAEConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LAYERS = [  # (label, path fragment) in the order they are matched
    ("Pyro effect handlers and runtime", "pyro/poutine"),
    ("Pyro PyroModule parameter reads", "pyro/nn"),
    ("Pyro ELBO (pyro/infer)", "pyro/infer"),
    ("Pyro distributions", "pyro/distributions"),
    ("Pyro other", "/pyro/"),
    ("ppdgm", "/ppdgm/"),
    ("torch Python layers (nn, optim, distributions, autograd.py)", "/torch/"),
]


def _layer(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<built-in") or filename == "~":
        return "torch kernels and autograd (C++)"
    for label, fragment in LAYERS:
        if fragment in filename:
            return label
    return "other Python"


def profile(step, steps: int) -> dict[str, float]:
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    wall = time.perf_counter() - started
    totals: dict[str, float] = {}
    for (filename, _, _), (_, _, own, _, _) in pstats.Stats(profiler).stats.items():
        label = _layer(filename)
        totals[label] = totals.get(label, 0.0) + own
    scale = wall / sum(totals.values())  # cProfile's own overhead is spread evenly
    return {"ms_per_step": 1e3 * wall / steps,
            "ms_by_layer": {k: round(1e3 * v * scale / steps, 3)
                            for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.rand(BATCH * args.steps, 784) < 0.3).float()

    pyro.clear_param_store()
    vae = VAE(VAEConfig(x_shape=(784,), z_dim=20, hidden=(400,)))
    engine = Engine(vae.model, vae.guide, Trace_ELBO(), config=TrainConfig(
        epochs=2, batch_size=BATCH, lr=LR, device="cpu", progress=False, seed=0))
    batches = iter(x.split(BATCH))
    engine.fit(x[: BATCH * 20])  # warm-up epoch: parameters found, validation off afterwards
    engine.config.epochs = 3
    state = engine._states[0]  # noqa: SLF001 - a benchmark reaches into the engine's step
    position = type("P", (), {"step": 0, "epoch": 2, "batch": 0})()

    def engine_step() -> None:
        engine._step((next(batches),), position)  # noqa: SLF001

    hand = HandVAE()
    opt = torch.optim.Adam(hand.parameters(), lr=LR)
    hand_batches = iter(x.split(BATCH))

    def hand_step() -> None:
        opt.zero_grad()
        loss = hand.loss(next(hand_batches))
        loss.backward()
        opt.step()
        loss.item()

    with pyro.validation_enabled(False):
        record = {"engine": profile(engine_step, args.steps),
                  "pytorch": profile(hand_step, args.steps)}
    del state
    record.update(command="python benchmarks/profile_step.py " + " ".join(argv or sys.argv[1:]),
                  steps=args.steps, threads=args.threads, torch=torch.__version__,
                  pyro=pyro.__version__)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile-step.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "profile-step.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def markdown(r: dict) -> str:
    layers = list(dict.fromkeys([*r["engine"]["ms_by_layer"], *r["pytorch"]["ms_by_layer"]]))
    lines = ["| ms per step, 784-400-20 VAE, batch 128, under cProfile | ppdgm engine | PyTorch loop |",
             "|---|---|---|"]
    for layer in layers:
        lines.append(f"| {layer} | {r['engine']['ms_by_layer'].get(layer, 0):.3f} | "
                     f"{r['pytorch']['ms_by_layer'].get(layer, 0):.3f} |")
    lines.append(f"| **total** | **{r['engine']['ms_per_step']:.3f}** | "
                 f"**{r['pytorch']['ms_per_step']:.3f}** |")
    return ("\n".join(lines) + f"\n\n{r['steps']} steps each, {r['threads']} threads, torch "
            f"{r['torch']}, Pyro {r['pyro']}. Command: `{r['command']}`. cProfile slows Python "
            "code more than kernels; the split, not the totals, is the point.\n")


if __name__ == "__main__":
    sys.exit(main())
