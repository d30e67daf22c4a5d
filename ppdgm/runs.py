"""End-to-end runs behind the command line: fit a model, write its figures and metrics, sample.

Each function takes plain arguments, returns a :class:`RunResult` and prints nothing, so the
same run is available from Python, from ``ppdgm`` and from the tests.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch

from .data import Dataset
from .device import resolve_device
from .diagnostics import plot_history, plot_latents, save_image_grid
from .inference import CHECKPOINT_NAME, Engine, TrainConfig, load_checkpoint
from .inference.checkpoint import CheckpointError
from .inference.distributed import is_main_process
from .inference.evaluate import estimate_elbo, estimate_log_likelihood
from .inference.objectives import build_objective
from .models import VAE, Diffusion, VAEConfig, build_model

__all__ = [
    "RunResult",
    "check_run_inputs",
    "checkpoint_data",
    "evaluate_checkpoint",
    "fit_vae",
    "load_trained_model",
    "require_likelihood",
    "sample_checkpoint",
    "write_run_files",
]


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


def write_run_files(out: Path, metrics: dict[str, Any], *, allow_nan: bool = True) -> dict[str, Path]:
    """The files every ``fit_*`` run leaves in ``out``; writes ``metrics.json`` (rank 0 only).

    The engine has written the checkpoint and the history already; in a data-parallel run the
    other ranks write nothing. ``allow_nan=False`` refuses NaN/Inf (callers map them to null).
    """
    files = {"checkpoint": out / CHECKPOINT_NAME, "history": out / "history.json",
             "metrics": out / "metrics.json"}
    if is_main_process():
        files["metrics"].write_text(json.dumps(metrics, indent=2, allow_nan=allow_nan))
    return files


def check_run_inputs(dataset: Dataset, train: TrainConfig) -> Path:
    """Check the two arguments every ``fit_*`` run takes; returns the run's output folder.

    Example:
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


def fit_vae(
    dataset: Dataset,
    train: TrainConfig,
    *,
    model_overrides: dict[str, Any] | None = None,
    objective: str = "elbo",
    k: int = 1,
    eval_particles: int = 10,
    figures: bool = False,
    num_samples: int = 64,
) -> RunResult:
    """Train a VAE on ``dataset`` with the engine, then write ``metrics.json`` (and figures).

    ``objective`` is one of :data:`ppdgm.inference.objectives.OBJECTIVES` with ``k`` particles
    (``"iwae"`` with ``k=50`` is the IWAE of Burda et al.). The likelihood defaults to Bernoulli
    for binary data and Gaussian otherwise. The metrics hold the ELBO per data point on the
    train and test splits (``eval_particles`` draws each), in nats. ``figures=True`` also
    writes the loss curve, and for images a sample grid, a reconstruction grid and a scatter of
    the test set's latent means coloured by class.

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
    out = check_run_inputs(dataset, train)
    config = _vae_config_for(dataset, dict(model_overrides or {}))
    if train.seed is not None:
        pyro.set_rng_seed(train.seed)  # the initial weights follow the seed too
    vae = VAE(config)
    spec = {"name": "vae", "config": dataclasses.asdict(config), "data": dataset.name,
            "objective": objective, "k": k}
    engine = Engine(vae.model, vae.guide, build_objective(objective, k), config=train,
                    model_spec=spec)
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
        "objective": objective,
        "k": k,
        "epochs": train.epochs,
        "steps": len(history),
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
    files = write_run_files(out, metrics)
    if figures and is_main_process():
        files.update(_vae_figures(vae, dataset, history, out, device, objective, num_samples))
    return RunResult(out, files, metrics)


def _vae_figures(vae: VAE, dataset: Dataset, history: Any, out: Path, device: torch.device,
                 objective: str, num_samples: int) -> dict[str, Path]:
    config = vae.config
    files = {}
    bound = "negative IWAE bound" if objective == "iwae" else "negative ELBO"
    files["loss_curve"] = plot_history(history, out / "loss_curve.png",
                                       title=f"VAE on {dataset.name}: {bound}")
    shown = dataset.test[:2000].to(device)
    labels = dataset.test_labels[:2000] if dataset.test_labels is not None else None
    files["latents"] = plot_latents(
        vae.encode(shown)[0].detach(), out / "latents.png", labels=labels,
        title=f"{dataset.name} test set: posterior means (z_dim={config.z_dim})")
    if len(config.x_shape) == 3:
        files["samples"] = save_image_grid(vae.sample(num_samples).clamp(0, 1), out / "samples.png")
        # Rows alternate: eight test images, then their eight reconstructions.
        rows_of_8 = min(4, dataset.test.shape[0] // 8)
        images = dataset.test[: 8 * rows_of_8].to(device)
        recon = vae.reconstruct(images).clamp(0, 1)
        rows = torch.stack([images.unflatten(0, (rows_of_8, 8)),
                            recon.unflatten(0, (rows_of_8, 8))], dim=1)
        files["reconstructions"] = save_image_grid(rows.flatten(0, 2), out / "reconstructions.png")
    return files


def require_likelihood(model: torch.nn.Module, command: str) -> None:
    """Refuse models whose Pyro program has no normalized likelihood to estimate log p(x) from.

    Example:
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


def evaluate_checkpoint(checkpoint: str | Path, dataset: Dataset, *, split: str = "test",
                        k: int = 5000, batch_size: int = 100, seed: int = 0,
                        device: str = "auto", out: str | Path | None = None) -> RunResult:
    """Importance-sampled log p(x) (``k`` proposals from the guide) and the ELBO on a split.

    A diffusion model gets its exact variational bound instead
    (:func:`~ppdgm.inference.objectives.variational_bound`, ``batch_size`` points at a time;
    ``k`` is not used): ``log_px`` is then minus the bound, a lower bound on log p(x).

    Writes the metrics as JSON to ``out`` when given. See
    :func:`ppdgm.inference.evaluate.estimate_log_likelihood`.

    Example:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("bars-and-stripes")
        >>> run = tempfile.mkdtemp()
        >>> cfg = TrainConfig(epochs=1, batch_size=10, device="cpu", progress=False, out_dir=run)
        >>> _ = fit_vae(ds, cfg, model_overrides={"z_dim": 2, "hidden": (16,)})
        >>> m = evaluate_checkpoint(Path(run) / "checkpoint.pt", ds, k=20, device="cpu").metrics
        >>> m["elbo"] <= m["log_px"]
        True
    """
    model = load_trained_model(checkpoint, device)
    require_likelihood(model, "evaluate")
    x = dataset.split(split).to(resolve_device(device))
    expected = tuple(getattr(model.config, "x_shape", None) or (model.config.x_dim,))
    if math.prod(x.shape[1:]) != math.prod(expected):
        raise ValueError(
            f"dataset: {dataset.name!r} has points of shape {tuple(x.shape[1:])}, the checkpoint's "
            f"model expects {expected}"
        )
    x = x.reshape(x.shape[0], *expected)  # a mixture reads flattened images
    started = time.perf_counter()
    if isinstance(model, Diffusion):
        estimate = _diffusion_bound_metrics(model, x, batch_size, seed)
    else:
        estimate = estimate_log_likelihood(model.model, model.guide, x, num_samples=k,
                                           batch_size=batch_size, seed=seed).as_dict()
    metrics = {"checkpoint": str(checkpoint), "data": dataset.name, "split": split,
               **estimate, "seed": seed, "device": str(x.device),
               "seconds": round(time.perf_counter() - started, 3)}
    files = {}
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics, indent=2) + "\n")
        files["metrics"] = path
    return RunResult(Path(checkpoint).parent, files, metrics)


def _diffusion_bound_metrics(model: Diffusion, x: torch.Tensor, batch_size: int,
                             seed: int) -> dict[str, Any]:
    from .inference.objectives.denoising import DiffusionBound, variational_bound

    parts = [variational_bound(model, chunk, seed=seed + i)
             for i, chunk in enumerate(x.split(batch_size))]
    bound = DiffusionBound(*(torch.cat([getattr(p, f) for p in parts])
                             for f in ("prior", "steps", "decoder")), dims=parts[0].dims)
    summary = bound.summary()
    return {"bound": summary, "log_px": -summary["nats"], "log_px_stderr": summary["nats_stderr"],
            "nll": summary["nats"], "num_data": x.shape[0], "estimator": "variational bound"}


def checkpoint_data(checkpoint: str | Path) -> str | None:
    """The dataset name a ``ppdgm fit`` checkpoint was trained on, when it records one."""
    spec = load_checkpoint(checkpoint, map_location="cpu").get("model_spec") or {}
    return spec.get("data") if isinstance(spec, dict) else None


def _image_shape(checkpoint: str | Path, size: int) -> tuple[int, ...]:
    """(C, H, W) of the images a model over flat vectors of ``size`` was trained on."""
    spec = load_checkpoint(checkpoint, map_location="cpu").get("model_spec") or {}
    shape = spec.get("x_shape")
    if shape is None and spec.get("data"):
        from .data import load_dataset

        shape = load_dataset(spec["data"]).event_shape
    shape = tuple(int(d) for d in shape or ())
    if math.prod(shape) != size or len(shape) not in (2, 3):
        raise ValueError(f"checkpoint: the model draws vectors of {size} values and its record gives "
                         f"no image shape they fold into (got {shape or 'none'})")
    return shape if len(shape) == 3 else (1, *shape)


def sample_checkpoint(checkpoint: str | Path, out: str | Path, *, n: int = 64, seed: int = 0,
                      device: str = "auto", mean: bool = True, sampler: str = "ddpm",
                      steps: int | None = None, eta: float = 0.0) -> RunResult:
    """Draw ``n`` samples from a trained model and save them at ``out``.

    Images become a PNG grid, 2-D points a scatter plot. A diffusion model is sampled by
    ``sampler`` (``"ddpm"``, or ``"ddim"`` with ``steps`` and ``eta``); other models ignore those.
    """
    model = load_trained_model(checkpoint, device)
    pyro.set_rng_seed(seed)
    if isinstance(model, Diffusion):
        from .inference.sampling.diffusion import sample_diffusion

        images = sample_diffusion(model, n, sampler=sampler, steps=steps, eta=eta, seed=seed)
    else:
        images = model.sample(n, mean=mean)
    if images.dim() == 2 and images.shape[1] != 2:  # flattened images (RBMs, mixtures)
        images = images.reshape(n, *_image_shape(checkpoint, images.shape[1]))
    if images.dim() == 2 and images.shape[1] == 2:
        path = plot_latents(images, out, title=f"{n} samples")
    elif images.dim() != 4:
        raise ValueError(f"checkpoint: the model draws shape {tuple(images.shape[1:])}, "
                         "neither images nor 2-D points")
    else:
        path = save_image_grid(images.clamp(0, 1), out)
    metrics = {"n": n, "seed": seed, **({"sampler": sampler} if isinstance(model, Diffusion) else {})}
    return RunResult(Path(out).parent, {"samples": path}, metrics)
