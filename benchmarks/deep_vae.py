"""One stochastic layer against two, each trained by the ELBO and by IWAE, on the binarized digits.

Four VAEs in one process, the same epochs, batches and seed: a one-layer VAE (64-64-z(8)) and
a two-layer one (64-64-z1(16)-32-z2(8)), each trained by Trace_ELBO and by IWAE(k). Each is
scored by the importance-sampled test log p(x) with ``--eval-k`` proposals and by its ELBO.
Burda et al. (2016) found, on MNIST, that the second layer and the IWAE objective each help, and
that IWAE helps the two-layer model more; this measures the same on a scale that runs in minutes.

    python benchmarks/deep_vae.py            # writes results/deep-vae-digits.{json,md}
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from pyro.infer import Trace_ELBO

from ppdgm.data import load_dataset
from ppdgm.inference import Engine, Player, TrainConfig, adam
from ppdgm.inference.evaluate import estimate_log_likelihood
from ppdgm.inference.objectives import IWAE
from ppdgm.models import VAE, DeepVAE, DeepVAEConfig, VAEConfig

RESULTS = Path(__file__).resolve().parent / "results"


def _models(x_shape: tuple[int, ...]) -> dict:
    return {
        "one layer, 64-64-z(8)": lambda: VAE(VAEConfig(x_shape=x_shape, z_dim=8, hidden=(64, 64),
                                                      activation="tanh")),
        "two layers, 64-64-z1(16)-32-z2(8)": lambda: DeepVAE(DeepVAEConfig(
            x_shape=x_shape, z_dims=(16, 8), hidden=((64, 64), (32,)))),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-k", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("digits-binarized", seed=args.seed)
    rows = []
    for label, build in _models(data.event_shape).items():
        for objective in ("ELBO", f"IWAE(k={args.k})"):
            torch.manual_seed(args.seed)
            model = build()
            loss = Trace_ELBO() if objective == "ELBO" else IWAE(num_particles=args.k)
            config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                 seed=args.seed, device="cpu", progress=False)
            started = time.perf_counter()
            Engine(model.model, model.guide, loss, [Player("svi", optimizer=adam(args.lr))],
                   config).fit(data.train)
            seconds = time.perf_counter() - started
            estimate = estimate_log_likelihood(model.model, model.guide, data.test,
                                               num_samples=args.eval_k, seed=args.seed)
            rows.append({"model": label, "objective": objective,
                         "test_log_px": round(estimate.log_px.mean, 3),
                         "stderr": round(estimate.log_px.stderr, 3),
                         "test_elbo": round(estimate.elbo.mean, 3),
                         "train_seconds": round(seconds, 1)})
            print(rows[-1], flush=True)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/deep_vae.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    record = {"benchmark": "deep-vae-digits", "data": data.name, "epochs": args.epochs,
              "batch_size": args.batch_size, "lr": args.lr, "eval_k": args.eval_k,
              "test_points": int(data.test.shape[0]), "rows": rows,
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "command": command.strip()}
    (results / "deep-vae-digits.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"| binarized digits, {args.epochs} epochs | trained by | test log p(x), K = "
             f"{args.eval_k} | test ELBO | train s |", "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['objective']} | **{r['test_log_px']:.2f}** ± {r['stderr']:.2f} "
              f"| {r['test_elbo']:.2f} | {r['train_seconds']:.0f} |" for r in rows]
    lines += ["", f"Same seed, batches and Adam {args.lr} for all four; {data.test.shape[0]} test "
                  f"digits; {record['threads']} thread(s). Command: `{command.strip()}`."]
    (results / "deep-vae-digits.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
