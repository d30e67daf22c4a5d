"""NVIL as published against Pyro's TraceGraph_ELBO with the same baselines, and wake-sleep.

One sigmoid belief net (same architecture, same initial weights, same batches) is trained three
ways in one process, epoch for epoch: ppdgm's :class:`~ppdgm.inference.objectives.NVIL` (local
learning signals, centred by running means and input-dependent baselines, normalised by a running
standard deviation), Pyro's ``TraceGraph_ELBO`` using the same input-dependent baselines (Pyro's
``nn_baseline``: downstream costs from its dense dependency graph, no running normalisation),
and wake-sleep (two players). Every ``--eval-every`` epochs and at the end each is scored by the
importance-sampled test log p(x) (``--eval-k`` proposals from its recognition network).

    python benchmarks/nvil.py                   # digits, writes benchmarks/results/nvil-digits.*
    python benchmarks/nvil.py --data binarized-mnist --data-path ... --layers 200,200,200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pyro
import torch
from pyro.infer import TraceGraph_ELBO

from ppdgm._pyro import local_params
from ppdgm.data import load_dataset
from ppdgm.inference import Engine, TrainConfig
from ppdgm.inference.evaluate import estimate_log_likelihood
from ppdgm.inference.objectives.registry import build_player_objective
from ppdgm.inference.players import Player, adam
from ppdgm.models.sbn import SBNConfig, SigmoidBeliefNet

RESULTS = Path(__file__).resolve().parent / "results"
OBJECTIVES = ("nvil", "tracegraph", "wake-sleep")


def _objective(name: str, lr: float):
    if name == "tracegraph":
        return TraceGraph_ELBO(), [Player("svi", optimizer=adam(lr))]
    return build_player_objective(name, lr=lr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits-binarized")
    p.add_argument("--data-path", default=None)
    p.add_argument("--layers", default="32,32")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=24)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--eval-k", type=int, default=500)
    p.add_argument("--eval-points", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data, **({"path": args.data_path} if args.data_path else {}))
    layers = tuple(int(w) for w in args.layers.split(","))
    config = SBNConfig(x_shape=tuple(ds.event_shape), layers=layers, baseline_hidden=100)
    test = ds.test[: args.eval_points]
    pyro.set_rng_seed(args.seed)
    start = SigmoidBeliefNet(config).state_dict()

    runs = {}
    for name in OBJECTIVES:
        pyro.clear_param_store()
        sbn = SigmoidBeliefNet(config)
        sbn.load_state_dict(start)
        objective, players = _objective(name, args.lr)
        curve: list[dict] = []

        def score(engine: Engine, epoch: int, sbn=sbn, curve=curve) -> None:
            last = epoch + 1 == args.epochs
            if (epoch + 1) % args.eval_every and not last:
                return
            with local_params():
                est = estimate_log_likelihood(sbn.model, sbn.guide, test, num_samples=args.eval_k)
            curve.append({"epoch": epoch + 1, **est.as_dict()})

        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          seed=args.seed, device="cpu", progress=False)
        started = time.perf_counter()
        history = Engine(sbn.model, sbn.guide, objective, players, cfg, callbacks=[score]).fit(ds.train)
        train_seconds = sum(row["seconds"] for row in history.epochs) / len(players)
        runs[name] = {"curve": curve, "final": curve[-1], "seconds": time.perf_counter() - started,
                      "train_seconds": train_seconds}
        print(f"{name}: test log p(x) {curve[-1]['log_px']:.2f} ± {curve[-1]['log_px_stderr']:.2f}",
              flush=True)

    record = {"benchmark": "nvil", "data": args.data, "layers": list(layers),
              "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
              "eval_k": args.eval_k, "eval_points": len(test), "threads": args.threads,
              "runs": runs, "versions": {"torch": torch.__version__, "pyro": pyro.__version__},
              "command": "python benchmarks/nvil.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"nvil-{args.data}"
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def markdown(r: dict) -> str:
    label = {"nvil": "NVIL (ppdgm, as published)",
             "tracegraph": "TraceGraph_ELBO + the same baselines (Pyro)", "wake-sleep": "wake-sleep"}
    epochs = [row["epoch"] for row in r["runs"]["nvil"]["curve"]]
    head = " | ".join(f"epoch {e}" for e in epochs)
    lines = [f"| test log p(x), SBN {'-'.join(map(str, r['layers']))} on {r['data']} (K = "
             f"{r['eval_k']}, {r['eval_points']} points) | {head} | train s |",
             "|---|" + "---|" * (len(epochs) + 1)]
    for name, run in r["runs"].items():
        cells = " | ".join(f"{row['log_px']:.2f} ± {row['log_px_stderr']:.2f}" for row in run["curve"])
        lines.append(f"| {label[name]} | {cells} | {run['train_seconds']:.0f} |")
    return ("\n".join(lines) + f"\n\nSame initial weights and batches; batch {r['batch_size']}, "
            f"Adam {r['lr']}, {r['threads']} threads. Command: `{r['command']}`.\n")


if __name__ == "__main__":
    sys.exit(main())
