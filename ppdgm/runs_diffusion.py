"""``ppdgm fit diffusion``: train a denoising diffusion model, measure its bound, sample it."""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path
from typing import Any

import pyro
import torch

from ._validation import check_choice, check_positive_int
from .data import Dataset
from .diagnostics import plot_history, plot_latents, plot_samples_over_density, save_image_grid
from .diagnostics.diffusion_figures import plot_reverse_process
from .inference import Engine, TrainConfig
from .inference.coverage import ModeCoverage, dataset_coverage
from .inference.distributed import is_main_process
from .inference.objectives.denoising import DenoisingLoss, variational_bound
from .inference.sampling.diffusion import SAMPLERS, ddim_timesteps, sample_diffusion
from .models.diffusion import Diffusion, DiffusionConfig, diffusion_config_for, quantization_levels
from .runs import RunResult, check_run_inputs, write_run_files

# diffusion_config_for and quantization_levels live with the model; re-exported for old imports.
__all__ = ["diffusion_config_for", "fit_diffusion", "quantization_levels"]


def fit_diffusion(dataset: Dataset, train: TrainConfig, *, model_overrides: dict[str, Any] | None = None,
                  sampler: str = "ddpm", steps: int | None = None, eta: float = 0.0,
                  num_samples: int = 1000, bound_points: int | None = None,
                  figures: bool = False) -> RunResult:
    """Train a :class:`~ppdgm.models.Diffusion` on ``dataset`` with the denoising loss, then measure.

    One player trains the denoiser with the loss of
    :class:`~ppdgm.inference.objectives.DenoisingLoss` (reported per data point). Afterwards
    ``metrics.json`` holds the exact bound of :func:`~ppdgm.inference.objectives.variational_bound`
    on the first ``bound_points`` test points (default 1000 for vectors, 100 for images: every
    point costs T denoiser calls), in nats and bits per dimension, and for the 2-D mixtures the
    mode coverage of ``num_samples`` draws from ``sampler`` (``"ddpm"`` or ``"ddim"`` with
    ``steps`` and ``eta``) with the sampling time. ``figures=True`` adds the loss curve, the
    samples (a grid of 64 images, or the points over the true density) and the reverse process.

    Example:
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
    out = check_run_inputs(dataset, train)
    check_choice("sampler", sampler, SAMPLERS)
    check_positive_int("num_samples", num_samples)
    config = diffusion_config_for(dataset, **dict(model_overrides or {}))
    images = len(config.x_shape) == 3
    bound_points = (100 if images else 1000) if bound_points is None else bound_points
    check_positive_int("bound_points", bound_points)
    if train.seed is not None:
        pyro.set_rng_seed(train.seed)
    diffusion = Diffusion(config)
    spec = {"name": "diffusion", "config": dataclasses.asdict(config), "data": dataset.name,
            "objective": "denoising"}
    engine = Engine(diffusion.model, diffusion.guide, DenoisingLoss(), config=train, model_spec=spec)
    started = time.perf_counter()
    history = engine.fit(dataset.train)
    seconds = time.perf_counter() - started
    device = engine.device
    diffusion.eval()
    test = dataset.test[:bound_points].to(device)
    started = time.perf_counter()
    bound = variational_bound(diffusion, test, seed=0).summary()
    bound["seconds"] = round(time.perf_counter() - started, 3)
    snapshots: dict[int, torch.Tensor] = {}
    keep = _snapshot_steps(config, sampler, steps)

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
        "parameters": sum(p.numel() for p in diffusion.parameters()),
        "epochs": train.epochs, "steps": len(history), "batch_size": train.batch_size,
        "lr": train.lr, "seed": train.seed, "device": str(device),
        "train_seconds": round(seconds, 3),
        "final_epoch_loss_per_example": history.last() if history.epochs else None,
        "bound": bound, "sampler": sampler, "sampler_steps": _sampler_steps(config, sampler, steps),
        "eta": eta if sampler == "ddim" else None, "sample_seconds": round(sample_seconds, 3),
        "num_samples": num_samples,
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__,
                     "python": platform.python_version()},
    }
    coverage = dataset_coverage(samples, dataset)
    if coverage is not None:
        metrics["mode_coverage"] = coverage.as_json()
    files = write_run_files(out, metrics, allow_nan=False)
    if figures and is_main_process():
        title = f"Diffusion ({config.denoiser}, T={config.timesteps}) on {dataset.name}"
        files["loss_curve"] = plot_history(history, out / "loss_curve.png",
                                           title=f"{title}: denoising loss per example")
        files.update(_sample_figures(samples, snapshots, dataset, out, title, coverage))
    return RunResult(out, files, metrics)


def _sampler_steps(config: DiffusionConfig, sampler: str, steps: int | None) -> int:
    if sampler == "ddpm":
        return config.timesteps
    return min(50, config.timesteps) if steps is None else steps


def _snapshot_steps(config: DiffusionConfig, sampler: str, steps: int | None) -> set[int]:
    # Eight of the steps the sampler visits, denser near the data, where the picture forms.
    visited = ([*range(config.timesteps, 0, -1), 0] if sampler == "ddpm" else
               [*ddim_timesteps(config.timesteps, _sampler_steps(config, sampler, steps)).tolist(), 0])
    last = len(visited) - 1
    return {visited[round(last * (1 - (1 - f) ** 2))] for f in (0, 0.3, 0.5, 0.65, 0.8, 0.9, 0.96, 1)}


def _sample_figures(samples: torch.Tensor, snapshots: dict[int, torch.Tensor], dataset: Dataset,
                    out: Path, title: str, coverage: ModeCoverage | None) -> dict[str, Path]:
    files = {}
    if snapshots:
        files["reverse_process"] = plot_reverse_process(snapshots, out / "reverse_process.png",
                                                        title=f"{title}: reverse process")
    if samples.dim() == 4:
        files["samples"] = save_image_grid(samples[:64].clamp(0, 1).cpu(), out / "samples.png")
        return files
    flat = samples.reshape(samples.shape[0], -1)
    if flat.shape[1] != 2:
        return files
    if dataset.centres is not None and dataset.scale is not None:
        files["samples"] = plot_samples_over_density(
            {"diffusion": flat}, dataset.centres, dataset.scale, out / "samples.png", title=title,
            coverage={"diffusion": coverage} if coverage is not None else None)
    else:
        files["samples"] = plot_latents(flat, out / "samples.png", title=f"{title}: samples")
    return files
