"""End-to-end runs behind the command line: fit a model, write its figures and metrics, sample.

Each function takes plain arguments, returns a :class:`RunResult` and prints nothing, so the
same run is available from Python, from ``ppdgm`` and from the tests.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import Trace_ELBO

from .data import Dataset
from .device import resolve_device
from .diagnostics import plot_history, save_image_grid
from .inference import CHECKPOINT_NAME, Engine, TrainConfig, load_checkpoint
from .inference.checkpoint import CheckpointError
from .inference.evaluate import estimate_elbo
from .models import VAE, VAEConfig, build_model

__all__ = ["RunResult", "fit_vae", "sample_checkpoint", "load_trained_model"]


@dataclass
class RunResult:
    """Where a run wrote its files, and what it measured."""

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def _vae_config_for(dataset: Dataset, overrides: dict[str, Any]) -> VAEConfig:
    likelihood = overrides.pop("likelihood", None)
    if likelihood is None:
        likelihood = "bernoulli" if dataset.support == "binary" else "gaussian"
    return VAEConfig(x_shape=tuple(dataset.event_shape), likelihood=likelihood, **overrides)


def fit_vae(
    dataset: Dataset,
    train: TrainConfig,
    *,
    model_overrides: dict[str, Any] | None = None,
    eval_particles: int = 10,
    figures: bool = True,
    num_samples: int = 64,
) -> RunResult:
    """Train a VAE on ``dataset`` with the engine, then write figures and ``metrics.json``.

    The likelihood defaults to Bernoulli for binary data and Gaussian otherwise. The metrics hold
    the ELBO per data point on the train and test splits (``eval_particles`` draws each), in nats.

    Example:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("bars-and-stripes")
        >>> cfg = TrainConfig(epochs=2, batch_size=10, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> result = fit_vae(ds, cfg, model_overrides={"z_dim": 2, "hidden": (16,)}, figures=False)
        >>> sorted(result.files)
        ['checkpoint', 'history', 'metrics']
    """
    if train.out_dir is None:
        raise ValueError("train: TrainConfig.out_dir is needed to write the run's files")
    out = Path(train.out_dir)
    config = _vae_config_for(dataset, dict(model_overrides or {}))
    if train.seed is not None:
        pyro.set_rng_seed(train.seed)  # the initial weights follow the seed too
    vae = VAE(config)
    spec = {"name": "vae", "config": dataclasses.asdict(config), "data": dataset.name}
    engine = Engine(vae.model, vae.guide, Trace_ELBO(), config=train, model_spec=spec)
    started = time.perf_counter()
    history = engine.fit(dataset.train)
    seconds = time.perf_counter() - started
    device = engine.device
    train_elbo = estimate_elbo(vae.model, vae.guide, dataset.train.to(device),
                               num_particles=eval_particles)
    test_elbo = estimate_elbo(vae.model, vae.guide, dataset.test.to(device),
                              num_particles=eval_particles)
    metrics = {
        "model": "vae",
        "data": dataset.name,
        "likelihood": config.likelihood,
        "z_dim": config.z_dim,
        "epochs": train.epochs,
        "steps": len(history.steps),
        "batch_size": train.batch_size,
        "seed": train.seed,
        "device": str(device),
        "train_seconds": round(seconds, 3),
        "final_epoch_loss_per_example": history.last() if history.epochs else None,
        "train_elbo_nats": {"mean": train_elbo.mean, "stderr": train_elbo.stderr,
                            "particles": eval_particles},
        "test_elbo_nats": {"mean": test_elbo.mean, "stderr": test_elbo.stderr,
                           "particles": eval_particles},
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__,
                     "python": platform.python_version()},
    }
    files = {"checkpoint": out / CHECKPOINT_NAME, "history": out / "history.json",
             "metrics": out / "metrics.json"}
    files["metrics"].write_text(json.dumps(metrics, indent=2))
    if figures:
        files["loss_curve"] = plot_history(history, out / "loss_curve.png",
                                           title=f"VAE on {dataset.name}: negative ELBO")
        if len(config.x_shape) == 3:
            files["samples"] = save_image_grid(vae.sample(num_samples).clamp(0, 1),
                                               out / "samples.png")
            # Rows alternate: eight test images, then their eight reconstructions.
            rows_of_8 = min(4, dataset.test.shape[0] // 8)
            test = dataset.test[: 8 * rows_of_8].to(device)
            recon = vae.reconstruct(test).clamp(0, 1)
            rows = torch.stack([test.unflatten(0, (rows_of_8, 8)),
                                recon.unflatten(0, (rows_of_8, 8))], dim=1)
            files["reconstructions"] = save_image_grid(rows.flatten(0, 2), out / "reconstructions.png")
    return RunResult(out, files, metrics)


def load_trained_model(checkpoint: str | Path, device: str = "auto") -> torch.nn.Module:
    """Rebuild the model a ``ppdgm fit`` checkpoint was written for, with its trained weights.

    Example:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("bars-and-stripes")
        >>> out = tempfile.mkdtemp()
        >>> cfg = TrainConfig(epochs=1, batch_size=10, device="cpu", progress=False, out_dir=out)
        >>> _ = fit_vae(ds, cfg, model_overrides={"z_dim": 2, "hidden": (16,)}, figures=False)
        >>> type(load_trained_model(Path(out) / "checkpoint.pt", device="cpu")).__name__
        'VAE'
    """
    target = resolve_device(device)
    state = load_checkpoint(checkpoint, map_location=target)
    spec = state.get("model_spec")
    if not isinstance(spec, dict) or "name" not in spec or not state.get("modules"):
        raise CheckpointError(
            f"checkpoint: {str(checkpoint)!r} does not record which model it holds; it was not "
            "written by `ppdgm fit`"
        )
    model = build_model(spec["name"], spec.get("config", {}))
    model.load_state_dict(state["modules"][0])
    return model.to(target).eval()


def sample_checkpoint(checkpoint: str | Path, out: str | Path, *, n: int = 64, seed: int = 0,
                      device: str = "auto", mean: bool = True) -> RunResult:
    """Draw ``n`` samples from a trained model and save them as a PNG grid at ``out``."""
    model = load_trained_model(checkpoint, device)
    pyro.set_rng_seed(seed)
    images = model.sample(n, mean=mean)
    if images.dim() != 4:
        raise ValueError(f"checkpoint: the model draws shape {tuple(images.shape[1:])}, not images")
    path = save_image_grid(images.clamp(0, 1), out)
    return RunResult(Path(out).parent, {"samples": path}, {"n": n, "seed": seed})
