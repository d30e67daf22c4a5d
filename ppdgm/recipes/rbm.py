"""``ppdgm fit rbm``: a restricted Boltzmann machine by CD-k or PCD-k, log p(x) by AIS."""

from __future__ import annotations

import argparse
from typing import Any

from .base import Recipe, train_config

__all__ = ["RBMRecipe"]


class RBMRecipe(Recipe):
    name = "rbm"
    help = "restricted Boltzmann machine (CD-k, PCD-k; log p(x) by AIS)"
    epochs = 50
    defaults = {"batch_size": 100, "lr": 0.05}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--hidden", type=int, default=100, help="hidden units")
        p.add_argument("--cd-k", type=int, default=1, help="Gibbs sweeps per update")
        p.add_argument("--persistent", action="store_true", help="persistent CD (PCD-k)")
        p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                       help="sgd: momentum 0.9, --lr a step on the batch-mean gradient (e.g. 0.05); "
                            "adam: --lr e.g. 1e-3")
        p.add_argument("--ais-runs", type=int, default=100, help="AIS runs for log Z (large RBMs)")
        p.add_argument("--ais-steps", type=int, default=None,
                       help="uniform AIS temperatures (default: the 14,500 of Salakhutdinov & Murray)")

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        from ..runs_rbm import fit_rbm

        return fit_rbm(dataset, train_config(args), hidden=args.hidden, cd_k=args.cd_k,
                       persistent=args.persistent, optimizer=args.optimizer,
                       ais_runs=args.ais_runs, ais_betas=args.ais_steps, figures=args.plots)

    def title(self, result: Any, dataset: Any) -> str:
        return f"Trained an RBM on {dataset.name}"
