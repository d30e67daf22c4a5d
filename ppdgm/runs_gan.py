"""``ppdgm fit gan``: train a GAN (generator = Pyro model, discriminator = guide) with two players."""

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
from .inference import Engine, History, Player, TrainConfig, adam
from .inference.coverage import ModeCoverage, dataset_coverage
from .inference.distributed import is_main_process
from .inference.objectives.adversarial import ADVERSARIAL_LOSSES, AdversarialLoss
from .models.gan import ARCHS, GAN, GANConfig
from .runs import RunResult, check_run_inputs, write_run_files

__all__ = ["fit_gan", "GAN_BETAS", "means_as_per_example"]

#: Adam's betas for both players, as in DCGAN (Radford et al. 2016).
GAN_BETAS = (0.5, 0.999)


def fit_gan(dataset: Dataset, train: TrainConfig, *, loss: str = "non-saturating",
            z_dim: int | None = None, hidden: tuple[int, ...] = (128, 128), arch: str = "mlp",
            activation: str = "relu", critic_steps: int = 1, pack: int = 1, gp_weight: float = 10.0,
            lr_discriminator: float | None = None, figures: bool = False,
            num_samples: int = 1000) -> RunResult:
    """Train a :class:`~ppdgm.models.GAN` on ``dataset`` with the engine, then write metrics.

    Two players take turns on every batch: ``"discriminator"`` (the guide's parameters, Adam at
    ``lr_discriminator`` or ``train.lr``) and then ``"generator"`` (the model's, Adam at
    ``train.lr``), both with betas (0.5, 0.999). The generator steps on every ``critic_steps``-th
    batch only, so the discriminator takes ``critic_steps`` steps per generator step, each on a
    fresh batch (5 is WGAN-GP's choice). ``loss`` is one of
    :data:`~ppdgm.inference.objectives.adversarial.ADVERSARIAL_LOSSES`; ``pack`` is PacGAN's m
    and must divide ``train.batch_size``. ``z_dim=None`` means 2 for vector data and 64 for
    images.

    ``metrics.json`` holds the run's steps and time and each player's loss averaged over the
    steps of the last epoch (``final_loss``; each loss is a batch mean, see
    :mod:`ppdgm.inference.objectives.adversarial`); for data with known mixture centres
    (``ring8``, ``grid25``) it also holds the mode coverage of ``num_samples`` generated points
    (a reverse KL left undefined by no high-quality sample is written as null).
    ``figures=True`` adds the loss curves and the samples: scattered over the true density for
    mixtures, as a scatter for other 2-D data and as an image grid (the first 64) for images.

    Example:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("ring8", num_train=64, num_test=16)
        >>> cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> m = fit_gan(ds, cfg, hidden=(16,), num_samples=50).metrics
        >>> m["discriminator_steps"], m["generator_steps"], sorted(m["final_loss"])
        (2, 2, ['discriminator', 'generator'])
    """
    out = check_run_inputs(dataset, train)
    check_choice("loss", loss, tuple(ADVERSARIAL_LOSSES))
    check_choice("arch", arch, ARCHS)
    check_positive_int("critic_steps", critic_steps)
    check_positive_int("pack", pack)
    check_positive_int("num_samples", num_samples)
    if train.batch_size % pack:
        raise ValueError(
            f"pack: the discriminator judges groups of {pack} points, so the batch size must be a "
            f"multiple of it; got batch_size={train.batch_size}, pack={pack}"
        )
    if lr_discriminator is not None and (
        isinstance(lr_discriminator, bool) or not isinstance(lr_discriminator, (int, float))
        or not lr_discriminator > 0
    ):
        raise ValueError(f"lr_discriminator: expected a positive number or None, got {lr_discriminator!r}")
    x_shape = tuple(dataset.event_shape)
    if z_dim is None:
        z_dim = 2 if len(x_shape) == 1 else 64
    config = GANConfig(x_shape=x_shape, z_dim=z_dim, arch=arch, hidden=tuple(hidden),
                       activation=activation, pack=pack)
    objective = AdversarialLoss(loss, gp_weight=gp_weight, pack=pack)
    if train.seed is not None:
        pyro.set_rng_seed(train.seed)  # the initial weights follow the seed too
    gan = GAN(config)
    lr_d = train.lr if lr_discriminator is None else float(lr_discriminator)
    players = [
        Player("discriminator", owns="guide", optimizer=adam(lr_d, betas=GAN_BETAS)),
        Player("generator", owns="model", every=critic_steps, optimizer=adam(train.lr, betas=GAN_BETAS)),
    ]
    spec = {"name": "gan", "config": dataclasses.asdict(config), "data": dataset.name,
            "loss": loss, "critic_steps": critic_steps}
    engine = Engine(gan.model, gan.guide, objective, players, train, model_spec=spec)
    started = time.perf_counter()
    history = engine.fit(dataset.train)
    seconds = time.perf_counter() - started
    steps = history.to_frame("steps")
    per_player = steps["player"].value_counts()
    counts = {name: int(per_player.get(name, 0)) for name in AdversarialLoss.player_names}
    # The last epoch's steps, complete or not (max_steps may stop a run mid-epoch).
    last = steps[steps["epoch"] == steps["epoch"].max()]
    final = {str(k): float(v) for k, v in last.groupby("player")["loss"].mean().items()}
    metrics: dict[str, Any] = {
        "model": "gan", "data": dataset.name, "arch": arch, "z_dim": z_dim, "loss": loss,
        "critic_steps": critic_steps, "pack": pack, "lr": train.lr, "lr_discriminator": lr_d,
        "epochs": train.epochs, "steps": counts["discriminator"],  # it steps on every batch
        "discriminator_steps": counts["discriminator"], "generator_steps": counts["generator"],
        "batch_size": train.batch_size, "seed": train.seed, "device": str(engine.device),
        "train_seconds": round(seconds, 3),
        "final_loss": final,  # each player's loss (a batch mean) averaged over the last epoch
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__,
                     "python": platform.python_version()},
    }
    if loss == "wasserstein-gp":
        metrics["gp_weight"] = objective.gp_weight
    gan.eval()  # batch norm (DCGAN) samples with its running statistics
    samples = gan.sample(num_samples)
    coverage = dataset_coverage(samples, dataset)
    if coverage is not None:
        metrics["mode_coverage"] = coverage.as_json()
    files = write_run_files(out, metrics, allow_nan=False)
    if figures and is_main_process():
        title = f"GAN ({arch}, {loss}) on {dataset.name}"
        files["loss_curve"] = plot_history(means_as_per_example(history), out / "loss_curve.png",
                                           title=f"{title}: loss per step (batch mean)")
        files.update(_sample_figure(samples, dataset, out, title, coverage))
    return RunResult(out, files, metrics)


def means_as_per_example(history: History) -> History:
    # plot_history shows loss / batch_size, right for Pyro's summed ELBOs; the adversarial losses
    # are batch means already, so the copy it is given holds mean * batch_size.
    steps = [{**row, "loss": row["loss"] * row["batch_size"]} for row in history.steps]
    epochs = [{**row, "loss_per_example": row["loss_mean"]} for row in history.epochs]
    return History(steps=steps, epochs=epochs)


def _sample_figure(samples: torch.Tensor, dataset: Dataset, out: Path, title: str,
                   coverage: ModeCoverage | None) -> dict[str, Path]:
    if samples.dim() == 4:
        # Sigmoid outputs are in (0, 1) already; an MLP generator's are not, and are clamped
        # for display only.
        return {"samples": save_image_grid(samples[:64].clamp(0, 1), out / "samples.png")}
    flat = samples.reshape(samples.shape[0], -1)
    if flat.shape[1] != 2:
        return {}
    if dataset.centres is not None and dataset.scale is not None:
        path = plot_samples_over_density({"GAN": flat}, dataset.centres, dataset.scale,
                                         out / "samples.png", title=title,
                                         coverage={"GAN": coverage} if coverage is not None else None)
        return {"samples": path}
    return {"samples": plot_latents(flat, out / "samples.png", title=f"{title}: samples")}
