"""``ppdgm fit vae-gan``: train a VAE-GAN (Larsen et al. 2016) with three players on the engine."""

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
from .data.synthetic import MIXTURES, mixture_centres
from .diagnostics import plot_history, plot_latents, plot_samples_over_density, save_image_grid
from .inference import Engine, Player, TrainConfig, adam
from .inference.coverage import ModeCoverage, coverage_for_dataset
from .inference.distributed import is_main_process
from .inference.objectives.adversarial import ADVERSARIAL_LOSSES
from .inference.objectives.vaegan import VAEGAN_PLAYERS, VAEGANLoss
from .models.vaegan import ARCHS, VAEGAN, VAEGANConfig
from .runs import RunResult, check_run_inputs, write_run_files
from .runs_gan import GAN_BETAS, means_as_per_example

__all__ = ["fit_vaegan"]

# Test points whose reconstruction error metrics.json reports (the first ones of the split).
_RECONSTRUCTION_POINTS = 1000


def fit_vaegan(dataset: Dataset, train: TrainConfig, *, loss: str = "non-saturating",
               gamma: float = 1.0, z_dim: int | None = None, hidden: tuple[int, ...] = (128, 128),
               discriminator_hidden: tuple[int, ...] | None = None, arch: str = "mlp",
               activation: str = "relu", feature_layer: int = -1, gp_weight: float = 10.0,
               lr_discriminator: float | None = None, figures: bool = False,
               num_samples: int = 1000) -> RunResult:
    """Train a :class:`~ppdgm.models.VAEGAN` on ``dataset`` with the engine, then write metrics.

    Three players take turns on every batch, each on a fresh evaluation of
    :class:`~ppdgm.inference.objectives.VAEGANLoss` (``loss`` its GAN terms, ``gamma`` its
    decoder's reconstruction weight): ``"discriminator"`` (Adam at ``lr_discriminator`` or
    ``train.lr``), then ``"encoder"`` and ``"decoder"`` (Adam at ``train.lr``), all with betas
    (0.5, 0.999) as :func:`~ppdgm.runs_gan.fit_gan` uses. Each owns its network's parameters
    (:meth:`VAEGAN.owns <ppdgm.models.VAEGAN.owns>`). ``z_dim=None`` means 2 for vector data and
    64 for images; ``feature_layer`` picks Dis_l among the discriminator's hidden layers.

    ``metrics.json`` holds the run's steps and time, each player's loss averaged over the steps
    of the last epoch (``final_loss``; batch means, see
    :mod:`ppdgm.inference.objectives.vaegan`), the mean squared data-space error of the
    reconstructions of up to 1000 test points, and for ``ring8`` and ``grid25`` the mode coverage
    of ``num_samples`` prior samples and of as many reconstructions of training points (a
    reverse KL left undefined by no high-quality sample is written as null). ``figures=True``
    adds the loss curves and the samples and reconstructions: over the true density for the
    mixtures, as a scatter for other 2-D data and as image grids (the first 64) for images.

    Example:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("ring8", num_train=64, num_test=16)
        >>> cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> m = fit_vaegan(ds, cfg, hidden=(16,), num_samples=50).metrics
        >>> m["steps"], sorted(m["final_loss"]), m["mode_coverage"]["num_samples"]
        (2, ['decoder', 'discriminator', 'encoder'], 50)
    """
    out = check_run_inputs(dataset, train)
    check_choice("loss", loss, tuple(ADVERSARIAL_LOSSES))
    check_choice("arch", arch, ARCHS)
    check_positive_int("num_samples", num_samples)
    if lr_discriminator is not None and (
        isinstance(lr_discriminator, bool) or not isinstance(lr_discriminator, (int, float))
        or not lr_discriminator > 0
    ):
        raise ValueError(f"lr_discriminator: expected a positive number or None, got {lr_discriminator!r}")
    objective = VAEGANLoss(loss, gamma=gamma, gp_weight=gp_weight)  # checks gamma and gp_weight
    x_shape = tuple(dataset.event_shape)
    if z_dim is None:
        z_dim = 2 if len(x_shape) == 1 else 64
    config = VAEGANConfig(
        x_shape=x_shape, z_dim=z_dim, arch=arch, hidden=tuple(hidden), activation=activation,
        discriminator_hidden=None if discriminator_hidden is None else tuple(discriminator_hidden),
        feature_layer=feature_layer)
    config.validate()  # before seeding and building: a bad argument fails fast, naming itself
    if train.seed is not None:
        pyro.set_rng_seed(train.seed)  # the initial weights follow the seed too
    model = VAEGAN(config)
    lr_d = train.lr if lr_discriminator is None else float(lr_discriminator)
    players = [Player("discriminator", owns=VAEGAN.owns("discriminator"),
                      optimizer=adam(lr_d, betas=GAN_BETAS))]
    players += [Player(name, owns=VAEGAN.owns(name), optimizer=adam(train.lr, betas=GAN_BETAS))
                for name in ("encoder", "decoder")]
    spec = {"name": "vae-gan", "config": dataclasses.asdict(config), "data": dataset.name,
            "loss": loss, "gamma": objective.gamma}
    engine = Engine(model.model, model.guide, objective, players, train, model_spec=spec)
    started = time.perf_counter()
    history = engine.fit(dataset.train)
    seconds = time.perf_counter() - started
    steps = history.to_frame("steps")
    per_player = steps["player"].value_counts()
    counts = {name: int(per_player.get(name, 0)) for name in VAEGAN_PLAYERS}
    # The last epoch's steps, complete or not (max_steps may stop a run mid-epoch).
    last = steps[steps["epoch"] == steps["epoch"].max()]
    final = {str(k): float(v) for k, v in last.groupby("player")["loss"].mean().items()}
    metrics: dict[str, Any] = {
        "model": "vae-gan", "data": dataset.name, "arch": arch, "z_dim": z_dim, "loss": loss,
        "gamma": objective.gamma, "feature_layer": feature_layer,
        "feature_dim": model.feature_dim, "lr": train.lr, "lr_discriminator": lr_d,
        "epochs": train.epochs, "steps": counts["discriminator"],  # every player steps per batch
        "player_steps": counts, "batch_size": train.batch_size, "seed": train.seed,
        "device": str(engine.device), "train_seconds": round(seconds, 3),
        "final_loss": final,  # each player's loss (a batch mean) averaged over the last epoch
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__,
                     "python": platform.python_version()},
    }
    if loss == "wasserstein-gp":
        metrics["gp_weight"] = objective.gp_weight
    device = engine.device
    test = dataset.test[:_RECONSTRUCTION_POINTS].to(device)
    if test.shape[0]:
        error = (model.reconstruct(test) - test).square().reshape(test.shape[0], -1).sum(-1)
        metrics["test_reconstruction_mse"] = float(error.mean())  # squared norm per point
    model.eval()  # batch norm (DCGAN) samples with its running statistics
    samples = model.sample(num_samples)
    recon = model.reconstruct(dataset.train[:num_samples].to(device))
    coverage: dict[str, ModeCoverage] = {}
    if dataset.name in MIXTURES and len(x_shape) == 1:
        coverage = {"samples": coverage_for_dataset(samples.reshape(num_samples, -1), dataset.name),
                    "reconstructions": coverage_for_dataset(recon.reshape(recon.shape[0], -1),
                                                            dataset.name)}
        metrics["mode_coverage"] = coverage["samples"].as_json()
        metrics["reconstruction_mode_coverage"] = coverage["reconstructions"].as_json()
    files = write_run_files(out, metrics, allow_nan=False)
    if figures and is_main_process():
        title = f"VAE-GAN ({arch}, {loss}, gamma={objective.gamma:g}) on {dataset.name}"
        files["loss_curve"] = plot_history(means_as_per_example(history), out / "loss_curve.png",
                                           title=f"{title}: loss per step (batch mean)")
        files.update(_figures(samples, recon, dataset, out, title, coverage))
    return RunResult(out, files, metrics)


def _figures(samples: torch.Tensor, recon: torch.Tensor, dataset: Dataset, out: Path, title: str,
             coverage: dict[str, ModeCoverage]) -> dict[str, Path]:
    if samples.dim() == 4:
        # A DCGAN decoder's sigmoid outputs are in (0, 1); an MLP's are not, clamped for display.
        return {"samples": save_image_grid(samples[:64].clamp(0, 1), out / "samples.png"),
                "reconstructions": save_image_grid(recon[:64].clamp(0, 1),
                                                   out / "reconstructions.png")}
    flat = {"samples": samples.reshape(samples.shape[0], -1),
            "reconstructions": recon.reshape(recon.shape[0], -1)}
    if flat["samples"].shape[1] != 2:
        return {}
    if coverage:
        path = plot_samples_over_density(flat, mixture_centres(dataset.name), MIXTURES[dataset.name],
                                         out / "samples.png", title=title, coverage=coverage)
        return {"samples": path}
    return {"samples": plot_latents(flat["samples"], out / "samples.png",
                                    title=f"{title}: samples")}
