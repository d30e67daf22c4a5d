"""How far is an importance-sampled log p(x) from the truth? BDMC sandwiches for a VAE, a deep VAE
and a sigmoid belief net, beside their importance-sampled estimates.

Three models are trained on the binarized digits with the same seed and batches: a VAE
64-64-z(8), a two-layer VAE 64-64-z1(16)-32-z2(8) (both by the ELBO) and an SBN with layers
16-32 (VIMCO, k = 5). On ``--points`` points simulated from each trained model,
:func:`ppdgm.bdmc` anneals from the guide to the posterior (the lower bound) and back from the
simulated latents (the upper bound) at each of ``--steps``; the importance-sampled estimate with
``--k`` guide proposals, the number the test tables report, is computed on the same points. The
true log p(x) of those points lies between the bounds, so the bounds say how far the
importance-sampled estimate can be from it; the test-set estimate is given beside.

    python benchmarks/bdmc_gaps.py           # writes results/bdmc-gaps.{json,md}, ~10 min on 2 cores
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
from pyro.infer import Trace_ELBO

from ppdgm import bdmc
from ppdgm.data import load_dataset
from ppdgm.inference import Engine, Player, TrainConfig, adam
from ppdgm.inference.evaluate import estimate_log_likelihood
from ppdgm.inference.objectives.registry import build_player_objective
from ppdgm.models import VAE, DeepVAE, DeepVAEConfig, SBNConfig, SigmoidBeliefNet, VAEConfig

RESULTS = Path(__file__).resolve().parent / "results"


def contenders(x_shape: tuple[int, ...], lr: float) -> dict[str, Any]:
    """name -> (build the model, its objective, its players)."""
    def svi() -> tuple[Any, list[Player]]:
        return Trace_ELBO(), [Player("svi", optimizer=adam(lr))]

    def vimco() -> tuple[Any, list[Player]]:
        objective, players = build_player_objective("vimco", k=5, lr=lr)
        return objective, [Player(p.name, owns=p.owns, optimizer=adam(lr)) for p in players]

    return {
        "VAE 64-64-z(8), ELBO": (lambda: VAE(VAEConfig(
            x_shape=x_shape, z_dim=8, hidden=(64, 64), activation="tanh")), svi),
        "deep VAE 64-64-z1(16)-32-z2(8), ELBO": (lambda: DeepVAE(DeepVAEConfig(
            x_shape=x_shape, z_dims=(16, 8), hidden=((64, 64), (32,)))), svi),
        "SBN 16-32, VIMCO(k=5)": (lambda: SigmoidBeliefNet(SBNConfig(
            x_shape=x_shape, layers=(16, 32))), vimco),
    }


def measure(name: str, model: Any, test: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    on_test = estimate_log_likelihood(model.model, model.guide, test, num_samples=args.k,
                                      seed=args.seed)
    row: dict[str, Any] = {"model": name, "test_log_px": on_test.log_px.mean,
                           "test_log_px_stderr": on_test.log_px.stderr, "sandwiches": []}
    for steps in args.steps:
        start = time.perf_counter()
        result = bdmc(model.model, model.guide, num_steps=steps, num_chains=args.chains,
                      kwargs={"num_samples": args.points}, seed=args.seed)
        seconds = time.perf_counter() - start
        sampled = estimate_log_likelihood(model.model, model.guide, result.x,
                                          num_samples=args.k, seed=args.seed)
        s = result.summary()
        row["sandwiches"].append({"steps": steps, "lower": s["lower"], "upper": s["upper"],
                                  "gap": s["gap"], "importance": sampled.log_px.mean,
                                  "seconds": round(seconds, 1)})
        print(name, row["sandwiches"][-1], flush=True)
    return row


def markdown(record: dict[str, Any]) -> str:
    lines = [f"| model | AIS steps | BDMC lower | BDMC upper | gap | importance-sampled, "
             f"K={record['k']} | test log p(x), K={record['k']} | BDMC time |",
             "|---|---|---|---|---|---|---|---|"]
    for row in record["rows"]:
        for i, s in enumerate(row["sandwiches"]):
            test = (f"{row['test_log_px']:.2f} ± {row['test_log_px_stderr']:.2f}"
                    if i == 0 else "")
            lines.append(f"| {row['model'] if i == 0 else ''} | {s['steps']} | {s['lower']:.3f} | "
                         f"{s['upper']:.3f} | {s['gap']:.3f} | {s['importance']:.3f} | {test} | "
                         f"{s['seconds']:.0f} s |")
    lines += ["", f"Bounds and the importance-sampled estimate: nats per point, mean over "
                  f"{record['points']} points simulated from each trained model, {record['chains']} "
                  f"AIS runs each way. Test: {record['test_points']} binarized test digits. "
                  f"{record['epochs']} epochs each; {record['machine']}.", "",
              f"    {record['command']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", default="10,100,1000", help="AIS steps of each sandwich")
    p.add_argument("--chains", type=int, default=32)
    p.add_argument("--points", type=int, default=16, help="points simulated per model")
    p.add_argument("--k", type=int, default=2000, help="importance-sampling proposals")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.steps = [int(s) for s in args.steps.split(",") if s]
    data = load_dataset("digits-binarized", seed=args.seed)
    rows = []
    for name, (build, objective_and_players) in contenders(data.event_shape, args.lr).items():
        torch.manual_seed(args.seed)
        model = build()
        objective, players = objective_and_players()
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed, device="cpu", progress=False)
        start = time.perf_counter()
        Engine(model.model, model.guide, objective, players, config).fit(data.train)
        train_seconds = round(time.perf_counter() - start, 1)
        rows.append({**measure(name, model, data.test, args), "train_seconds": train_seconds})
    args.results.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": "bdmc-gaps", "data": data.name, "epochs": args.epochs, "k": args.k,
              "chains": args.chains, "points": args.points, "test_points": data.test.shape[0],
              "rows": rows,
              "machine": f"{platform.processor() or platform.machine()}, "
                         f"{torch.get_num_threads()} thread(s), torch {torch.__version__}",
              "command": "python benchmarks/bdmc_gaps.py " + shlex.join(argv or [])}
    (args.results / "bdmc-gaps.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.results / "bdmc-gaps.md").write_text(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
