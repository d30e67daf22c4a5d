"""Generative against discriminative (Ng and Jordan, 2002) on scikit-learn's digits, and what
naive Bayes gains from unlabelled digits by EM (Nigam et al., 2000).

Three learning curves, test error (297 test digits) against the number m of labelled training
examples, over ``--seeds`` random labelled subsets (the same subsets for every model):

* binarized digits: Bernoulli naive Bayes against logistic regression (MAP by the engine);
* digits in [0, 1]: Gaussian naive Bayes against logistic regression;
* binarized digits: Bernoulli naive Bayes from the m labels alone, and with EM on the other
  1500 - m training digits without labels, at unlabelled weights 1 and ``--weight``.

    python benchmarks/ng_jordan.py        # writes results/ng-jordan.{json,md,png}
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

from ppdgm.data import load_dataset
from ppdgm.diagnostics.classifier_figures import plot_error_curves
from ppdgm.recipes.generative_discriminative import learning_curves, semi_supervised, summarize

RESULTS = Path(__file__).resolve().parent / "results"


def _table(title: str, summary: list[dict]) -> list[str]:
    models = list(dict.fromkeys(r["model"] for r in summary))
    sizes = sorted({r["m"] for r in summary})
    cell = {(r["model"], r["m"]): r for r in summary}
    lines = [f"| {title} | " + " | ".join(f"m = {m}" for m in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for model in models:
        lines.append(f"| {model} | " + " | ".join(
            f"{cell[model, m]['error']:.3f} ± {cell[model, m]['stderr']:.3f}" for m in sizes) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10,20,50,100,200,500,1000,1500")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--steps", type=int, default=300, help="Adam steps of each logistic regression")
    p.add_argument("--prior-scale", type=float, default=1.0)
    p.add_argument("--weight", type=float, default=0.1, help="a second unlabelled weight for EM")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    binary, unit = load_dataset("digits-binarized"), load_dataset("digits")
    started = time.perf_counter()
    curves = {
        "binarized digits": learning_curves(binary, sizes=sizes, seeds=args.seeds, steps=args.steps,
                                            prior_scale=args.prior_scale),
        "digits in [0, 1]": learning_curves(unit, sizes=sizes, seeds=args.seeds, steps=args.steps,
                                            prior_scale=args.prior_scale),
    }
    few = [m for m in sizes if m < 1500]
    em = {w: semi_supervised(binary, sizes=few, seeds=args.seeds, unlabelled_weight=w)
          for w in (1.0, args.weight)}
    em_rows = summarize(em[1.0])
    em_rows += [dict(r, model=f"naive Bayes + EM, weight {args.weight:g}")
                for r in summarize(em[args.weight]) if r["model"] == "naive Bayes + EM"]
    panels = {title: summarize(r) for title, r in curves.items()}
    panels["unlabelled digits by EM (binarized)"] = em_rows
    results = Path(args.results)
    figure = plot_error_curves(panels, results / "ng-jordan.png")
    command = "python benchmarks/ng_jordan.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    record = {"benchmark": "ng-jordan", "curves": curves,
              "semi_supervised": {str(w): r for w, r in em.items()},
              "summary": panels, "seconds": round(time.perf_counter() - started, 1),
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "command": command.strip()}
    (results / "ng-jordan.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = []
    for title, rows in panels.items():
        lines += _table(f"test error, {title}", rows) + [""]
    lines.append(f"Mean ± standard error over {args.seeds} random labelled subsets; 297 test digits; "
                 f"logistic regression: MAP, Normal(0, {args.prior_scale:g}) prior on the weights, "
                 f"{args.steps} full-batch Adam steps. {record['seconds']:.0f} s on "
                 f"{record['threads']} thread(s). Command: `{command.strip()}`. Figure: "
                 f"[{figure.name}]({figure.name}).")
    (results / "ng-jordan.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
