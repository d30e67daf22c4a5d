"""``ppdgm fit gan``: a GAN whose generator is the Pyro model and discriminator the guide q(y | x)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._validation import check_choice, check_positive_int
from ..data import Dataset
from ..diagnostics import plot_history
from ..inference import Engine, History, Player, TrainConfig, adam
from ..inference.coverage import dataset_coverage
from ..inference.objectives.adversarial import ADVERSARIAL_LOSSES, AdversarialLoss
from ..models.gan import ARCHS, GAN, GANConfig
from ..models.nets import ACTIVATIONS
from .base import Recipe, hidden_widths, train_config
from .run import RunResult, check_optional_lr, check_run_inputs, finish_run, sample_figure, train_with_engine

__all__ = ["GANRecipe", "GAN_BETAS", "add_adversarial_flags", "coverage_text", "fit_gan",
           "means_as_per_example", "player_summary"]

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

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("ring8", num_train=64, num_test=16)
        >>> cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> m = fit_gan(ds, cfg, hidden=(16,), num_samples=50).metrics
        >>> m["discriminator_steps"], m["generator_steps"], sorted(m["final_loss"])
        (2, 2, ['discriminator', 'generator'])
    """
    check_run_inputs(dataset, train)
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
    lr_d = check_optional_lr("lr_discriminator", lr_discriminator) or train.lr
    x_shape = tuple(dataset.event_shape)
    if z_dim is None:
        z_dim = 2 if len(x_shape) == 1 else 64
    config = GANConfig(x_shape=x_shape, z_dim=z_dim, arch=arch, hidden=tuple(hidden),
                       activation=activation, pack=pack)
    objective = AdversarialLoss(loss, gp_weight=gp_weight, pack=pack)
    players = [
        Player("discriminator", owns="guide", optimizer=adam(lr_d, betas=GAN_BETAS)),
        Player("generator", owns="model", every=critic_steps, optimizer=adam(train.lr, betas=GAN_BETAS)),
    ]
    spec = {"name": "gan", "config": dataclasses.asdict(config), "data": dataset.name,
            "loss": loss, "critic_steps": critic_steps}
    run = train_with_engine(dataset, train, lambda: GAN(config), lambda gan: Engine(
        gan.model, gan.guide, objective, players, train, model_spec=spec))
    gan = run.model
    counts, final = player_summary(run.history, AdversarialLoss.player_names)
    metrics: dict[str, Any] = {
        "model": "gan", "data": dataset.name, "arch": arch, "z_dim": z_dim, "loss": loss,
        "critic_steps": critic_steps, "pack": pack, **run.run_metrics(train),
        "lr_discriminator": lr_d,
        "steps": counts["discriminator"],  # it steps on every batch
        "discriminator_steps": counts["discriminator"], "generator_steps": counts["generator"],
        "final_loss": final,  # each player's loss (a batch mean) averaged over the last epoch
    }
    if loss == "wasserstein-gp":
        metrics["gp_weight"] = objective.gp_weight
    gan.eval()  # batch norm (DCGAN) samples with its running statistics
    samples = gan.sample(num_samples)
    coverage = dataset_coverage(samples, dataset)
    if coverage is not None:
        metrics["mode_coverage"] = coverage.as_json()

    def draw_figures() -> dict[str, Path]:
        title = f"GAN ({arch}, {loss}) on {dataset.name}"
        files = {"loss_curve": plot_history(means_as_per_example(run.history),
                                            run.out / "loss_curve.png",
                                            title=f"{title}: loss per step (batch mean)")}
        picture = sample_figure({"GAN": samples}, dataset, run.out / "samples.png", title,
                                {"GAN": coverage} if coverage is not None else None)
        return files | ({"samples": picture} if picture is not None else {})

    return finish_run(run.out, metrics, figures=figures, draw_figures=draw_figures,
                      allow_nan=False)


def player_summary(history: History, names: Sequence[str]) -> tuple[dict[str, int], dict[str, float]]:
    """Each player's step count, and its loss averaged over the last epoch's steps (complete
    or not: ``max_steps`` may stop a run mid-epoch)."""
    steps = history.to_frame("steps")
    per_player = steps["player"].value_counts()
    counts = {name: int(per_player.get(name, 0)) for name in names}
    last = steps[steps["epoch"] == steps["epoch"].max()]
    final = {str(k): float(v) for k, v in last.groupby("player")["loss"].mean().items()}
    return counts, final


def means_as_per_example(history: History) -> History:
    # plot_history shows loss / batch_size, right for Pyro's summed ELBOs; the adversarial losses
    # are batch means already, so the copy it is given holds mean * batch_size.
    steps = [{**row, "loss": row["loss"] * row["batch_size"]} for row in history.steps]
    epochs = [{**row, "loss_per_example": row["loss_mean"]} for row in history.epochs]
    return History(steps=steps, epochs=epochs)


def coverage_text(coverage: dict[str, Any]) -> str:
    """``"8/8 modes, 97.4% high-quality"`` from a mode-coverage record."""
    return (f"{coverage['modes_captured']}/{coverage['num_modes']} modes, "
            f"{coverage['high_quality_percent']:.1f}% high-quality")


def add_adversarial_flags(p: argparse.ArgumentParser) -> None:
    """The flags a GAN and a VAE-GAN share: penalty, latent size, architecture, the
    discriminator's learning rate and the samples scored."""
    p.add_argument("--gp-weight", type=float, default=10.0, help="wasserstein-gp's penalty weight")
    p.add_argument("--z-dim", type=int, default=None, help="default: 2 for 2-D data, 64 for images")
    p.add_argument("--arch", choices=["mlp", "dcgan"], default="mlp")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default="relu")
    p.add_argument("--lr-discriminator", type=float, default=None, help="default: --lr")
    p.add_argument("--num-samples", type=int, default=1000,
                   help="generated points for mode coverage and the sample figure")


class GANRecipe(Recipe):
    name = "gan"
    help = "GAN: generator = Pyro model, discriminator = guide q(y | x)"
    epochs = 20
    models = {"gan": (GAN, GANConfig)}
    defaults = {"lr": 2e-4}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--loss", choices=list(ADVERSARIAL_LOSSES), default="non-saturating")
        p.add_argument("--critic-steps", type=int, default=1,
                       help="discriminator steps per generator step (WGAN-GP uses 5)")
        p.add_argument("--pack", type=int, default=1,
                       help="PacGAN: points the discriminator judges at once (divides --batch-size)")
        p.add_argument("--hidden", type=hidden_widths, default=(128, 128), help="MLP widths, e.g. 128,128")
        add_adversarial_flags(p)

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        return fit_gan(dataset, train_config(args), loss=args.loss, z_dim=args.z_dim,
                       hidden=tuple(args.hidden), arch=args.arch, activation=args.activation,
                       critic_steps=args.critic_steps, pack=args.pack, gp_weight=args.gp_weight,
                       lr_discriminator=args.lr_discriminator, figures=args.plots,
                       num_samples=args.num_samples)

    def title(self, result: Any, dataset: Any) -> str:
        m = result.metrics
        title = (f"Trained a GAN on {dataset.name} ({m['discriminator_steps']} discriminator, "
                 f"{m['generator_steps']} generator steps in {m['train_seconds']:.1f} s)")
        if "mode_coverage" in m:
            title += f"; {coverage_text(m['mode_coverage'])}"
        return title
