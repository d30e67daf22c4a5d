"""``ppdgm fit diffusion``: the reverse chain as the model, the forward chain as a fixed guide."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from .._validation import check_positive_int
from ..data import Dataset
from ..diagnostics import plot_history
from ..diagnostics.diffusion_figures import plot_reverse_process
from ..inference import Engine, TrainConfig
from ..inference.coverage import dataset_coverage
from ..inference.objectives.denoising import DenoisingLoss, DiffusionBound, variational_bound
from ..inference.sampling.diffusion import check_sampler, ddim_timesteps, sample_diffusion
from ..inference.sampling.schedulers import SCHEDULER_ALIASES, scheduler_timesteps
from ..models.diffusion import Diffusion, DiffusionConfig, diffusion_config_for
from .base import Recipe, hidden_widths, train_config
from .gan import coverage_text
from .run import RunResult, check_run_inputs, finish_run, sample_figure, train_with_engine

__all__ = ["SAMPLER_HELP", "DiffusionRecipe", "add_sampler_flags", "bound_line", "fit_diffusion"]


#: What ``--sampler`` chooses for a diffusion model.
SAMPLER_HELP = ("ancestral ddpm (all T steps), ddim, or with ppdgm[diffusers] any diffusers "
                f"scheduler: {', '.join(SCHEDULER_ALIASES)} or a class name")


def add_sampler_flags(p: argparse.ArgumentParser, *, prefix: str = "", sampler: bool = True) -> None:
    """The reverse sampler's flags, for ``ppdgm fit diffusion`` and ``ppdgm sample`` (whose
    ``--sampler`` every family shares, so it is added there: ``sampler=False``)."""
    if sampler:
        p.add_argument("--sampler", default="ddpm", help=f"{prefix}{SAMPLER_HELP}")
    p.add_argument("--steps", type=int, default=None,
                   help=f"{prefix}sampler steps (default: ddim 50, diffusers 20, at most T)")
    p.add_argument("--eta", type=float, default=0.0, help=f"{prefix}DDIM noise, 0 (deterministic) to 1")


def bound_line(metrics: dict[str, Any]) -> str:
    """The variational bound as ``ppdgm fit diffusion`` and ``ppdgm evaluate`` print it."""
    b = metrics["bound"]
    return (f"variational bound on -log p(x) per example: {b['nats']:.3f} ± {b['nats_stderr']:.3f} "
            f"nats = {b['bits_per_dim']:.4f} bits/dim (prior {b['prior_nats']:.3f}, steps "
            f"{b['steps_nats']:.3f}, decoder {b['decoder_nats']:.3f})")


def fit_diffusion(dataset: Dataset, train: TrainConfig, *, model_overrides: dict[str, Any] | None = None,
                  sampler: str = "ddpm", steps: int | None = None, eta: float = 0.0,
                  num_samples: int | None = None, bound_points: int | None = None,
                  figures: bool = False) -> RunResult:
    """Train a :class:`~ppdgm.models.Diffusion` on ``dataset`` with the denoising loss, then measure.

    One player trains the denoiser with the loss of
    :class:`~ppdgm.inference.objectives.DenoisingLoss` (reported per data point). Afterwards
    ``metrics.json`` holds the exact bound of :func:`~ppdgm.inference.objectives.variational_bound`
    on the first ``bound_points`` test points (default 1000 for vectors, 100 for images: every
    point costs T denoiser calls), in nats and bits per dimension, the time to draw
    ``num_samples`` from ``sampler`` (``"ddpm"`` or ``"ddim"`` with ``steps`` and ``eta``, or a
    diffusers scheduler's name) and, for the 2-D mixtures, their mode coverage.
    ``num_samples`` defaults to what is used: 1000 points for the coverage of vector data, 64
    images (the sample grid) for images. ``figures=True`` adds the loss curve, the samples (a
    grid of 64 images, or the points over the true density) and the reverse process.

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("ring8", num_train=64, num_test=16)
        >>> cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> m = fit_diffusion(ds, cfg, model_overrides={"timesteps": 20, "hidden": (16,)},
        ...                   num_samples=50).metrics
        >>> m["steps"], sorted(m["bound"])[:2]
        (2, ['bits_per_dim', 'decoder_nats'])
    """
    check_run_inputs(dataset, train)
    check_sampler(sampler)
    config = diffusion_config_for(dataset, **dict(model_overrides or {}))
    images = len(config.x_shape) == 3
    num_samples = (64 if images else 1000) if num_samples is None else num_samples
    check_positive_int("num_samples", num_samples)
    bound_points = (100 if images else 1000) if bound_points is None else bound_points
    check_positive_int("bound_points", bound_points)
    spec = {"name": "diffusion", "config": dataclasses.asdict(config), "data": dataset.name,
            "objective": "denoising"}
    run = train_with_engine(dataset, train, lambda: Diffusion(config), lambda diffusion: Engine(
        diffusion.model, diffusion.guide, DenoisingLoss(), config=train, model_spec=spec))
    diffusion = run.model
    diffusion.eval()
    test = dataset.test[:bound_points].to(run.device)
    started = time.perf_counter()
    bound = variational_bound(diffusion, test, seed=0).summary()
    bound["seconds"] = round(time.perf_counter() - started, 3)
    snapshots: dict[int, torch.Tensor] = {}
    keep = _snapshot_steps(diffusion, sampler, steps)

    def on_step(t: int, x: torch.Tensor) -> None:
        if t in keep:
            snapshots[t] = x[:512].cpu()

    started = time.perf_counter()
    samples = sample_diffusion(diffusion, num_samples, sampler=sampler, steps=steps, eta=eta,
                               seed=0, progress=train.progress, on_step=on_step)
    sample_seconds = time.perf_counter() - started
    metrics: dict[str, Any] = {
        "model": "diffusion", "data": dataset.name, "timesteps": config.timesteps,
        "schedule": config.schedule, "prediction": config.prediction, "variance": config.variance,
        "denoiser": config.denoiser, "levels": config.levels,
        "parameters": sum(p.numel() for p in diffusion.parameters()), **run.run_metrics(train),
        "final_epoch_loss_per_example": run.history.last() if run.history.epochs else None,
        "bound": bound, "sampler": sampler, "sampler_steps": _sampler_steps(config, sampler, steps),
        "eta": eta if sampler == "ddim" else None, "sample_seconds": round(sample_seconds, 3),
        "num_samples": num_samples,
    }
    coverage = dataset_coverage(samples, dataset)
    if coverage is not None:
        metrics["mode_coverage"] = coverage.as_json()

    def draw_figures() -> dict[str, Path]:
        title = f"Diffusion ({config.denoiser}, T={config.timesteps}) on {dataset.name}"
        files = {"loss_curve": plot_history(run.history, run.out / "loss_curve.png",
                                            title=f"{title}: denoising loss per example")}
        if snapshots:
            files["reverse_process"] = plot_reverse_process(
                snapshots, run.out / "reverse_process.png", title=f"{title}: reverse process")
        picture = sample_figure({"diffusion": samples}, dataset, run.out / "samples.png", title,
                                {"diffusion": coverage} if coverage is not None else None)
        return files | ({"samples": picture} if picture is not None else {})

    return finish_run(run.out, metrics, figures=figures, draw_figures=draw_figures,
                      allow_nan=False)


def _sampler_steps(config: DiffusionConfig, sampler: str, steps: int | None) -> int:
    if sampler == "ddpm":
        return config.timesteps
    default = 50 if sampler == "ddim" else 20
    return min(default, config.timesteps) if steps is None else steps


def _snapshot_steps(diffusion: Diffusion, sampler: str, steps: int | None) -> set[int]:
    # Eight of the steps the sampler visits, denser near the data, where the picture forms.
    config = diffusion.config
    n = _sampler_steps(config, sampler, steps)
    if sampler == "ddpm":
        visited = [*range(config.timesteps, 0, -1), 0]
    elif sampler == "ddim":
        visited = [*ddim_timesteps(config.timesteps, n).tolist(), 0]
    else:
        visited = [*scheduler_timesteps(diffusion, sampler, n), 0]
    last = len(visited) - 1
    return {visited[round(last * (1 - (1 - f) ** 2))] for f in (0, 0.3, 0.5, 0.65, 0.8, 0.9, 0.96, 1)}


class DiffusionRecipe(Recipe):
    name = "diffusion"
    help = "denoising diffusion model: reverse chain = model, forward chain = guide"
    epochs = 20
    models = {"diffusion": (Diffusion, DiffusionConfig)}
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
        add_sampler_flags(p)
        p.add_argument("--num-samples", type=int, default=None,
                       help="draws for the sampling time, mode coverage and the sample figure "
                            "(default 1000 points; images 64, the figure's grid)")
        p.add_argument("--bound-points", type=int, default=None,
                       help="test points for the exact bound (default 1000; images 100)")

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
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

    def add_sample_flags(self, p: argparse.ArgumentParser) -> None:
        add_sampler_flags(p, prefix="diffusion: ", sampler=False)

    def sample_options(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"sampler": args.sampler or "ddpm", "steps": args.steps, "eta": args.eta}

    def draw(self, model: Any, n: int, *, mean: bool, seed: int, sampler: str = "ddpm",
             steps: int | None = None, eta: float = 0.0) -> tuple[torch.Tensor, dict[str, Any]]:
        # The reverse chain's last step is its mean already; ``mean`` has nothing to choose.
        samples = sample_diffusion(model, n, sampler=sampler, steps=steps, eta=eta, seed=seed)
        return samples, {"sampler": sampler}

    def evaluate(self, model: Any, x: torch.Tensor, *, k: int, batch_size: int,
                 seed: int) -> dict[str, Any]:
        """The exact variational bound, ``batch_size`` points at a time (``k`` is not used):
        ``log_px`` is minus the bound, a lower bound on log p(x)."""
        parts = [variational_bound(model, chunk, seed=seed + i)
                 for i, chunk in enumerate(x.split(batch_size))]
        bound = DiffusionBound(*(torch.cat([getattr(p, f) for p in parts])
                                 for f in ("prior", "steps", "decoder")), dims=parts[0].dims)
        summary = bound.summary()
        return {"bound": summary, "log_px": -summary["nats"], "log_px_stderr": summary["nats_stderr"],
                "nll": summary["nats"], "num_data": x.shape[0], "estimator": "variational bound"}

    def bounds(self, model: Any, *, num_steps: int, k: int, seed: int) -> dict[str, Any]:
        raise ValueError("bounds: a diffusion model's latents are its whole noising chain; its "
                         "exact variational bound is what `ppdgm evaluate` reports")

    def evaluation_lines(self, metrics: dict[str, Any]) -> list[str]:
        m = metrics
        return [f"{bound_line(m)}; {m['num_data']} points of {m['data']}/{m['split']} in "
                f"{m['seconds']:.1f} s"]
