"""The moving average of the weights against the last iterate, for a diffusion model and a GAN.

Each model is trained once on ring8 with ``TrainConfig(ema=...)``; its checkpoint then holds both
the trained weights and their average, and both are measured from that one run: the mode
coverage of ``--num-samples`` draws (and for the diffusion model the exact variational bound on
test points, in nats).

    python benchmarks/ema.py                  # writes results/ema.{json,md}
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import torch

from ppdgm.data import load_dataset
from ppdgm.inference import TrainConfig, load_checkpoint
from ppdgm.inference.coverage import coverage_for_dataset
from ppdgm.inference.objectives.denoising import variational_bound
from ppdgm.inference.sampling import sample_diffusion
from ppdgm.recipes import fit_diffusion, fit_gan, load_trained_model
from ppdgm.recipes.compare import PACGAN_HIDDEN

RESULTS = Path(__file__).resolve().parent / "results"


def _both(checkpoint: Path) -> dict[str, torch.nn.Module]:
    averaged = load_trained_model(checkpoint, device="cpu")
    last = load_trained_model(checkpoint, device="cpu")
    last.load_state_dict(load_checkpoint(checkpoint)["modules"][0])  # without the average
    return {"last iterate": last, "moving average": averaged}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--num-train", type=int, default=20_000)
    p.add_argument("--num-samples", type=int, default=2500)
    p.add_argument("--bound-points", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/runs/ema")
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("ring8", seed=0, num_train=args.num_train)
    rows = []
    for family in ("diffusion", "gan"):
        lr = 1e-3 if family == "diffusion" else 1e-4
        cfg = TrainConfig(epochs=args.epochs, batch_size=100, lr=lr, seed=0, device="cpu",
                          progress=False, out_dir=f"{args.out}/{family}", ema=args.ema)
        if family == "diffusion":
            run = fit_diffusion(data, cfg, num_samples=10, bound_points=10)
        else:
            run = fit_gan(data, cfg, z_dim=2, hidden=PACGAN_HIDDEN, num_samples=10)
        for weights, model in _both(run.files["checkpoint"]).items():
            torch.manual_seed(1)
            if family == "diffusion":
                samples = sample_diffusion(model, args.num_samples, seed=1)
                bound = variational_bound(model, data.test[:args.bound_points]).total
            else:
                samples, bound = model.sample(args.num_samples), None
            coverage = coverage_for_dataset(samples, "ring8")
            rows.append({"model": family, "weights": weights, "modes": coverage.modes_captured,
                         "high_quality_percent": round(100 * coverage.high_quality, 2),
                         "reverse_kl": round(coverage.reverse_kl, 4),
                         "bound_nats": None if bound is None else round(bound.mean().item(), 4),
                         "steps": run.metrics["steps"], "train_seconds": run.metrics["train_seconds"]})
            print(rows[-1], flush=True)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/ema.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    record = {"benchmark": "ema", "data": "ring8", "ema": args.ema, "epochs": args.epochs,
              "num_train": args.num_train, "num_samples": args.num_samples, "rows": rows,
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "command": command.strip()}
    (results / "ema.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"| ring8, {args.epochs} epochs of {args.num_train} points | weights | modes of 8 "
             "| samples near a mode | reverse KL | bound on -log p(x), nats |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        bound = "-" if r["bound_nats"] is None else f"{r['bound_nats']:.3f}"
        lines.append(f"| {r['model']} | {r['weights']} | {r['modes']} | "
                     f"{r['high_quality_percent']:.1f}% | {r['reverse_kl']:.4f} | {bound} |")
    lines += ["", f"EMA decay {args.ema}; both rows of a model come from one training run. "
                  f"Command: `{command.strip()}`."]
    (results / "ema.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
