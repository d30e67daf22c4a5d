"""Seconds per epoch of a 200-200-200 sigmoid belief net: hand-written PyTorch against the engine.

Three workloads, each run both ways from the same weights and interleaved in one process (a
ppdgm epoch, then a hand-written one, and again), so that the machine's drift hits both alike:

* **VIMCO(k)**, one player: the estimator of Mnih and Rezende (2016) (k = 50 in the NLL table);
* **RWS(k)**, two players (model, then guide), each turn a fresh evaluation as the engine does
  (k = 5 in the NLL table);
* the **K-sample importance-sampled log p(x)** of the test points (K = 5000 in the table).

The hand-written side is what a user writes without Pyro: ``nn.Linear`` layers, Bernoulli
log-probabilities as ``-binary_cross_entropy_with_logits``, the particles as a leading tensor
dimension, the estimators as tensor algebra (VIMCO's leave-one-out bounds are the same pure
function ppdgm uses). Before timing, both sides compute the loss of one batch from the same RNG
state; the script reports the two values, which agree to float32 rounding when the draws match.

    python benchmarks/sbn_overhead.py --data-path ../shared/data/binarized_mnist.npz \
        --num-train 5000 --epochs 4          # writes benchmarks/results/sbn_overhead.{json,md}
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import pyro
import torch
from torch.nn import functional as F

from ppdgm.data import load_dataset
from ppdgm.inference import Engine, TrainConfig
from ppdgm.inference.evaluate import estimate_log_likelihood
from ppdgm.inference.objectives.registry import build_player_objective
from ppdgm.inference.objectives.vimco import leave_one_out_bounds
from ppdgm.models.sbn import SBNConfig, SigmoidBeliefNet

RESULTS = Path(__file__).resolve().parent / "results"
LAYERS, BATCH, LR = (200, 200, 200), 24, 3e-4


class HandSBN(torch.nn.Module):
    """The SBN's generative and recognition networks as plain modules (weights copied)."""

    def __init__(self, sbn: SigmoidBeliefNet) -> None:
        super().__init__()
        self.top = torch.nn.Parameter(sbn.top_logits.detach().clone())
        self.gen = torch.nn.ModuleList(torch.nn.Linear(m.in_features, m.out_features)
                                       for m in sbn.generative)
        self.rec = torch.nn.ModuleList(torch.nn.Linear(m.in_features, m.out_features)
                                       for m in sbn.recognition)
        with torch.no_grad():
            for mine, theirs in zip([*self.gen, *self.rec], [*sbn.generative, *sbn.recognition]):
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)

    def model_params(self) -> list[torch.nn.Parameter]:
        return [self.top, *self.gen.parameters()]

    def log_weights(self, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x, z) and log q(z | x) of ``k`` particles per point, each ``(k, n)``."""
        h = x.expand(k, *x.shape)
        log_q = x.new_zeros(k, x.shape[0])
        zs = []
        for layer in self.rec:  # bottom-up, as the guide samples
            logits = layer(h)
            z = torch.bernoulli(torch.sigmoid(logits))
            log_q = log_q - F.binary_cross_entropy_with_logits(logits, z, reduction="none").sum(-1)
            zs.append(z)
            h = z
        zs.reverse()  # top layer first
        log_p = -F.binary_cross_entropy_with_logits(self.top.expand_as(zs[0]), zs[0],
                                                    reduction="none").sum(-1)
        for layer, above, below in zip(self.gen, zs, [*zs[1:], x.expand(k, *x.shape)]):
            log_p = log_p - F.binary_cross_entropy_with_logits(layer(above), below,
                                                               reduction="none").sum(-1)
        return log_p, log_q


def hand_vimco(net: HandSBN, x: torch.Tensor, k: int) -> torch.Tensor:
    log_p, log_q = net.log_weights(x, k)
    log_w = log_p - log_q
    bound = torch.logsumexp(log_w, 0) - math.log(k)
    signal = bound.detach().unsqueeze(0) - leave_one_out_bounds(log_w.detach())
    surrogate = bound.sum() + (signal * log_q).sum()
    return -bound.sum().detach() - (surrogate - surrogate.detach())


def hand_rws(net: HandSBN, x: torch.Tensor, k: int, player: str) -> torch.Tensor:
    log_p, log_q = net.log_weights(x, k)
    log_w = (log_p - log_q).detach()
    weights = torch.softmax(log_w, 0)
    bound = (torch.logsumexp(log_w, 0) - math.log(k)).sum()
    surrogate = -(weights * (log_p if player == "model" else log_q)).sum()
    return -bound + (surrogate - surrogate.detach())


@torch.no_grad()
def hand_log_px(net: HandSBN, x: torch.Tensor, k: int, chunk: int = 500) -> torch.Tensor:
    total = None
    for start in range(0, k, chunk):
        log_p, log_q = net.log_weights(x, min(chunk, k - start))
        part = torch.logsumexp(log_p - log_q, 0)
        total = part if total is None else torch.logaddexp(total, part)
    return total - math.log(k)


def run(objective: str, k: int, x: torch.Tensor, epochs: int) -> dict:
    pyro.set_rng_seed(0)
    sbn = SigmoidBeliefNet(SBNConfig(x_shape=(x.shape[1],), layers=LAYERS))
    hand = HandSBN(sbn)
    loss, players = build_player_objective(objective, k=k, lr=LR)
    same = same_loss(objective, k, sbn, hand, loss, x[:BATCH])
    if objective == "vimco":
        optimizers = {"svi": torch.optim.Adam(hand.parameters(), lr=LR)}
    else:
        rec = [p for layer in hand.rec for p in layer.parameters()]
        optimizers = {"model": torch.optim.Adam(hand.model_params(), lr=LR),
                      "guide": torch.optim.Adam(rec, lr=LR)}
    hand_seconds: list[float] = []

    def hand_epoch(engine: Engine, epoch: int) -> None:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        started = time.perf_counter()
        for i in range(0, len(x), BATCH):
            batch = x[order[i:i + BATCH]]
            for name, opt in optimizers.items():
                value = (hand_vimco(hand, batch, k) if objective == "vimco"
                         else hand_rws(hand, batch, k, name))
                opt.zero_grad()
                value.backward()
                opt.step()
                value.item()
        hand_seconds.append(time.perf_counter() - started)

    cfg = TrainConfig(epochs=epochs, batch_size=BATCH, lr=LR, seed=0, device="cpu", progress=False)
    history = Engine(sbn.model, sbn.guide, loss, players, cfg, callbacks=[hand_epoch]).fit(x)
    ours = [row["seconds"] for row in history.epochs if row["player"] == players[0].name]
    med = {"ppdgm": statistics.median(ours[1:]), "pytorch": statistics.median(hand_seconds[1:])}
    return {"objective": objective, "k": k, "same_batch_loss": same,
            "epoch_seconds": {"ppdgm": ours, "pytorch": hand_seconds},
            "median_seconds_after_warmup": med, "ratio": med["ppdgm"] / med["pytorch"]}


def same_loss(objective: str, k: int, sbn: SigmoidBeliefNet, hand: HandSBN, loss, x) -> dict:
    state = torch.get_rng_state()
    if objective == "vimco":
        ours = float(loss(sbn.model, sbn.guide, x).detach())
        torch.set_rng_state(state)
        theirs = float(hand_vimco(hand, x, k).detach())
    else:
        ours = float(loss.player_loss("model", sbn.model, sbn.guide, x).detach())
        torch.set_rng_state(state)
        theirs = float(hand_rws(hand, x, k, "model").detach())
    return {"ppdgm": ours, "pytorch": theirs}


def evaluation(k: int, x: torch.Tensor, repeats: int) -> dict:
    pyro.set_rng_seed(0)
    sbn = SigmoidBeliefNet(SBNConfig(x_shape=(x.shape[1],), layers=LAYERS))
    hand = HandSBN(sbn)
    seconds: dict[str, list[float]] = {"ppdgm": [], "pytorch": []}
    values: dict[str, float] = {}
    for _ in range(repeats):
        started = time.perf_counter()
        values["ppdgm"] = estimate_log_likelihood(sbn.model, sbn.guide, x, num_samples=k,
                                                  batch_size=len(x)).log_px.mean
        seconds["ppdgm"].append(time.perf_counter() - started)
        started = time.perf_counter()
        values["pytorch"] = float(hand_log_px(hand, x, k).mean())
        seconds["pytorch"].append(time.perf_counter() - started)
    med = {side: statistics.median(s) for side, s in seconds.items()}
    return {"k": k, "points": len(x), "seconds": seconds, "median_seconds": med,
            "ratio": med["ppdgm"] / med["pytorch"], "log_px": values}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-path", default=None, help="binarized MNIST (.npz or .amat folder)")
    p.add_argument("--data", default="binarized-mnist", help="any binary dataset ppdgm loads")
    p.add_argument("--num-train", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=4, help="epochs of each (the first is warm-up)")
    p.add_argument("--vimco-k", type=int, default=50)
    p.add_argument("--rws-k", type=int, default=5)
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--eval-points", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    options = {"path": args.data_path} if args.data_path else {}
    ds = load_dataset(args.data, num_train=args.num_train, **options)
    x, test = ds.train.flatten(1), ds.test.flatten(1)[: args.eval_points]
    record = {
        "command": "python benchmarks/sbn_overhead.py " + " ".join(argv or sys.argv[1:]),
        "data": ds.name, "num_train": len(x), "layers": list(LAYERS), "batch_size": BATCH,
        "threads": args.threads, "torch": torch.__version__, "pyro": pyro.__version__,
        "vimco": run("vimco", args.vimco_k, x, args.epochs),
        "rws": run("rws", args.rws_k, x, args.epochs),
        "evaluation": evaluation(args.eval_k, test, repeats=3),
    }
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sbn_overhead.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "sbn_overhead.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def markdown(r: dict) -> str:
    v, w, e = r["vimco"], r["rws"], r["evaluation"]
    title = (f"SBN 200-200-200 on {r['data']} ({r['num_train']} points, batch {r['batch_size']}, "
             f"{r['threads']} threads)")
    rows = [f"| {title} | PyTorch | ppdgm | ppdgm / PyTorch |", "|---|---|---|---|"]
    for label, row in ((f"VIMCO k = {v['k']}, s/epoch", v), (f"RWS k = {w['k']}, s/epoch", w)):
        m = row["median_seconds_after_warmup"]
        rows.append(f"| {label} | {m['pytorch']:.2f} | {m['ppdgm']:.2f} | **{row['ratio']:.2f}x** |")
    m = e["median_seconds"]
    rows.append(f"| log p(x), K = {e['k']}, {e['points']} test points, s | {m['pytorch']:.2f} | "
                f"{m['ppdgm']:.2f} | **{e['ratio']:.2f}x** |")
    checks = (f"Same batch, same RNG state: VIMCO loss {v['same_batch_loss']['ppdgm']:.3f} (ppdgm) vs "
              f"{v['same_batch_loss']['pytorch']:.3f} (PyTorch); RWS model loss "
              f"{w['same_batch_loss']['ppdgm']:.3f} vs {w['same_batch_loss']['pytorch']:.3f}; "
              f"log p(x) {e['log_px']['ppdgm']:.2f} vs {e['log_px']['pytorch']:.2f} (independent draws).")
    return "\n".join(rows) + f"\n\n{checks} Medians after a warm-up epoch. Command: `{r['command']}`.\n"


if __name__ == "__main__":
    sys.exit(main())
