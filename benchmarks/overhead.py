"""Seconds per epoch of one VAE: a hand-written PyTorch loop, plain Pyro SVI, and ppdgm's engine.

All three train the same 784-400-20 MLP VAE (ReLU, Bernoulli pixels, single-sample Monte Carlo
ELBO) from the same initial weights on static binarized MNIST, batch 128, Adam(lr=1e-3), with
2 CPU threads by default. Their epochs are interleaved in one process (an engine epoch, then a
PyTorch epoch, then a Pyro epoch, and again), so that the machine's drift hits all three alike.
The reported figure is the median epoch time after the first (warm-up) epoch, and the ratio
ppdgm / PyTorch.

The PyTorch loop is what a user writes by hand: plain ``nn.Module`` networks, the loss as
tensor algebra, ``zero_grad``/``backward``/``step`` and ``loss.item()`` per step. Pyro SVI is
``SVI(model, guide, Adam, Trace_ELBO()).step(batch)`` with Pyro's defaults. ppdgm is
``Engine(vae.model, vae.guide, Trace_ELBO()).fit(data)`` with its defaults (checkpointing off,
history on, validation during the first epoch only).

    python benchmarks/overhead.py            # writes benchmarks/results/overhead.{json,md}
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from torch.nn import functional as F

from ppdgm._pyro import local_params
from ppdgm.data import load_dataset
from ppdgm.inference import Engine, TrainConfig
from ppdgm.models import VAE
from ppdgm.models.nets import MLP

RESULTS = Path(__file__).resolve().parent / "results"
Z_DIM, HIDDEN, BATCH, LR = 20, 400, 128, 1e-3


class HandVAE(torch.nn.Module):
    """The same networks as ppdgm's VAE, as plain PyTorch modules."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = MLP(784, (HIDDEN,), 2 * Z_DIM)
        self.decoder = MLP(Z_DIM, (HIDDEN,), 784)

    def loss(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """Negative single-sample ELBO summed over the batch (what Trace_ELBO computes)."""
        loc, raw = self.encoder(x).split(Z_DIM, dim=-1)
        scale = F.softplus(raw) + 1e-4  # the VAE's guide: softplus plus the same floor
        z = loc + scale * (torch.randn_like(loc) if eps is None else eps)
        log_px = -F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum")
        log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum()
        log_qz = (-0.5 * ((z - loc) / scale).pow(2) - scale.log() - 0.5 * math.log(2 * math.pi)).sum()
        return -(log_px + log_pz - log_qz)


def torch_epoch(model: HandVAE, opt: torch.optim.Optimizer, x: torch.Tensor, epoch: int) -> float:
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch)).to(x.device)
    started = time.perf_counter()
    total = 0.0
    for i in range(0, len(x), BATCH):
        loss = model.loss(x[order[i:i + BATCH]])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    return time.perf_counter() - started


def pyro_epoch(svi: SVI, x: torch.Tensor, epoch: int) -> float:
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch)).to(x.device)
    started = time.perf_counter()
    with local_params():
        for i in range(0, len(x), BATCH):
            svi.step(x[order[i:i + BATCH]])
    return time.perf_counter() - started


def same_objective(vae: VAE, hand: HandVAE, x: torch.Tensor) -> dict[str, float]:
    """The engine's objective and the hand-written loss on one batch and one noise draw."""
    pyro.set_rng_seed(0)
    ours = Trace_ELBO().loss(vae.model, vae.guide, x)
    pyro.set_rng_seed(0)
    eps = torch.empty(x.shape[0], Z_DIM, device=x.device).normal_()
    with torch.no_grad():
        theirs = hand.loss(x, eps).item()
    return {"trace_elbo_loss": ours, "hand_loss": theirs, "abs_diff": abs(ours - theirs)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=7, help="epochs of each (the first is warm-up)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-path", default=None, help="binarized MNIST (.npz or .amat folder)")
    p.add_argument("--num-train", type=int, default=None, help="fewer examples, for a quick look")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("binarized-mnist", path=args.data_path, num_train=args.num_train)
    device = torch.device(args.device)
    x = data.train.reshape(len(data.train), -1).contiguous().to(device)

    pyro.set_rng_seed(0)
    engine_vae = VAE(x_shape=(784,), z_dim=Z_DIM, hidden=(HIDDEN,))
    pyro_vae = VAE(x_shape=(784,), z_dim=Z_DIM, hidden=(HIDDEN,))
    pyro_vae.load_state_dict(engine_vae.state_dict())
    engine_vae.to(device)
    pyro_vae.to(device)
    hand = HandVAE().to(device)
    hand.encoder.load_state_dict(engine_vae.encoder.state_dict())
    hand.decoder.load_state_dict(engine_vae.decoder.state_dict())
    check = same_objective(engine_vae, hand, x[:BATCH])

    hand_opt = torch.optim.Adam(hand.parameters(), lr=LR)
    svi = SVI(pyro_vae.model, pyro_vae.guide, pyro.optim.Adam({"lr": LR}), Trace_ELBO())
    times: dict[str, list[float]] = {"pytorch": [], "pyro_svi": []}

    def interleave(engine: Engine, epoch: int) -> None:
        times["pytorch"].append(torch_epoch(hand, hand_opt, x, epoch))
        times["pyro_svi"].append(pyro_epoch(svi, x, epoch))

    config = TrainConfig(epochs=args.epochs, batch_size=BATCH, lr=LR, seed=0, device=args.device,
                         progress=False)
    engine = Engine(engine_vae.model, engine_vae.guide, Trace_ELBO(), config=config,
                    callbacks=[interleave])
    history = engine.fit(x)
    times["ppdgm"] = [row["seconds"] for row in history.epochs]

    steady = {name: statistics.median(values[1:]) for name, values in times.items()}
    record = {
        "benchmark": "overhead",
        "what": "seconds per epoch, 784-400-20 MLP VAE, Trace_ELBO, batch 128, Adam(1e-3)",
        "data": f"binarized-mnist train ({len(x)} examples, {math.ceil(len(x) / BATCH)} steps/epoch)",
        "threads": torch.get_num_threads(), "device": args.device,
        "epochs": args.epochs,
        "median_seconds_after_warmup": steady,
        "ratio_ppdgm_over_pytorch": steady["ppdgm"] / steady["pytorch"],
        "ratio_pyro_svi_over_pytorch": steady["pyro_svi"] / steady["pytorch"],
        "epoch_seconds": times,
        "same_objective_check": check,
        "command": "python benchmarks/overhead.py" + "".join(
            f" {a}" for a in (argv if argv is not None else __import__("sys").argv[1:])),
        "machine": platform.processor() or platform.machine(),
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__,
                     "python": platform.python_version()},
    }
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "overhead.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "overhead.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def markdown(r: dict) -> str:
    s = r["median_seconds_after_warmup"]
    return (
        f"| {r['what']} | PyTorch loop | Pyro SVI | ppdgm engine | ppdgm / PyTorch |\n"
        "|---|---|---|---|---|\n"
        f"| s/epoch, median of {r['epochs'] - 1} after warm-up ({r['threads']} CPU threads) "
        f"| {s['pytorch']:.3f} | {s['pyro_svi']:.3f} ({r['ratio_pyro_svi_over_pytorch']:.2f}x) "
        f"| {s['ppdgm']:.3f} | **{r['ratio_ppdgm_over_pytorch']:.3f}x** |\n\n"
        f"Data: {r['data']}. Command: `{r['command']}`.\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
