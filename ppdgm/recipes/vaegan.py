"""``ppdgm fit vae-gan``: a VAE whose likelihood lives in a GAN discriminator's features."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from .._validation import check_choice, check_positive_int
from ..data import Dataset
from ..diagnostics import plot_history
from ..inference import Engine, Player, TrainConfig, adam
from ..inference.coverage import dataset_coverage
from ..inference.objectives.adversarial import ADVERSARIAL_LOSSES
from ..inference.objectives.vaegan import VAEGAN_PLAYERS, VAEGANLoss
from ..models.vaegan import ARCHS, VAEGAN, VAEGANConfig
from .base import Recipe, hidden_widths, train_config
from .gan import GAN_BETAS, add_adversarial_flags, coverage_text, means_as_per_example, player_summary
from .run import RunResult, check_optional_lr, check_run_inputs, finish_run, sample_figure, train_with_engine

__all__ = ["VAEGANRecipe", "fit_vaegan"]

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
    (0.5, 0.999) as :func:`~ppdgm.recipes.gan.fit_gan` uses. Each owns its network's parameters
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

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("ring8", num_train=64, num_test=16)
        >>> cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> m = fit_vaegan(ds, cfg, hidden=(16,), num_samples=50).metrics
        >>> m["steps"], sorted(m["final_loss"]), m["mode_coverage"]["num_samples"]
        (2, ['decoder', 'discriminator', 'encoder'], 50)
    """
    check_run_inputs(dataset, train)
    check_choice("loss", loss, tuple(ADVERSARIAL_LOSSES))
    check_choice("arch", arch, ARCHS)
    check_positive_int("num_samples", num_samples)
    lr_d = check_optional_lr("lr_discriminator", lr_discriminator) or train.lr
    objective = VAEGANLoss(loss, gamma=gamma, gp_weight=gp_weight)  # checks gamma and gp_weight
    x_shape = tuple(dataset.event_shape)
    if z_dim is None:
        z_dim = 2 if len(x_shape) == 1 else 64
    config = VAEGANConfig(
        x_shape=x_shape, z_dim=z_dim, arch=arch, hidden=tuple(hidden), activation=activation,
        discriminator_hidden=None if discriminator_hidden is None else tuple(discriminator_hidden),
        feature_layer=feature_layer)
    config.validate()  # before seeding and building: a bad argument fails fast, naming itself
    players = [Player("discriminator", owns=VAEGAN.owns("discriminator"),
                      optimizer=adam(lr_d, betas=GAN_BETAS))]
    players += [Player(name, owns=VAEGAN.owns(name), optimizer=adam(train.lr, betas=GAN_BETAS))
                for name in ("encoder", "decoder")]
    spec = {"name": "vae-gan", "config": dataclasses.asdict(config), "data": dataset.name,
            "loss": loss, "gamma": objective.gamma}
    run = train_with_engine(dataset, train, lambda: VAEGAN(config), lambda model: Engine(
        model.model, model.guide, objective, players, train, model_spec=spec))
    model, device = run.model, run.device
    counts, final = player_summary(run.history, VAEGAN_PLAYERS)
    metrics: dict[str, Any] = {
        "model": "vae-gan", "data": dataset.name, "arch": arch, "z_dim": z_dim, "loss": loss,
        "gamma": objective.gamma, "feature_layer": feature_layer,
        "feature_dim": model.feature_dim, **run.run_metrics(train), "lr_discriminator": lr_d,
        "steps": counts["discriminator"],  # every player steps per batch
        "player_steps": counts,
        "final_loss": final,  # each player's loss (a batch mean) averaged over the last epoch
    }
    if loss == "wasserstein-gp":
        metrics["gp_weight"] = objective.gp_weight
    test = dataset.test[:_RECONSTRUCTION_POINTS].to(device)
    if test.shape[0]:
        error = (model.reconstruct(test) - test).square().reshape(test.shape[0], -1).sum(-1)
        metrics["test_reconstruction_mse"] = float(error.mean())  # squared norm per point
    model.eval()  # batch norm (DCGAN) samples with its running statistics
    drawn = {"samples": model.sample(num_samples),
             "reconstructions": model.reconstruct(dataset.train[:num_samples].to(device))}
    coverage = {name: dataset_coverage(points.reshape(points.shape[0], -1), dataset)
                for name, points in drawn.items()} if len(x_shape) == 1 else {}
    coverage = {name: c for name, c in coverage.items() if c is not None}
    if coverage:
        metrics["mode_coverage"] = coverage["samples"].as_json()
        metrics["reconstruction_mode_coverage"] = coverage["reconstructions"].as_json()

    def draw_figures() -> dict[str, Path]:
        title = f"VAE-GAN ({arch}, {loss}, gamma={objective.gamma:g}) on {dataset.name}"
        files = {"loss_curve": plot_history(means_as_per_example(run.history),
                                            run.out / "loss_curve.png",
                                            title=f"{title}: loss per step (batch mean)")}
        if drawn["samples"].dim() == 4:
            files["samples"] = sample_figure({"samples": drawn["samples"]}, dataset,
                                             run.out / "samples.png", title)
            files["reconstructions"] = sample_figure({"r": drawn["reconstructions"]}, dataset,
                                                     run.out / "reconstructions.png", title)
            return files
        picture = sample_figure(drawn, dataset, run.out / "samples.png", title, coverage)
        return files | ({"samples": picture} if picture is not None else {})

    return finish_run(run.out, metrics, figures=figures, draw_figures=draw_figures,
                      allow_nan=False)


class VAEGANRecipe(Recipe):
    name = "vae-gan"
    help = "VAE-GAN (Larsen et al. 2016): a VAE whose likelihood lives in a GAN discriminator's features"
    epochs = 20
    models = {"vae-gan": (VAEGAN, VAEGANConfig)}
    defaults = {"lr": 2e-4}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--loss", choices=list(ADVERSARIAL_LOSSES), default="non-saturating",
                       help="the GAN terms of the decoder's and discriminator's losses")
        p.add_argument("--gamma", type=float, default=1.0,
                       help="decoder's weight of feature-space reconstruction vs fooling D")
        p.add_argument("--hidden", type=hidden_widths, default=(128, 128),
                       help="encoder MLP widths (decoder reversed), e.g. 128,128")
        p.add_argument("--discriminator-hidden", type=hidden_widths, default=None,
                       help="discriminator MLP widths (default: --hidden)")
        p.add_argument("--feature-layer", type=int, default=-1,
                       help="discriminator hidden layer used as the similarity metric (-1: last)")
        add_adversarial_flags(p)

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        return fit_vaegan(dataset, train_config(args), loss=args.loss, gamma=args.gamma,
                          gp_weight=args.gp_weight, z_dim=args.z_dim, hidden=tuple(args.hidden),
                          discriminator_hidden=args.discriminator_hidden,
                          feature_layer=args.feature_layer, arch=args.arch,
                          activation=args.activation, lr_discriminator=args.lr_discriminator,
                          figures=args.plots, num_samples=args.num_samples)

    def title(self, result: Any, dataset: Any) -> str:
        m = result.metrics
        title = (f"Trained a VAE-GAN on {dataset.name} ({m['steps']} steps of each player in "
                 f"{m['train_seconds']:.1f} s)")
        if "mode_coverage" in m:
            title += f"; samples: {coverage_text(m['mode_coverage'])}"
        return title
