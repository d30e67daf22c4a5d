"""``ppdgm fit vae``: a VAE trained by the ELBO (Monte Carlo or analytic KL) or the IWAE bound."""

from __future__ import annotations

import argparse
from typing import Any

from ..inference.objectives.registry import OBJECTIVES
from ..models.nets import ACTIVATIONS
from .base import Recipe, hidden_widths, train_config

__all__ = ["VAERecipe", "add_vae_flags", "fit_vae_from_flags"]


def add_vae_flags(p: argparse.ArgumentParser) -> None:
    """The VAE's flags (shared with ``ppdgm demo``)."""
    p.add_argument("--z-dim", type=int, default=8)
    p.add_argument("--hidden", type=hidden_widths, default=(256, 128), help="MLP widths, e.g. 256,128")
    p.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default=None,
                   help="default: bernoulli for binary data, gaussian otherwise")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default="relu")
    p.add_argument("--objective", choices=list(OBJECTIVES), default="elbo",
                   help="elbo (Monte Carlo KL), elbo-analytic (closed-form KL) or iwae")
    p.add_argument("--k", type=int, default=None,
                   help="particles per data point (default: 50 for iwae, 1 otherwise)")


def fit_vae_from_flags(args: argparse.Namespace, dataset: Any, *, figures: bool) -> Any:
    """Run :func:`ppdgm.runs.fit_vae` as the VAE flags describe."""
    from ..runs import fit_vae

    overrides = {"z_dim": args.z_dim, "hidden": tuple(args.hidden), "arch": args.arch,
                 "likelihood": args.likelihood, "activation": args.activation}
    k = args.k if args.k is not None else (50 if args.objective == "iwae" else 1)
    return fit_vae(dataset, train_config(args), model_overrides=overrides,
                   objective=args.objective, k=k, figures=figures)


class VAERecipe(Recipe):
    name = "vae"
    help = "variational autoencoder (ELBO, analytic KL, IWAE)"
    epochs = 20

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        add_vae_flags(parser)

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        return fit_vae_from_flags(args, dataset, figures=args.plots)

    def title(self, result: Any, dataset: Any) -> str:
        return f"Trained a VAE on {dataset.name}"
