"""The skeleton every ``fit_*`` run shares: check, seed, build, train, time, measure, write.

A family's fit function builds its model, objective and players, hands them to
:func:`train_with_engine`, measures what its family measures and ends with :func:`finish_run`,
which writes ``metrics.json`` (with the library versions) and the figures. So every run writes
the same files the same way, and a new family writes only what is its own.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch

from .._files import atomic_write_text
from ..data import Dataset
from ..diagnostics import plot_latents, plot_samples_over_density, save_image_grid
from ..inference import CHECKPOINT_NAME, Engine, History, TrainConfig
from ..inference.coverage import ModeCoverage
from ..inference.distributed import is_main_process

__all__ = [
    "RunResult",
    "Trained",
    "check_optional_lr",
    "check_run_inputs",
    "evaluation_points",
    "finish_run",
    "sample_figure",
    "train_with_engine",
    "versions",
    "write_run_files",
]


@dataclass
class RunResult:
    """Where a run wrote its files, and what it measured."""

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trained:
    """What :func:`train_with_engine` hands back: the trained model and how training went."""

    model: torch.nn.Module
    engine: Engine
    history: History
    seconds: float
    out: Path

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def run_metrics(self, train: TrainConfig) -> dict[str, Any]:
        """The figures every engine run reports: steps, batch size, seed, device, time."""
        return {"epochs": train.epochs, "steps": len(self.history), "batch_size": train.batch_size,
                "lr": train.lr, "seed": train.seed, "device": str(self.device),
                "train_seconds": round(self.seconds, 3)}


def versions() -> dict[str, str]:
    """The library versions a run's ``metrics.json`` records."""
    return {"torch": torch.__version__, "pyro": pyro.__version__,
            "python": platform.python_version()}


def check_run_inputs(dataset: Dataset, train: TrainConfig) -> Path:
    """Check the two arguments every ``fit_*`` run takes; returns the run's output folder.

    Examples:
        >>> from ppdgm.data import load_dataset
        >>> check_run_inputs(load_dataset("ring8", num_train=8, num_test=4), TrainConfig(device="cpu"))
        Traceback (most recent call last):
        ...
        ValueError: train: TrainConfig.out_dir is needed to write the run's files
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset: expected a ppdgm.data.Dataset, got {type(dataset).__name__}")
    if not isinstance(train, TrainConfig):
        raise TypeError(f"train: expected a TrainConfig, got {type(train).__name__}")
    if train.out_dir is None:
        raise ValueError("train: TrainConfig.out_dir is needed to write the run's files")
    return Path(train.out_dir)


def check_optional_lr(name: str, value: object) -> float | None:
    """A second learning rate (``lr_discriminator``): a positive finite number, or ``None``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive number (finite) or None, got {value!r}")
    return float(value)


def train_with_engine(dataset: Dataset, train: TrainConfig, build: Callable[[], torch.nn.Module],
                      make_engine: Callable[[Any], Engine], data: Any = None) -> Trained:
    """Seed, build the model, train it on ``data`` (default ``dataset.train``) and time it.

    ``build()`` makes the model after the seed is set, so the initial weights follow
    ``train.seed``; ``make_engine(model)`` returns the :class:`~ppdgm.inference.Engine`. With
    ``train.ema`` the returned model holds the moving average of its weights, which the run's
    closing measurements and samples then use (as loading its checkpoint does).
    """
    out = check_run_inputs(dataset, train)
    if train.seed is not None:
        pyro.set_rng_seed(train.seed)
    model = build()
    engine = make_engine(model)
    started = time.perf_counter()
    history = engine.fit(dataset.train if data is None else data)
    if train.ema is not None:
        engine.use_ema_weights()
    return Trained(model, engine, history, time.perf_counter() - started, out)


def write_run_files(out: Path, metrics: dict[str, Any], *, allow_nan: bool = True) -> dict[str, Path]:
    """The files every ``fit_*`` run leaves in ``out``; writes ``metrics.json`` (rank 0 only).

    The engine has written the checkpoint and the history already; in a data-parallel run the
    other ranks write nothing. ``allow_nan=False`` refuses NaN/Inf (callers map them to null).
    """
    files = {"checkpoint": out / CHECKPOINT_NAME, "history": out / "history.json",
             "metrics": out / "metrics.json"}
    if is_main_process():
        atomic_write_text(files["metrics"], json.dumps(metrics, indent=2, allow_nan=allow_nan))
    return files


def evaluation_points(x: torch.Tensor, limit: int | None) -> torch.Tensor:
    """At most ``limit`` points of ``x`` for a run's closing estimate: all of them when there are
    that few (or ``limit`` is ``None``), else a uniform subset drawn by a fixed generator, so that
    the estimate is unbiased, its standard error honest, and the global RNG untouched.

    Examples:
        >>> evaluation_points(torch.arange(10.0), 4).shape, evaluation_points(torch.arange(3.0), 4).shape
        (torch.Size([4]), torch.Size([3]))
    """
    if limit is not None:
        from .._validation import check_positive_int

        check_positive_int("eval_points", limit)
    if limit is None or x.shape[0] <= limit:
        return x
    chosen = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:limit]
    return x[chosen.sort().values.to(x.device)]


def finish_run(out: Path, metrics: dict[str, Any], *, figures: bool = False,
               draw_figures: Callable[[], Mapping[str, Path]] | None = None,
               allow_nan: bool = True) -> RunResult:
    """Add the versions, write ``metrics.json``, then (rank 0, ``figures=True``) the figures."""
    metrics = {**metrics, "versions": versions()}
    files = write_run_files(out, metrics, allow_nan=allow_nan)
    if figures and draw_figures is not None and is_main_process():
        files.update(draw_figures())
    return RunResult(out, files, metrics)


def sample_figure(samples: Mapping[str, torch.Tensor], dataset: Dataset, path: Path, title: str,
                  coverage: Mapping[str, ModeCoverage] | None = None) -> Path | None:
    """One picture of generated ``samples`` (by name), whatever the data are.

    Images become a grid of the first 64 (of the first entry; values clamped to [0, 1] for
    display only), 2-D points are scattered over the true density when the dataset knows its
    mixture (with each entry's coverage), else plainly. Other shapes have no picture: ``None``.
    """
    first = next(iter(samples.values()))
    if first.dim() == 4:
        return save_image_grid(first[:64].clamp(0, 1).cpu(), path)
    flat = {name: s.reshape(s.shape[0], -1) for name, s in samples.items()}
    if next(iter(flat.values())).shape[1] != 2:
        return None
    if dataset.centres is not None and dataset.scale is not None:
        return plot_samples_over_density(flat, dataset.centres, dataset.scale, path, title=title,
                                         coverage=dict(coverage) if coverage else None)
    return plot_latents(next(iter(flat.values())), path, title=f"{title}: samples")
