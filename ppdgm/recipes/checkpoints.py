"""What a trained checkpoint offers: its model back, samples from it, its log-likelihood.

A checkpoint written by ``ppdgm fit`` records ``model_spec = {"name", "config", "data", ...}``;
:func:`open_checkpoint` reads the file once, finds the family's recipe by that name
(:func:`~ppdgm.recipes.registry.recipe_for`) and rebuilds the model with its weights. ``ppdgm
sample``, ``evaluate`` and ``diagnose`` all start there, and the recipe says how its family is
sampled and evaluated.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyro
import torch

from .._files import atomic_write_text
from .._validation import check_positive_int
from ..data import Dataset
from ..device import resolve_device
from ..diagnostics import plot_latents, save_image_grid
from ..inference.checkpoint import CheckpointError, check_weights, load_checkpoint
from ..inference.evaluation.annealing import MAX_STEPS
from .base import Recipe
from .registry import recipe_for
from .run import RunResult

__all__ = [
    "OpenedCheckpoint",
    "checkpoint_data",
    "evaluate_checkpoint",
    "load_trained_model",
    "open_checkpoint",
    "require_likelihood",
    "sample_checkpoint",
]


@dataclass
class OpenedCheckpoint:
    """A trained model rebuilt from its checkpoint, with the record it was written with."""

    path: Path
    model: torch.nn.Module
    spec: dict[str, Any]
    recipe: Recipe

    @property
    def data(self) -> str | None:
        """The dataset the model was trained on, when the checkpoint records it."""
        return self.spec.get("data")

    def x_shape(self) -> tuple[int, ...]:
        """The shape of one data point as the model reads it."""
        config = self.model.config
        return tuple(getattr(config, "x_shape", None) or (config.x_dim,))

    def fit_data(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """``x`` reshaped to the model's points, or a ValueError naming both shapes."""
        expected = self.x_shape()
        if math.prod(x.shape[1:]) != math.prod(expected):
            raise ValueError(f"dataset: {name!r} has points of shape {tuple(x.shape[1:])}, the "
                             f"checkpoint's model expects {expected}")
        return x.reshape(x.shape[0], *expected)  # a mixture reads flattened images

    def image_shape(self, size: int) -> tuple[int, ...]:
        """(C, H, W) of the images a model over flat vectors of ``size`` was trained on."""
        shape = self.spec.get("x_shape")
        if shape is None and self.data:
            from ..data import load_dataset

            shape = load_dataset(self.data).event_shape
        shape = tuple(int(d) for d in shape or ())
        if math.prod(shape) != size or len(shape) not in (2, 3):
            raise ValueError(f"checkpoint: the model draws vectors of {size} values and its record "
                             f"gives no image shape they fold into (got {shape or 'none'})")
        return shape if len(shape) == 3 else (1, *shape)


def open_checkpoint(checkpoint: str | Path | OpenedCheckpoint,
                    device: str = "auto") -> OpenedCheckpoint:
    """Read a ``ppdgm fit`` checkpoint once and rebuild its model with the trained weights.

    A run trained with ``TrainConfig(ema=...)`` is rebuilt with the moving average of its
    weights, which is what sampling and evaluation should use.

    An :class:`OpenedCheckpoint` is returned as it is (the functions here take either).

    Raises:
        FileNotFoundError: no file at ``checkpoint``.
        CheckpointError: the file is corrupt, foreign, or its weights do not fit its model.
    """
    if isinstance(checkpoint, OpenedCheckpoint):
        return checkpoint
    if not isinstance(checkpoint, (str, Path)):
        raise TypeError(f"checkpoint: expected a path, got {type(checkpoint).__name__}")
    target = resolve_device(device)
    state = load_checkpoint(checkpoint, map_location=target)
    spec = state.get("model_spec")
    modules = state.get("modules")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not (
            isinstance(modules, list) and modules and isinstance(modules[0], dict)):
        raise CheckpointError(
            f"checkpoint: {str(checkpoint)!r} does not record which model it holds; it was not "
            "written by `ppdgm fit`"
        )
    try:
        recipe = recipe_for(spec["name"])
        model = recipe.build(spec["name"], spec.get("config", {}))
        weights = dict(modules[0])
        averaged = state.get("ema_modules")  # TrainConfig(ema=...): the moving average wins
        if isinstance(averaged, list) and averaged and isinstance(averaged[0], dict):
            weights.update(averaged[0])
        check_weights(weights, model, f"checkpoint: {str(checkpoint)!r}")
        model.load_state_dict(weights)
    except (ValueError, TypeError, KeyError, RuntimeError) as err:
        if isinstance(err, CheckpointError):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint: {str(checkpoint)!r} holds a {spec['name']!r} whose "
                              f"record or weights do not fit together: {first}") from err
    return OpenedCheckpoint(Path(checkpoint), model.to(target).eval(), spec, recipe)


def load_trained_model(checkpoint: str | Path, device: str = "auto") -> torch.nn.Module:
    """Rebuild the model a ``ppdgm fit`` checkpoint was written for, with its trained weights.

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> from ppdgm.inference import TrainConfig
        >>> from ppdgm.recipes.vae import fit_vae
        >>> ds = load_dataset("bars-and-stripes")
        >>> out = tempfile.mkdtemp()
        >>> cfg = TrainConfig(epochs=1, batch_size=10, device="cpu", progress=False, out_dir=out)
        >>> _ = fit_vae(ds, cfg, model_overrides={"z_dim": 2, "hidden": (16,)}, figures=False)
        >>> type(load_trained_model(Path(out) / "checkpoint.pt", device="cpu")).__name__
        'VAE'
    """
    return open_checkpoint(checkpoint, device).model


def checkpoint_data(checkpoint: str | Path) -> str | None:
    """The dataset name a ``ppdgm fit`` checkpoint was trained on, when it records one."""
    spec = load_checkpoint(checkpoint, map_location="cpu").get("model_spec") or {}
    return spec.get("data") if isinstance(spec, dict) else None


def require_likelihood(model: torch.nn.Module, command: str) -> None:
    """Refuse models whose Pyro program has no normalized likelihood to estimate log p(x) from.

    Examples:
        >>> from ppdgm.models import GAN
        >>> try:
        ...     require_likelihood(GAN(), "evaluate")
        ... except ValueError as err:
        ...     print(str(err)[:54])
        checkpoint: `ppdgm evaluate`: a GAN has no likelihood,
    """
    need = {"evaluate": "likelihood", "diagnose": "posterior"}.get(command)
    reason = getattr(type(model), "unsupported", {}).get(need) if need else None
    if reason:
        raise ValueError(f"checkpoint: `ppdgm {command}`: {reason}")


def evaluate_checkpoint(checkpoint: str | Path | OpenedCheckpoint, dataset: Dataset, *, split: str = "test",
                        k: int = 5000, batch_size: int = 100, seed: int = 0,
                        device: str = "auto", out: str | Path | None = None,
                        bounds: int = 0) -> RunResult:
    """What the checkpoint's family measures on ``split``: by default the importance-sampled
    log p(x) (``k`` proposals from the guide) and the ELBO; a diffusion model's exact
    variational bound (``log_px`` is then minus the bound, a lower bound on log p(x)).

    ``bounds=T`` also sandwiches log p(x) of points simulated from the model between BDMC's
    bounds with ``T`` intermediate distributions (:meth:`Recipe.bounds`), under ``bounds`` in the
    metrics. Writes the metrics as JSON to ``out`` when given. See
    :func:`ppdgm.inference.evaluate.estimate_log_likelihood` and :meth:`Recipe.evaluate`.

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> from ppdgm.inference import TrainConfig
        >>> from ppdgm.recipes.vae import fit_vae
        >>> ds = load_dataset("bars-and-stripes")
        >>> run = tempfile.mkdtemp()
        >>> cfg = TrainConfig(epochs=1, batch_size=10, device="cpu", progress=False, out_dir=run)
        >>> _ = fit_vae(ds, cfg, model_overrides={"z_dim": 2, "hidden": (16,)})
        >>> m = evaluate_checkpoint(Path(run) / "checkpoint.pt", ds, k=20, device="cpu").metrics
        >>> m["elbo"] <= m["log_px"]
        True
    """
    check_positive_int("bounds", bounds, minimum=0, maximum=MAX_STEPS)
    opened = open_checkpoint(checkpoint, device)
    require_likelihood(opened.model, "evaluate")
    x = opened.fit_data(dataset.split(split).to(resolve_device(device)), dataset.name)
    started = time.perf_counter()
    estimate = opened.recipe.evaluate(opened.model, x, k=k, batch_size=batch_size, seed=seed)
    metrics = {"checkpoint": str(opened.path), "data": dataset.name, "split": split,
               **estimate, "seed": seed, "device": str(x.device),
               "seconds": round(time.perf_counter() - started, 3)}
    if bounds:
        started = time.perf_counter()
        metrics["bounds"] = opened.recipe.bounds(opened.model, num_steps=bounds, k=k, seed=seed)
        metrics["bounds"]["seconds"] = round(time.perf_counter() - started, 3)
    files = {}
    if out is not None:
        files["metrics"] = atomic_write_text(Path(out), json.dumps(metrics, indent=2) + "\n")
    return RunResult(opened.path.parent, files, metrics)


def sample_checkpoint(checkpoint: str | Path | OpenedCheckpoint, out: str | Path, *, n: int = 64,
                      seed: int = 0, device: str = "auto", mean: bool = True,
                      **options: Any) -> RunResult:
    """Draw ``n`` samples from a trained model and save them at ``out``.

    Images become a PNG grid, 2-D points a scatter plot. ``options`` go to the family's
    :meth:`Recipe.draw`: a diffusion model takes ``sampler`` (``"ddpm"``, or ``"ddim"`` with
    ``steps`` and ``eta``); other families take none.
    """
    opened = open_checkpoint(checkpoint, device)
    pyro.set_rng_seed(seed)
    images, drawn = opened.recipe.draw(opened.model, n, mean=mean, seed=seed, **options)
    if images.dim() == 2 and images.shape[1] != 2:  # flattened images (RBMs, mixtures)
        images = images.reshape(n, *opened.image_shape(images.shape[1]))
    if images.dim() == 2 and images.shape[1] == 2:
        path = plot_latents(images, out, title=f"{n} samples")
    elif images.dim() != 4:
        raise ValueError(f"checkpoint: the model draws shape {tuple(images.shape[1:])}, "
                         "neither images nor 2-D points")
    else:
        path = save_image_grid(images.clamp(0, 1), out)
    return RunResult(Path(out).parent, {"samples": path}, {"n": n, "seed": seed, **drawn})
