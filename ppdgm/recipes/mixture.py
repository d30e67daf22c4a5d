"""``ppdgm fit mixture``: a Bernoulli or Gaussian mixture fitted by EM (no engine, no epochs)."""

from __future__ import annotations

import argparse
from typing import Any

from .base import Recipe

__all__ = ["MixtureRecipe"]


class MixtureRecipe(Recipe):
    name = "mixture"
    help = "Bernoulli or Gaussian mixture fitted by EM"
    epochs = None

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--components", type=int, default=10)
        p.add_argument("--iterations", type=int, default=100)
        p.add_argument("--m-step", choices=["auto", "closed-form", "gradient"], default="auto")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", default="runs/mixture")

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        from ..runs_mixture import fit_mixture

        return fit_mixture(dataset, args.out, components=args.components,
                           iterations=args.iterations, seed=args.seed, m_step=args.m_step,
                           figures=args.plots)

    def title(self, result: Any, dataset: Any) -> str:
        return f"Fitted a mixture to {dataset.name} by EM"

    def lines(self, result: Any) -> list[str]:
        m = result.metrics
        return [f"exact log p(x) per example: train {m['train_log_px_exact']:.3f}, test "
                f"{m['test_log_px_exact']:.3f} after {m['iterations']} EM iterations "
                f"({m['seconds']:.1f} s)"]
