"""``ppdgm compare``: train several generative models on one 2-D mixture and compare mode coverage.

Every contender is trained on the same ``ring8`` or ``grid25`` data with the same seed, draws
``num_samples`` points, and is scored by :func:`ppdgm.inference.coverage.coverage_for_dataset`
(modes captured, share of high-quality samples, reverse KL). The samples are honest generative
draws: a VAE's are x ~ p(x | z) with z ~ p(z), *including* the decoder's Gaussian noise, not the
decoder means, because that is the distribution the model defines and the one a GAN's samples are
compared with. (The coverage of the decoder means is kept in ``compare.json`` as a diagnostic.)

Contenders live in :data:`CONTENDERS`, a registry of name -> :class:`Contender`. A contender's
``fit(dataset, train, num_samples, **options)`` trains in ``train.out_dir`` with ``train.seed``
and returns a :class:`ContenderRun` (the samples and the training seconds). Any ``fit_*``
function of the ``ppdgm.recipes`` style (``fit(dataset, train, **kwargs) -> RunResult`` writing a
checkpoint that :func:`ppdgm.recipes.checkpoints.load_trained_model` reads back, on a model with
``sample(n, mean=...)``) becomes a contender through :func:`run_fit`, so a new model is one line,
e.g.::

    CONTENDERS["flow"] = Contender(run_fit("mypackage.flow:fit_flow"), "flow",
                                   lr=1e-3, batch_size=100, epochs=20)
"""

from __future__ import annotations

import importlib
import json
import math
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch

from .._files import atomic_write_text, make_folder
from .._validation import check_choice, check_positive_int
from ..data import Dataset, load_dataset
from ..data.synthetic import MIXTURES
from ..device import resolve_device
from ..diagnostics import plot_samples_over_density
from ..inference import TrainConfig
from ..inference.coverage import ModeCoverage, coverage_for_dataset
from .checkpoints import load_trained_model
from .gan import fit_gan
from .run import RunResult
from .vae import fit_vae

__all__ = [
    "CONTENDERS",
    "DEFAULT_MODELS",
    "PACGAN_HIDDEN",
    "Contender",
    "ContenderFit",
    "ContenderRun",
    "compare_models",
    "format_compare_table",
    "get_contender",
    "run_fit",
]

#: PacGAN's (Lin et al. 2018) generator for the 2-D mixtures: 4 hidden layers of 400 ReLU units.
#: :func:`~ppdgm.recipes.gan.fit_gan` gives the discriminator the same widths.
PACGAN_HIDDEN: tuple[int, ...] = (400, 400, 400, 400)

#: The contenders ``ppdgm compare`` trains when ``--models`` is not given.
DEFAULT_MODELS: tuple[str, ...] = ("vae", "gan", "gan-pack2")


@dataclass(frozen=True)
class ContenderRun:
    """What a contender hands back: ``samples`` (N, 2) on the CPU, its training time in seconds
    and steps (batches), ``extra_samples`` (name -> (N, 2): diagnostics such as a VAE's decoder
    means, scored but not plotted) and ``details`` (plain JSON values about the trained model)."""

    samples: torch.Tensor
    train_seconds: float
    steps: int | None = None
    extra_samples: dict[str, torch.Tensor] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


#: ``fit(dataset, train, num_samples, **options) -> ContenderRun``: train in ``train.out_dir``
#: (seeded by ``train.seed``), then draw ``num_samples`` points.
ContenderFit = Callable[..., ContenderRun]


@dataclass(frozen=True)
class Contender:
    """A registered model for :func:`compare_models`: how to train it and its default budget.

    ``lr``, ``batch_size`` and ``epochs`` fill the :class:`~ppdgm.inference.TrainConfig` unless
    the caller overrides ``epochs``; ``label`` names the model in tables and figures.

    Examples:
        >>> get_contender("gan-pack2").batch_size  # 100 groups of 2 points per step
        200
    """

    fit: ContenderFit
    label: str
    lr: float
    batch_size: int
    epochs: int
    description: str = ""


def run_fit(target: str | Callable[..., RunResult], *, sample_mean: bool = False,
            num_samples_kw: str | None = None, **defaults: Any) -> ContenderFit:
    """Make a contender's ``fit`` from a ``fit_*(dataset, train, **kwargs) -> RunResult``.

    ``target`` is the function or ``"module:function"``, imported on first use (so a module that
    is still being written does not break the registry's import). ``defaults`` are keyword
    arguments for it, which a caller's ``options`` override. After training, the model is read
    back from the run's checkpoint with :func:`ppdgm.recipes.checkpoints.load_trained_model`, the RNGs are
    seeded with ``train.seed`` and ``model.sample(num_samples, mean=sample_mean)`` is drawn.
    ``num_samples_kw`` names the fit function's own sample-count argument, if it has one, so its
    ``metrics.json`` counts the same number of samples.

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> fit = run_fit("ppdgm.recipes.gan:fit_gan", hidden=(8,))
        >>> cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> fit(load_dataset("ring8", num_train=64, num_test=8), cfg, 10).samples.shape
        torch.Size([10, 2])
    """
    if not (callable(target) or (isinstance(target, str) and target.count(":") == 1)):
        raise TypeError(f"target: expected a function or 'module:function', got {target!r}")

    def fit(dataset: Dataset, train: TrainConfig, num_samples: int, **options: Any) -> ContenderRun:
        fn = _resolve(target)
        kwargs = {**defaults, **options}
        if num_samples_kw is not None:
            kwargs[num_samples_kw] = num_samples
        result = fn(dataset, train, **kwargs)
        model = load_trained_model(result.files["checkpoint"], device=train.device)
        samples = _draw(model, num_samples, train.seed, mean=sample_mean)
        m = result.metrics
        return ContenderRun(samples, float(m.get("train_seconds", math.nan)), m.get("steps"),
                            details={"run_dir": str(result.out_dir)})

    fit.__name__ = f"run_fit({target if isinstance(target, str) else target.__name__})"
    return fit


def _resolve(target: str | Callable[..., RunResult]) -> Callable[..., RunResult]:
    if callable(target):
        return target
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _draw(model: torch.nn.Module, n: int, seed: int | None, *, mean: bool) -> torch.Tensor:
    if seed is not None:
        pyro.set_rng_seed(seed)
    return model.sample(n, mean=mean).detach().reshape(n, -1).cpu()


def _fit_vae_contender(dataset: Dataset, train: TrainConfig, num_samples: int, *, z_dim: int = 2,
                       hidden: tuple[int, ...] = (128, 128), activation: str = "relu",
                       objective: str = "elbo", k: int = 1,
                       obs_scale: float | None = None) -> ContenderRun:
    """A Gaussian-likelihood VAE (std per dimension learned unless ``obs_scale`` fixes it)."""
    overrides = {"z_dim": z_dim, "hidden": tuple(hidden), "activation": activation,
                 "likelihood": "gaussian", "obs_scale": obs_scale}
    result = fit_vae(dataset, train, model_overrides=overrides, objective=objective, k=k)
    vae = load_trained_model(result.files["checkpoint"], device=train.device)
    # The same seed gives the same z for both: the means are the draws without the noise.
    draws = _draw(vae, num_samples, train.seed, mean=False)
    means = _draw(vae, num_samples, train.seed, mean=True)
    m = result.metrics
    details = {"run_dir": str(result.out_dir), "z_dim": z_dim, "hidden": list(hidden),
               "obs_scale": [float(v) for v in vae.obs_scale.detach().reshape(-1).tolist()],
               "test_elbo_nats": m["test_elbo_nats"]["mean"]}
    return ContenderRun(draws, float(m["train_seconds"]), m["steps"], {"decoder means": means},
                        details)


#: name -> :class:`Contender`. ``compare_models(models=...)`` picks from these.
CONTENDERS: dict[str, Contender] = {
    "vae": Contender(_fit_vae_contender, "VAE", lr=1e-3, batch_size=100, epochs=20,
                     description="Gaussian VAE, z_dim 2, MLP 128-128; samples x ~ p(x|z), noise "
                                 "included"),
    "gan": Contender(run_fit(fit_gan, loss="non-saturating", z_dim=2, hidden=PACGAN_HIDDEN,
                             num_samples_kw="num_samples"),
                     "GAN", lr=1e-4, batch_size=100, epochs=20,
                     description="non-saturating GAN, z_dim 2, G and D MLPs 4x400 ReLU"),
    "gan-pack2": Contender(run_fit(fit_gan, loss="non-saturating", z_dim=2, hidden=PACGAN_HIDDEN,
                                   pack=2, num_samples_kw="num_samples"),
                           "PacGAN2", lr=1e-4, batch_size=200, epochs=20,
                           description="the same GAN, discriminator judging pairs (PacGAN, m=2); "
                                       "100 pairs per step"),
    "gan-pack4": Contender(run_fit(fit_gan, loss="non-saturating", z_dim=2, hidden=PACGAN_HIDDEN,
                                   pack=4, num_samples_kw="num_samples"),
                           "PacGAN4", lr=1e-4, batch_size=400, epochs=20,
                           description="the same GAN, discriminator judging groups of 4 (PacGAN, "
                                       "m=4); 100 groups per step"),
}
CONTENDERS["vae-gan"] = Contender(run_fit("ppdgm.recipes.vaegan:fit_vaegan", z_dim=2,
                                          num_samples_kw="num_samples"),
                                  "VAE-GAN", lr=1e-4, batch_size=100, epochs=20,
                                  description="VAE-GAN (Larsen et al. 2016), z_dim 2")
CONTENDERS["diffusion"] = Contender(run_fit("ppdgm.recipes.diffusion:fit_diffusion", sample_mean=True,
                                            num_samples_kw="num_samples", bound_points=200),
                                    "Diffusion", lr=1e-3, batch_size=100, epochs=20,
                                    description="DDPM, T=1000 linear schedule, eps-prediction MLP "
                                                "3x256 SiLU on 8 octaves of Fourier features; "
                                                "DDPM samples")


def get_contender(name: str) -> Contender:
    """The registered contender ``name``; a clear ``ValueError`` names the known ones.

    Examples:
        >>> get_contender("vae").label
        'VAE'
        >>> get_contender("flow")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: models: unknown model 'flow'; expected some of 'vae', 'gan', 'gan-pack2'...
    """
    if not isinstance(name, str) or name not in CONTENDERS:
        raise ValueError(f"models: unknown model {name!r}; expected some of "
                         f"{', '.join(map(repr, CONTENDERS))}")
    return CONTENDERS[name]


def _per_model(name: str, value: int | Mapping[str, int] | None, models: Sequence[str]
               ) -> dict[str, int | None]:
    if value is None or isinstance(value, int):
        if value is not None:
            check_positive_int(name, value)
        return dict.fromkeys(models, value)
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}: expected an int, a mapping of model -> int or None, "
                        f"got {type(value).__name__}")
    unknown = sorted(set(value) - set(models))
    if unknown:
        raise ValueError(f"{name}: models {unknown} are not among those compared {list(models)}")
    for model, v in value.items():
        check_positive_int(f"{name}[{model!r}]", v)
    return {m: value.get(m) for m in models}



def compare_models(
    dataset_name: str = "ring8",
    out_dir: str | Path = "runs/compare",
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    epochs: int | Mapping[str, int] | None = None,
    max_steps: int | Mapping[str, int] | None = None,
    seed: int = 0,
    num_samples: int = 2500,
    num_train: int | None = None,
    device: str = "auto",
    options: Mapping[str, Mapping[str, Any]] | None = None,
    figure: bool = True,
    progress: bool | None = False,
) -> RunResult:
    """Train each of ``models`` on ``dataset_name`` and score ``num_samples`` draws of each.

    ``dataset_name`` is ``"ring8"`` or ``"grid25"``; its training set (``num_train`` points,
    default 50,000) is drawn with ``seed``, and every model is initialized, trained and sampled
    with ``seed`` too. ``epochs`` and ``max_steps`` are one number for all or a mapping of
    model -> number; a model left out takes its contender's default epochs (and no step
    limit). ``options`` maps a model to keyword arguments for its contender's ``fit`` (e.g.
    ``{"gan": {"hidden": (128, 128)}}``). Each model's run (checkpoint, history, metrics) goes
    to ``out_dir/<model>``; ``out_dir/compare.json`` holds every model's coverage, budget and
    time, and ``out_dir/compare.png`` (``figure=True``) every model's samples side by side over
    the true density. Nothing is printed: :func:`format_compare_table` renders the table.

    Examples:
        >>> import tempfile
        >>> r = compare_models("ring8", tempfile.mkdtemp(), models=["gan"], max_steps=2,
        ...                    num_train=200, num_samples=50, device="cpu", figure=False,
        ...                    options={"gan": {"hidden": (8,)}})
        >>> row = r.metrics["models"]["gan"]
        >>> row["num_modes"], row["num_samples"], row["steps"], sorted(r.files)
        (8, 50, 2, ['compare', 'gan'])
    """
    check_choice("dataset_name", dataset_name, list(MIXTURES))
    if isinstance(models, str) or not isinstance(models, Sequence) or not models:
        raise ValueError(f"models: expected a non-empty sequence of model names, got {models!r}")
    models = list(models)
    contenders = {name: get_contender(name) for name in models}
    if len(set(models)) != len(models):
        raise ValueError(f"models: expected distinct names, got {models}")
    epochs_by = _per_model("epochs", epochs, models)
    steps_by = _per_model("max_steps", max_steps, models)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    check_positive_int("num_samples", num_samples)
    if num_train is not None:
        check_positive_int("num_train", num_train)
    options = dict(options or {})
    unknown = sorted(set(options) - set(models))
    if unknown:
        raise ValueError(f"options: models {unknown} are not among those compared {models}")
    target = resolve_device(device)  # fail on a bad device before any training

    out = make_folder("out_dir", out_dir)
    dataset = load_dataset(dataset_name, seed=seed, num_train=num_train)
    rows: dict[str, dict[str, Any]] = {}
    samples: dict[str, torch.Tensor] = {}
    coverage: dict[str, ModeCoverage] = {}
    files: dict[str, Path] = {}
    for name, contender in contenders.items():
        run_dir = out / name
        train = TrainConfig(epochs=epochs_by[name] or contender.epochs,
                            batch_size=contender.batch_size, lr=contender.lr, seed=seed,
                            device=str(target), out_dir=str(run_dir), max_steps=steps_by[name],
                            progress=progress)
        started = time.perf_counter()
        run = contender.fit(dataset, train, num_samples, **dict(options.get(name, {})))
        wall = time.perf_counter() - started
        coverage[name] = coverage_for_dataset(run.samples, dataset_name)
        samples[name] = run.samples
        rows[name] = {
            "label": contender.label, "description": contender.description,
            **coverage[name].as_json(),
            "train_seconds": round(run.train_seconds, 3), "wall_seconds": round(wall, 3),
            "epochs": train.epochs, "max_steps": train.max_steps,
            "steps": run.steps,
            "batch_size": train.batch_size, "lr": train.lr,
            "options": {k: list(v) if isinstance(v, tuple) else v
                        for k, v in options.get(name, {}).items()},
            "extra_samples": {k: coverage_for_dataset(v, dataset_name).as_json()
                              for k, v in run.extra_samples.items()},
            "details": run.details,
        }
        files[name] = run_dir
    metrics: dict[str, Any] = {
        "data": dataset_name, "num_train": int(dataset.train.shape[0]), "seed": seed,
        "num_samples": num_samples, "device": str(target),
        "high_quality_radius": f"3 std = {3 * MIXTURES[dataset_name]:g}",
        "samples": "honest generative draws (a VAE's include its observation noise)",
        "models": rows,
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__,
                     "python": platform.python_version()},
    }
    files["compare"] = out / "compare.json"
    atomic_write_text(files["compare"], json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    if figure:
        labels = {name: contenders[name].label for name in models}
        files["figure"] = plot_samples_over_density(
            {labels[n]: samples[n] for n in models}, dataset.centres, dataset.scale,
            out / "compare.png", title=f"{dataset_name}: {num_samples} samples per model, seed {seed}",
            coverage={labels[n]: coverage[n] for n in models})
    return RunResult(out, files, metrics)


def format_compare_table(metrics: Mapping[str, Any]) -> str:
    """The comparison as a fixed-width table: one row per model of ``compare.json``'s metrics.

    Examples:
        >>> row = {"label": "GAN", "modes_captured": 7, "num_modes": 8,
        ...        "high_quality_percent": 98.25, "reverse_kl": 0.0312, "train_seconds": 12.5,
        ...        "extra_samples": {}}
        >>> print(format_compare_table({"data": "ring8", "num_samples": 2500, "models": {"gan": row}}))
        ring8, 2500 samples per model
        model      modes captured  high quality  reverse KL  train s
        gan                   7/8        98.2 %      0.0312     12.5
    """
    if not isinstance(metrics, Mapping) or not isinstance(metrics.get("models"), Mapping):
        raise TypeError("metrics: expected compare_models(...).metrics, a mapping with 'models'")
    lines = [f"{metrics.get('data', '?')}, {metrics.get('num_samples', '?')} samples per model",
             f"{'model':<10} {'modes captured':>14} {'high quality':>13} {'reverse KL':>11} "
             f"{'train s':>8}"]
    notes = []
    for name, r in metrics["models"].items():
        kl = "undefined" if r["reverse_kl"] is None else f"{r['reverse_kl']:.4f}"
        modes = f"{r['modes_captured']}/{r['num_modes']}"
        lines.append(f"{name:<10} {modes:>14} {r['high_quality_percent']:>11.1f} % {kl:>11} "
                     f"{r['train_seconds']:>8.1f}")
        for what, c in r.get("extra_samples", {}).items():
            notes.append(f"  ({name}, {what} instead of draws: {c['modes_captured']}/"
                         f"{c['num_modes']} modes, {c['high_quality_percent']:.1f} % high quality)")
    return "\n".join(lines + notes)
