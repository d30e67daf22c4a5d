"""One log-likelihood scale for the GAN, the VAE and the VAE-GAN (Wu, Burda, Salakhutdinov and
Grosse, 2017), on the digits and on binarized MNIST.

Each model is trained by its ``ppdgm fit`` recipe with the same latent size and MLP widths, then
its decoder g(z) (the VAE's likelihood mean, the generators' points) becomes the latent-variable
model z ~ N(0, I), x | z ~ N(g(z), sigma^2 I) and is scored by
:func:`ppdgm.decoder_log_likelihood`: AIS over z with HMC transitions, sigma chosen among
``DEFAULT_SCALES`` on held-out validation points, then ``--points`` test points scored with
``--steps`` intermediate distributions and ``--chains`` runs each. BDMC on ``--check-points``
points simulated from each chosen model gives the gap between the lower and the upper bound at the
same budget: how far an estimate may be from the truth on such data.

Validation and scored points are never trained on: binarized MNIST's valid and test splits; for
the digits, the first ``--valid-points`` of the 297 test digits choose sigma and the next
``--points`` are scored. A model whose checkpoint exists with the same settings is read back, not
retrained, so the benchmark may span several sittings.

    python benchmarks/decoder_likelihood.py                        # both data sets, ~20 min, 2 cores
    python benchmarks/decoder_likelihood.py --data digits --steps 2000

Writes ``benchmarks/results/decoder-likelihood.json`` (``rows``: model, data, log_px and its
standard error in nats per point, the BDMC gap, sigma) and ``decoder-likelihood.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ppdgm import decoder_log_likelihood
from ppdgm.cli import main as ppdgm_main
from ppdgm.data import load_dataset
from ppdgm.recipes import load_trained_model

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = Path(__file__).resolve().parent / "runs" / "decoder-likelihood"
MODELS = ("gan", "vae", "vae-gan")
DATASETS = ("digits", "binarized-mnist")
#: Training epochs per data set: the digits have 1,500 training images, MNIST 50,000.
EPOCHS = {"digits": 300, "binarized-mnist": 10}
TITLES = {"gan": "GAN", "vae": "VAE", "vae-gan": "VAE-GAN"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=",".join(DATASETS), help="comma-separated data sets")
    p.add_argument("--data-path", default=None, help="binarized MNIST .npz (see ppdgm.data)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs of every model (default: 300 digits, 10 MNIST)")
    p.add_argument("--z-dim", type=int, default=10)
    p.add_argument("--hidden", default="256,256")
    p.add_argument("--points", type=int, default=100, help="test points scored")
    p.add_argument("--valid-points", type=int, default=50, help="points that choose sigma")
    p.add_argument("--steps", type=int, default=1000, help="AIS intermediate distributions")
    p.add_argument("--chains", type=int, default=16, help="AIS runs per point")
    p.add_argument("--check-points", type=int, default=16, help="simulated points for BDMC")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--runs", type=Path, default=RUNS)
    p.add_argument("--results", type=Path, default=RESULTS)
    return p.parse_args(argv)


def train(model: str, data: str, args: argparse.Namespace, epochs: int) -> tuple[Path, float]:
    """The run's checkpoint and its training seconds, trained now or read back."""
    out = args.runs / f"{data}-{model}"
    settings = {"epochs": epochs, "z_dim": args.z_dim, "hidden": args.hidden, "seed": args.seed}
    done = out / "trained.json"
    if done.exists() and json.loads(done.read_text())["settings"] == settings:
        return out / "checkpoint.pt", json.loads(done.read_text())["seconds"]
    command = ["fit", model, "--data", data, "--out", str(out), "--epochs", str(epochs),
               "--z-dim", str(args.z_dim), "--hidden", args.hidden, "--seed", str(args.seed),
               "--device", args.device, "--resume", "auto", "--no-progress"]
    if args.data_path and data == "binarized-mnist":
        command += ["--data-path", args.data_path]
    start = time.perf_counter()
    status = ppdgm_main(command)
    if status != 0:
        raise SystemExit(f"ppdgm {shlex.join(command)} failed with status {status}")
    seconds = round(time.perf_counter() - start, 1)
    done.write_text(json.dumps({"settings": settings, "seconds": seconds}))
    return out / "checkpoint.pt", seconds


def held_out(data: str, args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation points that choose sigma, test points scored), neither seen in training."""
    dataset = load_dataset(data, path=args.data_path if data == "binarized-mnist" else None)
    if dataset.valid is not None:
        return dataset.valid[: args.valid_points], dataset.test[: args.points]
    v = args.valid_points
    if v + args.points > dataset.test.shape[0]:
        raise SystemExit(f"--valid-points + --points: {data} has {dataset.test.shape[0]} "
                         f"test points")
    return dataset.test[:v], dataset.test[v: v + args.points]


def score(model: str, data: str, args: argparse.Namespace, epochs: int) -> dict[str, Any]:
    checkpoint, train_seconds = train(model, data, args, epochs)
    trained = load_trained_model(checkpoint, device=args.device).eval()
    for p in trained.parameters():
        p.requires_grad_(False)
    validation, x = (t.to(args.device) for t in held_out(data, args))
    start = time.perf_counter()
    result = decoder_log_likelihood(trained.decode, x, z_dim=args.z_dim, validation=validation,
                                    num_steps=args.steps, num_chains=args.chains,
                                    check_points=args.check_points, seed=args.seed)
    check = result.check.summary()
    row = {"model": model, "data": data, "log_px": result.log_px.mean,
           "log_px_stderr": result.log_px.stderr, "bdmc_gap": check["gap"],
           "bdmc": check, "scale": result.scale, "validation": result.summary()["validation"],
           "points": x.shape[0], "dims": x[0].numel(), "epochs": epochs,
           "train_seconds": train_seconds,
           "score_seconds": round(time.perf_counter() - start, 1)}
    print(f"{data} {model}: log p(x) {row['log_px']:.2f} ± {row['log_px_stderr']:.2f} nats, "
          f"sigma {row['scale']}, BDMC gap {row['bdmc_gap']:.3f}", flush=True)
    return row


def markdown(record: dict[str, Any]) -> str:
    lines = ["# One likelihood scale for decoders (AIS, Gaussian observation model)", ""]
    for data in record["datasets"]:
        rows = [r for r in record["rows"] if r["data"] == data]
        if not rows:
            continue
        lines += [f"## {data} ({rows[0]['points']} test points, {rows[0]['dims']} dimensions)",
                  "", "| model | log p(x), nats per point | sigma | BDMC gap, nats | "
                  "train time | AIS time |", "|---|---|---|---|---|---|"]
        lines += [f"| {TITLES[r['model']]} | {r['log_px']:.1f} ± {r['log_px_stderr']:.1f} | "
                  f"{r['scale']} | {r['bdmc_gap']:.2f} | {r['train_seconds']:.0f} s | "
                  f"{r['score_seconds']:.0f} s |" for r in rows]
        lines.append("")
    s = record["settings"]
    lines += [f"AIS: {s['steps']} intermediate distributions, {s['chains']} runs per point, HMC "
              f"transitions; sigma chosen on {s['valid_points']} validation points; BDMC on "
              f"{s['check_points']} points simulated from each chosen model. Every model: "
              f"z_dim {s['z_dim']}, MLP {s['hidden']}. {record['machine']}.", "",
              f"    {record['command']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    datasets = [d for d in args.data.split(",") if d]
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise SystemExit(f"--models: expected some of {', '.join(MODELS)}, got {unknown}")
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / "decoder-likelihood.json"
    rows = []
    for data in datasets:
        epochs = args.epochs or EPOCHS.get(data, 100)
        rows += [score(model, data, args, epochs) for model in models]
    record = {"benchmark": "decoder-likelihood", "datasets": datasets, "rows": rows,
              "settings": {k: getattr(args, k) for k in
                           ("z_dim", "hidden", "points", "valid_points", "steps", "chains",
                            "check_points", "seed", "device")},
              "machine": f"{platform.processor() or platform.machine()}, "
                         f"{torch.get_num_threads()} thread(s), torch {torch.__version__}",
              "command": "python benchmarks/decoder_likelihood.py " + shlex.join(argv or [])}
    path.write_text(json.dumps(record, indent=2) + "\n")
    (args.results / "decoder-likelihood.md").write_text(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
