"""``ppdgm fit vae``: a VAE trained by the ELBO (Monte Carlo or analytic KL) or the IWAE bound."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..data import Dataset
from ..diagnostics import plot_history, plot_latents, save_image_grid
from ..inference import Engine, TrainConfig
from ..inference.evaluate import estimate_elbo
from ..inference.objectives import build_objective
from ..inference.objectives.registry import OBJECTIVES
from ..models import VAE, DeepVAE, DeepVAEConfig, VAEConfig
from ..models.flows import FLOW_POSTERIORS, FLOW_PRIORS
from ..models.nets import ACTIVATIONS
from .base import Recipe, hidden_widths, train_config
from .run import RunResult, check_run_inputs, evaluation_points, finish_run, train_with_engine

__all__ = ["VAERecipe", "add_vae_flags", "fit_vae", "fit_vae_from_flags"]


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
    objective: str = "elbo",
    k: int = 1,
    eval_particles: int = 10,
    eval_points: int | None = 5_000,
    figures: bool = False,
    num_samples: int = 64,
) -> RunResult:
    """Train a VAE on ``dataset`` with the engine, then write ``metrics.json`` (and figures).

    ``objective`` is one of :data:`ppdgm.inference.objectives.OBJECTIVES` with ``k`` particles
    (``"iwae"`` with ``k=50`` is the IWAE of Burda et al.). The likelihood defaults to Bernoulli
    for binary data and Gaussian otherwise. The metrics hold the ELBO per data point on the
    train and test splits (``eval_particles`` draws each), in nats, with its standard error, on
    at most ``eval_points`` points of each split (a fixed uniform subset when a split is larger,
    so that the closing estimate stays a small part of the run; ``None`` evaluates every point).
    ``figures=True`` also writes the loss curve, and for images a sample grid, a reconstruction
    grid and a scatter of the test set's latent means coloured by class.

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("bars-and-stripes")
        >>> cfg = TrainConfig(epochs=2, batch_size=10, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> result = fit_vae(ds, cfg, model_overrides={"z_dim": 2, "hidden": (16,)}, figures=False)
        >>> sorted(result.files)
        ['checkpoint', 'history', 'metrics']
    """
    check_run_inputs(dataset, train)
    config = _vae_config_for(dataset, dict(model_overrides or {}))
    spec = {"name": "vae", "config": dataclasses.asdict(config), "data": dataset.name,
            "objective": objective, "k": k}
    run = train_with_engine(dataset, train, lambda: VAE(config), lambda vae: Engine(
        vae.model, vae.guide, build_objective(objective, k), config=train, model_spec=spec))
    vae, device = run.model, run.device
    points = {split: evaluation_points(dataset.split(split), eval_points)
              for split in ("train", "test")}
    elbo = {split: estimate_elbo(vae.model, vae.guide, x.to(device), num_particles=eval_particles)
            for split, x in points.items()}
    metrics = {
        "model": "vae", "data": dataset.name, "likelihood": config.likelihood,
        "z_dim": config.z_dim, "objective": objective, "k": k, **run.run_metrics(train),
        "final_epoch_loss_per_example": run.history.last() if run.history.epochs else None,
        **{f"{split}_elbo_nats": {"mean": e.mean, "stderr": e.stderr, "particles": eval_particles,
                                  "points": points[split].shape[0],
                                  "of": dataset.split(split).shape[0]}
           for split, e in elbo.items()},
    }
    return finish_run(run.out, metrics, figures=figures, draw_figures=lambda: _vae_figures(
        vae, dataset, run.history, run.out, device, objective, num_samples))


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


def add_vae_flags(p: argparse.ArgumentParser) -> None:
    """The VAE's flags (shared with ``ppdgm demo``)."""
    p.add_argument("--z-dim", type=int, default=8)
    p.add_argument("--hidden", type=hidden_widths, default=(256, 128), help="MLP widths, e.g. 256,128")
    p.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default=None,
                   help="default: bernoulli for binary data, gaussian otherwise")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default="relu")
    p.add_argument("--prior", choices=list(FLOW_PRIORS), default="normal",
                   help="p(z): N(0, I), or a zuko flow (maf, nsf; needs ppdgm[flows])")
    p.add_argument("--posterior", choices=list(FLOW_POSTERIORS), default="gaussian",
                   help="q(z|x): diagonal Gaussian, or an inverse autoregressive zuko flow (iaf, nsf)")
    p.add_argument("--flow-transforms", type=int, default=2, help="autoregressive steps per flow")
    p.add_argument("--flow-hidden", type=hidden_widths, default=(64, 64),
                   help="hidden widths of each flow step's network")
    p.add_argument("--objective", choices=list(OBJECTIVES), default="elbo",
                   help="elbo (Monte Carlo KL), elbo-analytic (closed-form KL) or iwae")
    p.add_argument("--k", type=int, default=None,
                   help="particles per data point (default: 50 for iwae, 1 otherwise)")
    p.add_argument("--eval-points", type=int, default=5_000, metavar="N",
                   help="the closing ELBO on at most N points per split (0: all of them)")


def fit_vae_from_flags(args: argparse.Namespace, dataset: Any, *, figures: bool) -> Any:
    """Run :func:`fit_vae` as the VAE flags describe."""
    overrides = {"z_dim": args.z_dim, "hidden": tuple(args.hidden), "arch": args.arch,
                 "likelihood": args.likelihood, "activation": args.activation,
                 "prior": args.prior, "posterior": args.posterior,
                 "flow_transforms": args.flow_transforms, "flow_hidden": tuple(args.flow_hidden)}
    k = args.k if args.k is not None else (50 if args.objective == "iwae" else 1)
    return fit_vae(dataset, train_config(args), model_overrides=overrides,
                   objective=args.objective, k=k, figures=figures,
                   eval_points=getattr(args, "eval_points", 5_000) or None)


class VAERecipe(Recipe):
    name = "vae"
    help = "variational autoencoder (ELBO, analytic KL, IWAE; flow priors and IAF guides)"
    epochs = 20
    # A two-layer VAE (benchmarks/nll.py --model iwae-2layer) is sampled and evaluated the same way.
    models = {"vae": (VAE, VAEConfig), "deep-vae": (DeepVAE, DeepVAEConfig)}

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        add_vae_flags(parser)

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        return fit_vae_from_flags(args, dataset, figures=args.plots)

    def title(self, result: Any, dataset: Any) -> str:
        return f"Trained a VAE on {dataset.name}"
