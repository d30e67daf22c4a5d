"""A DCGAN on Fashion-MNIST: 64 generated images beside 64 real ones.

The generator (a Pyro model: z ~ N(0, I), x = G(z)) and the discriminator (the guide,
q(y | x)) are the DCGAN networks of ``GANConfig(arch="dcgan")``, trained as two players with the
non-saturating loss and Adam (betas 0.5, 0.999) by :func:`ppdgm.recipes.gan.fit_gan`, the function
behind ``ppdgm fit gan``. ``--num-train`` trains on the first N training images, which the
command line has no flag for. The samples are drawn from the checkpoint reloaded in eval mode,
so the generator's batch norms use their running statistics, not the statistics of the sample
batch itself.

    OMP_NUM_THREADS=1 python examples/dcgan_fashion_mnist.py --epochs 6 --out runs/dcgan-fashion

On all 60000 training images (938 steps per epoch, batch 64) this took 27 minutes (1610 s) on
one CPU thread, niced, with both of the machine's cores also busy with two other jobs.
``--num-train 5000 --epochs 2`` (158 steps, 50 s here) is a smoke test: its samples are blobs.

Writes ``samples.png`` (64 generated images), ``real.png`` (64 training images drawn at random),
``results.json`` (epochs, steps, wall seconds, final losses, the command) and fit_gan's own
``checkpoint.pt``, ``history.json`` and ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pyro
import torch

from ppdgm.data import load_dataset
from ppdgm.diagnostics import save_image_grid
from ppdgm.inference import CHECKPOINT_NAME, TrainConfig
from ppdgm.recipes import load_trained_model
from ppdgm.recipes.gan import GAN_BETAS, fit_gan

NUM_SHOWN = 64


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--num-train", type=int, default=None,
                   help="train on the first N training images (default: all 60000)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4, help="Adam's learning rate, both players")
    p.add_argument("--z-dim", type=int, default=64)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, auto")
    p.add_argument("--out", default="runs/dcgan-fashion")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true", help="show a progress bar (on stderr)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Train, write the two grids and ``results.json``; return what ``results.json`` holds."""
    started = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = load_dataset("fashion-mnist", num_train=args.num_train)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        device=args.device, out_dir=str(out), progress=args.progress or None)
    run = fit_gan(data, train, loss="non-saturating", arch="dcgan", z_dim=args.z_dim,
                  num_samples=NUM_SHOWN)

    # fit_gan's model is left in training mode; the checkpoint reloads it in eval mode, where
    # batch norm uses the running statistics gathered in training.
    gan = load_trained_model(out / CHECKPOINT_NAME, device=args.device)
    assert not gan.training
    pyro.set_rng_seed(args.seed)
    samples = gan.sample(NUM_SHOWN)
    save_image_grid(samples, out / "samples.png")

    shown = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(args.seed))
    save_image_grid(data.train[shown[:NUM_SHOWN]], out / "real.png")

    m = run.metrics
    results = {
        "command": "python examples/dcgan_fashion_mnist.py " + shlex.join(argv),
        "data": data.name, "num_train": len(data.train), "epochs": args.epochs,
        "batch_size": args.batch_size, "lr": args.lr, "betas": list(GAN_BETAS), "z_dim": m["z_dim"],
        "loss": m["loss"], "steps": m["steps"], "generator_steps": m["generator_steps"],
        "train_seconds": m["train_seconds"],
        "wall_seconds": round(time.perf_counter() - started, 1),  # data loading and figures too
        "final_loss": m["final_loss"], "device": m["device"],
        "torch_threads": torch.get_num_threads(), "versions": m["versions"],
        "samples_mean": round(samples.mean().item(), 4),
        "real_mean": round(data.train.mean().item(), 4),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    losses = ", ".join(f"{k} {v:.3f}" for k, v in sorted(results["final_loss"].items()))
    print(f"{results['steps']} steps in {results['train_seconds']:.0f} s "
          f"({results['wall_seconds']:.0f} s in all); last epoch's losses: {losses}")
    print(f"wrote {out / 'samples.png'}, {out / 'real.png'} and {out / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
