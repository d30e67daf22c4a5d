"""MADE (or NADE) on static binarized MNIST: exact test NLL beside the published figures.

The model is trained by the engine on its exact negative log-likelihood (Trace_ELBO with the
empty guide), the validation NLL (exact, all 10000 validation images) is measured every
``--valid-every`` epochs, and the parameters with the best one are scored on the 10000 test
images, exactly: an autoregressive model needs no importance sampling. Published: NADE 88.86
(Larochelle and Murray, 2011), MADE with one hidden layer of 500 units and one ordering 88.40,
MADE's best (two hidden layers, 32 masks) 86.64 (Germain et al., 2015).

    python benchmarks/autoregressive.py --data-path ../shared/data/binarized_mnist.npz \\
        --arch made --hidden 500 --epochs 100 --out benchmarks/runs/made-500
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from pyro.infer import Trace_ELBO

from ppdgm.data import load_dataset
from ppdgm.diagnostics import save_image_grid
from ppdgm.inference import Engine, Player, TrainConfig, adam
from ppdgm.models.nade import AutoregressiveConfig, build_autoregressive
from ppdgm.recipes.autoregressive import exact_log_likelihood

RESULTS = Path(__file__).resolve().parent / "results"
PUBLISHED = {"nade": {"NADE, 500 hidden (Larochelle and Murray 2011)": 88.86},
             "made": {"MADE, 1 hidden layer of 500, 1 ordering (Germain et al. 2015)": 88.40,
                      "MADE, 2 hidden layers, 32 masks (Germain et al. 2015)": 86.64}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=("made", "nade"), default="made")
    p.add_argument("--hidden", default="500")
    p.add_argument("--direct", action="store_true", help="MADE: direct input-output connections")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--valid-every", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-path", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("binarized-mnist", path=args.data_path)
    config = AutoregressiveConfig(x_shape=data.event_shape,
                                  hidden=tuple(int(h) for h in args.hidden.split(",")),
                                  seed=args.seed, direct=args.direct)
    model = build_autoregressive(args.arch, config)
    valid = data.valid if data.valid is not None else data.test
    best = {"epoch": 0, "valid_nll": float("inf"), "state": None}
    curve = []

    def validate(engine: Engine, epoch: int) -> None:
        done = epoch + 1
        if done % args.valid_every and done != args.epochs:
            return
        nll = -exact_log_likelihood(model, valid)["mean"]
        curve.append({"epoch": done, "valid_nll": round(nll, 4)})
        print(f"epoch {done}: valid NLL {nll:.3f}", flush=True)
        if nll < best["valid_nll"]:
            best.update(epoch=done, valid_nll=nll, state=copy.deepcopy(model.state_dict()))

    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                        seed=args.seed, device="cpu", progress=False, out_dir=args.out)
    started = time.perf_counter()
    Engine(model.model, model.guide, Trace_ELBO(), [Player("svi", optimizer=adam(args.lr))],
           train, callbacks=[validate]).fit(data.train)
    seconds = time.perf_counter() - started
    model.load_state_dict(best["state"])
    test = exact_log_likelihood(model, data.test)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    name = f"{args.arch}-{args.hidden.replace(',', '-')}" + ("-direct" if args.direct else "")
    torch.manual_seed(args.seed)
    grid = save_image_grid(model.sample(64), results / f"autoregressive-{name}-samples.png")
    command = "python benchmarks/autoregressive.py " + shlex.join(
        argv if argv is not None else sys.argv[1:])
    record = {"benchmark": "autoregressive-nll", "model": args.arch, "hidden": list(config.hidden),
              "direct": args.direct,
              "epochs": args.epochs, "selected_epoch": best["epoch"],
              "valid_nll": round(best["valid_nll"], 4), "test_nll": round(-test["mean"], 4),
              "test_nll_stderr": round(test["stderr"], 4), "test_points": test["points"],
              "train_seconds": round(seconds, 1), "optimizer": f"Adam {args.lr}",
              "batch_size": args.batch_size, "valid_curve": curve, "published": PUBLISHED[args.arch],
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "command": command,
              "samples": grid.name}
    (results / f"autoregressive-{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    published = "; ".join(f"{k}: {v}" for k, v in PUBLISHED[args.arch].items())
    md = [f"| {args.arch.upper()} {args.hidden} on static binarized MNIST | exact test NLL (nats) "
          f"| best-valid epoch of {args.epochs} | train time |",
          "|---|---|---|---|",
          f"| ppdgm | **{-test['mean']:.2f}** ± {test['stderr']:.2f} | {best['epoch']} "
          f"| {seconds / 60:.0f} min, {record['threads']} thread(s) |", "",
          f"Published: {published}. Command: `{command}`. Samples: [{grid.name}]({grid.name})."]
    (results / f"autoregressive-{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
