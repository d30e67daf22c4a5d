"""``ppdgm fit sbn``: a sigmoid belief net (Helmholtz machine) by wake-sleep, RWS, VIMCO or NVIL."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..data import Dataset
from ..diagnostics import plot_history, save_image_grid
from ..inference import Engine, TrainConfig
from ..inference.evaluate import estimate_log_likelihood
from ..inference.objectives.registry import PLAYER_OBJECTIVES, build_player_objective
from ..models.sbn import SBNConfig, SigmoidBeliefNet
from .base import Recipe, hidden_widths, train_config
from .run import RunResult, check_run_inputs, finish_run, train_with_engine

__all__ = ["EXACT_EVALUATION_LIMIT", "SBNRecipe", "fit_sbn"]

#: NVIL's input-dependent baselines: one tanh layer of this width per latent layer.
NVIL_BASELINE_HIDDEN = 100
#: Below this many latent states per layer pair, metrics include the exact log p(x).
EXACT_EVALUATION_LIMIT = 2**16


def fit_sbn(dataset: Dataset, train: TrainConfig, *, layers: tuple[int, ...] = (8,),
            objective: str = "rws", k: int = 10, eval_k: int = 1000, figures: bool = False,
            num_samples: int = 64, autoregressive: bool = False) -> RunResult:
    """Train a :class:`SigmoidBeliefNet` on binary ``dataset`` with two players, then evaluate.

    ``objective`` is ``"wake-sleep"``, ``"rws"``, ``"vimco"`` (``k`` particles) or ``"nvil"``
    (one sample, :class:`~ppdgm.inference.objectives.NVIL`: local signals, input-dependent
    baselines, running centring and normalisation).
    ``autoregressive=True`` makes each recognition layer autoregressive within itself.
    ``metrics.json`` holds the importance-sampled log p(x) per data point (``eval_k`` proposals
    from the recognition network) on the train and test splits and, for nets small enough to
    enumerate, the exact one.

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("bars-and-stripes")
        >>> cfg = TrainConfig(epochs=2, batch_size=10, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> m = fit_sbn(ds, cfg, layers=(4,), eval_k=20).metrics
        >>> m["test_log_px_exact"] <= 0
        True
    """
    check_run_inputs(dataset, train)
    if dataset.support != "binary":
        raise ValueError(
            f"dataset: a sigmoid belief net models binary data; {dataset.name!r} is "
            f"{dataset.support!r} (use digits-binarized, binarized-mnist, bars-and-stripes)"
        )
    config = SBNConfig(x_shape=tuple(dataset.event_shape), layers=tuple(layers),
                       baseline_hidden=NVIL_BASELINE_HIDDEN if objective == "nvil" else 0,
                       autoregressive=autoregressive)
    loss, players = build_player_objective(objective, k=k, lr=train.lr)
    spec = {"name": "sbn", "config": dataclasses.asdict(config), "data": dataset.name,
            "objective": objective, "k": k}
    run = train_with_engine(dataset, train, lambda: SigmoidBeliefNet(config), lambda sbn: Engine(
        sbn.model, sbn.guide, loss, players, train, model_spec=spec))
    sbn = run.model
    metrics: dict[str, Any] = {"model": "sbn", "data": dataset.name, "layers": list(config.layers),
                               "objective": objective, "k": k, **run.run_metrics(train),
                               "eval_k": eval_k}
    for split in ("train", "test"):
        x = dataset.split(split).to(run.device)
        est = estimate_log_likelihood(sbn.model, sbn.guide, x, num_samples=eval_k)
        metrics[f"{split}_log_px"] = {"mean": est.log_px.mean, "stderr": est.log_px.stderr}
        metrics[f"{split}_elbo"] = {"mean": est.elbo.mean, "stderr": est.elbo.stderr}
        if _enumerable(config):
            metrics[f"{split}_log_px_exact"] = sbn.exact_log_marginal(x).mean().item()

    def draw_figures() -> dict[str, Any]:
        files = {"loss_curve": plot_history(run.history, run.out / "loss_curve.png",
                                            title=f"SBN {config.layers} on {dataset.name}: {objective}")}
        if len(config.x_shape) == 3:
            files["samples"] = save_image_grid(sbn.sample(num_samples, mean=True),
                                               run.out / "samples.png")
        return files

    return finish_run(run.out, metrics, figures=figures, draw_figures=draw_figures)


def _enumerable(config: SBNConfig) -> bool:
    widths = [1, *config.layers]
    return all(2**a * 2**b <= EXACT_EVALUATION_LIMIT for a, b in zip(widths, widths[1:]))


class SBNRecipe(Recipe):
    name = "sbn"
    help = "sigmoid belief net / Helmholtz machine (wake-sleep, RWS, VIMCO)"
    epochs = 100
    models = {"sbn": (SigmoidBeliefNet, SBNConfig)}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--layers", type=hidden_widths, default=(8,),
                       help="latent widths from the top layer down, e.g. 200,200,200")
        p.add_argument("--objective", choices=list(PLAYER_OBJECTIVES), default="rws")
        p.add_argument("--k", type=int, default=10, help="RWS or VIMCO particles per data point")
        p.add_argument("--autoregressive", action="store_true",
                       help="recognition layers autoregressive within themselves")
        p.add_argument("--eval-k", type=int, default=1000,
                       help="importance samples for the log p(x) in metrics.json")

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        return fit_sbn(dataset, train_config(args), layers=tuple(args.layers),
                       objective=args.objective, k=args.k, eval_k=args.eval_k,
                       figures=args.plots, autoregressive=args.autoregressive)

    def title(self, result: Any, dataset: Any) -> str:
        return f"Trained a sigmoid belief net on {dataset.name}"
