"""``ppdgm fit vae-gan``: a VAE whose likelihood lives in a GAN discriminator's features."""

from __future__ import annotations

import argparse
from typing import Any

from ..inference.objectives.adversarial import ADVERSARIAL_LOSSES
from .base import Recipe, hidden_widths, train_config
from .gan import add_adversarial_flags, coverage_text

__all__ = ["VAEGANRecipe"]


class VAEGANRecipe(Recipe):
    name = "vae-gan"
    help = "VAE-GAN (Larsen et al. 2016): a VAE whose likelihood lives in a GAN discriminator's features"
    epochs = 20
    defaults = {"lr": 2e-4}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--loss", choices=list(ADVERSARIAL_LOSSES), default="non-saturating",
                       help="the GAN terms of the decoder's and discriminator's losses")
        p.add_argument("--gamma", type=float, default=1.0,
                       help="decoder's weight of feature-space reconstruction vs fooling D")
        p.add_argument("--hidden", type=hidden_widths, default=(128, 128),
                       help="encoder MLP widths (decoder reversed), e.g. 128,128")
        p.add_argument("--discriminator-hidden", type=hidden_widths, default=None,
                       help="discriminator MLP widths (default: --hidden)")
        p.add_argument("--feature-layer", type=int, default=-1,
                       help="discriminator hidden layer used as the similarity metric (-1: last)")
        add_adversarial_flags(p)

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        from ..runs_vaegan import fit_vaegan

        return fit_vaegan(dataset, train_config(args), loss=args.loss, gamma=args.gamma,
                          gp_weight=args.gp_weight, z_dim=args.z_dim, hidden=tuple(args.hidden),
                          discriminator_hidden=args.discriminator_hidden,
                          feature_layer=args.feature_layer, arch=args.arch,
                          activation=args.activation, lr_discriminator=args.lr_discriminator,
                          figures=args.plots, num_samples=args.num_samples)

    def title(self, result: Any, dataset: Any) -> str:
        m = result.metrics
        title = (f"Trained a VAE-GAN on {dataset.name} ({m['steps']} steps of each player in "
                 f"{m['train_seconds']:.1f} s)")
        if "mode_coverage" in m:
            title += f"; samples: {coverage_text(m['mode_coverage'])}"
        return title
