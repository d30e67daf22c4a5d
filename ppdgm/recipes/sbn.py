"""``ppdgm fit sbn``: a sigmoid belief net (Helmholtz machine) by wake-sleep, RWS, VIMCO or NVIL."""

from __future__ import annotations

import argparse
from typing import Any

from ..inference.objectives.registry import PLAYER_OBJECTIVES
from .base import Recipe, hidden_widths, train_config

__all__ = ["SBNRecipe"]


class SBNRecipe(Recipe):
    name = "sbn"
    help = "sigmoid belief net / Helmholtz machine (wake-sleep, RWS, VIMCO)"
    epochs = 100

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--layers", type=hidden_widths, default=(8,),
                       help="latent widths from the top layer down, e.g. 200,200,200")
        p.add_argument("--objective", choices=list(PLAYER_OBJECTIVES), default="rws")
        p.add_argument("--k", type=int, default=10, help="RWS or VIMCO particles per data point")
        p.add_argument("--autoregressive", action="store_true",
                       help="recognition layers autoregressive within themselves")
        p.add_argument("--eval-k", type=int, default=1000,
                       help="importance samples for the log p(x) in metrics.json")

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        from ..runs_sbn import fit_sbn

        return fit_sbn(dataset, train_config(args), layers=tuple(args.layers),
                       objective=args.objective, k=args.k, eval_k=args.eval_k,
                       figures=args.plots, autoregressive=args.autoregressive)

    def title(self, result: Any, dataset: Any) -> str:
        return f"Trained a sigmoid belief net on {dataset.name}"
