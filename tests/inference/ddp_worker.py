"""A training run for the data-parallel tests, launched by them under torchrun (or alone).

    python ddp_worker.py MODEL OUT [--distributed] [--epochs N] [--max-steps N]
                         [--resume | --resume-auto] [--checkpoint-every N]
                         [--die-at STEP | --term-at STEP] [--pause SECONDS]

MODEL is ``regression`` (no latent variable: the loss, hence every step, is deterministic) or
``vae`` (a latent sampled per data point, so each process's random stream matters). Each process
saves its final parameters to ``OUT/params-rank<r>.pt``. ``--die-at STEP`` makes rank 1 kill
itself (SIGKILL) after that step on torchrun's first attempt, as a lost worker would;
``--term-at STEP`` makes it send itself SIGTERM instead, as a scheduler's preemption would, and a
preempted process exits with the status ``ppdgm fit`` gives. ``--pause`` sleeps after every
step, leaving time to signal a run from outside.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO
from pyro.nn import PyroModule, pyro_method

from ppdgm._pyro import local_params
from ppdgm.inference import Engine, Preempted, TrainConfig
from ppdgm.models import VAE


class Regression(PyroModule):
    """y ~ N(w x + b, 1): maximum likelihood through an ELBO with an empty guide."""

    def __init__(self) -> None:
        with local_params():
            super().__init__()
            self.net = PyroModule[torch.nn.Linear](3, 1)

    @pyro_method
    def model(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            pyro.sample("y", dist.Normal(self.net(x).squeeze(-1), 1.0), obs=y)

    @pyro_method
    def guide(self, x: torch.Tensor, y: torch.Tensor) -> None:
        pass


def data(model: str) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 3, generator=g)
    if model == "regression":
        return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 + 0.1 * torch.randn(60, generator=g)
    return ((torch.rand(60, 6, generator=g) < 0.3).float(),)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=["regression", "vae"])
    p.add_argument("out")
    p.add_argument("--distributed", action="store_true")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--resume-auto", action="store_true")
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--die-at", type=int, default=None)
    p.add_argument("--term-at", type=int, default=None)
    p.add_argument("--pause", type=float, default=0.0)
    args = p.parse_args()
    torch.set_num_threads(1)
    pyro.set_rng_seed(0)
    net = Regression() if args.model == "regression" else VAE(x_shape=(6,), z_dim=2, hidden=(8,))
    cfg = TrainConfig(epochs=args.epochs, batch_size=16, lr=0.05, seed=0, device="cpu",
                      out_dir=args.out, progress=False, max_steps=args.max_steps,
                      resume="auto" if args.resume_auto else args.resume,
                      checkpoint_every=args.checkpoint_every, distributed=args.distributed)
    rank = int(os.environ.get("RANK", 0))
    first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"

    def die(engine: Engine, step: int) -> None:
        if rank == 1 and first_attempt and step + 1 == args.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if rank == 1 and first_attempt and step + 1 == args.term_at:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(args.pause)

    try:
        Engine(net.model, net.guide, Trace_ELBO(), config=cfg,
               step_callbacks=[die]).fit(data(args.model))
    except Preempted as stop:
        print(f"rank {rank}: {stop}", file=sys.stderr)
        sys.exit(stop.exit_status)
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()},
               Path(args.out) / f"params-rank{rank}.pt")


if __name__ == "__main__":
    main()
