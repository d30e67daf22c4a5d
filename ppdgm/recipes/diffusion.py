"""``ppdgm fit diffusion``: the reverse chain as the model, the forward chain as a fixed guide."""

from __future__ import annotations

import argparse
from typing import Any

from .base import Recipe, hidden_widths, train_config
from .gan import coverage_text

__all__ = ["DiffusionRecipe", "bound_line"]


def bound_line(metrics: dict[str, Any]) -> str:
    """The variational bound as ``ppdgm fit diffusion`` and ``ppdgm evaluate`` print it."""
    b = metrics["bound"]
    return (f"variational bound on -log p(x) per example: {b['nats']:.3f} ± {b['nats_stderr']:.3f} "
            f"nats = {b['bits_per_dim']:.4f} bits/dim (prior {b['prior_nats']:.3f}, steps "
            f"{b['steps_nats']:.3f}, decoder {b['decoder_nats']:.3f})")


class DiffusionRecipe(Recipe):
    name = "diffusion"
    help = "denoising diffusion model: reverse chain = model, forward chain = guide"
    epochs = 20
    defaults = {"lr": 2e-4}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--timesteps", type=int, default=1000, help="T, the noising steps")
        p.add_argument("--schedule", choices=["linear", "cosine"], default="linear")
        p.add_argument("--prediction", choices=["eps", "x0", "v"], default="eps",
                       help="what the denoiser predicts")
        p.add_argument("--variance", choices=["small", "large"], default="small",
                       help="reverse step variance: beta-tilde_t (small) or beta_t (large)")
        p.add_argument("--hidden", type=hidden_widths, default=None,
                       help="MLP denoiser widths for vector data (default 256,256,256)")
        p.add_argument("--channels", type=int, default=None, help="U-Net base width for images (default 32)")
        p.add_argument("--multipliers", type=hidden_widths, default=None,
                       help="U-Net width multiplier per level (default 1,2,2)")
        p.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddpm",
                       help="sampler for the metrics' samples and figures")
        p.add_argument("--steps", type=int, default=None, help="DDIM steps (default 50, at most T)")
        p.add_argument("--eta", type=float, default=0.0, help="DDIM noise (0: deterministic)")
        p.add_argument("--num-samples", type=int, default=1000,
                       help="generated points for mode coverage and the sample figure")
        p.add_argument("--bound-points", type=int, default=None,
                       help="test points for the exact bound (default 1000; images 100)")

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        from ..runs_diffusion import fit_diffusion

        overrides = {"timesteps": args.timesteps, "schedule": args.schedule,
                     "prediction": args.prediction, "variance": args.variance,
                     "hidden": args.hidden, "channels": args.channels,
                     "multipliers": args.multipliers}
        return fit_diffusion(dataset, train_config(args), model_overrides=overrides,
                             sampler=args.sampler, steps=args.steps, eta=args.eta,
                             num_samples=args.num_samples, bound_points=args.bound_points,
                             figures=args.plots)

    def title(self, result: Any, dataset: Any) -> str:
        m, b = result.metrics, result.metrics["bound"]
        title = (f"Trained a diffusion model on {dataset.name} ({m['steps']} steps in "
                 f"{m['train_seconds']:.1f} s); bound on -log p(x) over {b['num_points']} test "
                 f"points: {b['nats']:.2f} nats, {b['bits_per_dim']:.3f} bits/dim")
        if "mode_coverage" in m:
            title += f"; {m['sampler']} samples: {coverage_text(m['mode_coverage'])}"
        return title

    def lines(self, result: Any) -> list[str]:
        return []
