"""``ppdgm fit gan``: a GAN whose generator is the Pyro model and discriminator the guide q(y | x)."""

from __future__ import annotations

import argparse
from typing import Any

from ..inference.objectives.adversarial import ADVERSARIAL_LOSSES
from ..models.nets import ACTIVATIONS
from .base import Recipe, hidden_widths, train_config

__all__ = ["GANRecipe", "add_adversarial_flags", "coverage_text"]


def coverage_text(coverage: dict[str, Any]) -> str:
    """``"8/8 modes, 97.4% high-quality"`` from a mode-coverage record."""
    return (f"{coverage['modes_captured']}/{coverage['num_modes']} modes, "
            f"{coverage['high_quality_percent']:.1f}% high-quality")


def add_adversarial_flags(p: argparse.ArgumentParser) -> None:
    """The flags a GAN and a VAE-GAN share: penalty, latent size, architecture, the
    discriminator's learning rate and the samples scored."""
    p.add_argument("--gp-weight", type=float, default=10.0, help="wasserstein-gp's penalty weight")
    p.add_argument("--z-dim", type=int, default=None, help="default: 2 for 2-D data, 64 for images")
    p.add_argument("--arch", choices=["mlp", "dcgan"], default="mlp")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default="relu")
    p.add_argument("--lr-discriminator", type=float, default=None, help="default: --lr")
    p.add_argument("--num-samples", type=int, default=1000,
                   help="generated points for mode coverage and the sample figure")


class GANRecipe(Recipe):
    name = "gan"
    help = "GAN: generator = Pyro model, discriminator = guide q(y | x)"
    epochs = 20
    defaults = {"lr": 2e-4}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--loss", choices=list(ADVERSARIAL_LOSSES), default="non-saturating")
        p.add_argument("--critic-steps", type=int, default=1,
                       help="discriminator steps per generator step (WGAN-GP uses 5)")
        p.add_argument("--pack", type=int, default=1,
                       help="PacGAN: points the discriminator judges at once (divides --batch-size)")
        p.add_argument("--hidden", type=hidden_widths, default=(128, 128), help="MLP widths, e.g. 128,128")
        add_adversarial_flags(p)

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        from ..runs_gan import fit_gan

        return fit_gan(dataset, train_config(args), loss=args.loss, z_dim=args.z_dim,
                       hidden=tuple(args.hidden), arch=args.arch, activation=args.activation,
                       critic_steps=args.critic_steps, pack=args.pack, gp_weight=args.gp_weight,
                       lr_discriminator=args.lr_discriminator, figures=args.plots,
                       num_samples=args.num_samples)

    def title(self, result: Any, dataset: Any) -> str:
        m = result.metrics
        title = (f"Trained a GAN on {dataset.name} ({m['discriminator_steps']} discriminator, "
                 f"{m['generator_steps']} generator steps in {m['train_seconds']:.1f} s)")
        if "mode_coverage" in m:
            title += f"; {coverage_text(m['mode_coverage'])}"
        return title
