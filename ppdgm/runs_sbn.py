"""``ppdgm fit sbn``: train a sigmoid belief net (a Helmholtz machine): wake-sleep, RWS or VIMCO."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pyro

from .data import Dataset
from .diagnostics import plot_history, save_image_grid
from .inference import Engine, TrainConfig
from .inference.distributed import is_main_process
from .inference.evaluate import estimate_log_likelihood
from .inference.objectives.registry import build_player_objective
from .models.sbn import SBNConfig, SigmoidBeliefNet
from .runs import RunResult, check_run_inputs, write_run_files

__all__ = ["fit_sbn", "EXACT_EVALUATION_LIMIT"]

#: NVIL's input-dependent baselines: one tanh layer of this width per latent layer.
NVIL_BASELINE_HIDDEN = 100
#: Below this many latent states per layer pair, metrics include the exact log p(x).
EXACT_EVALUATION_LIMIT = 2**16


def fit_sbn(dataset: Dataset, train: TrainConfig, *, layers: tuple[int, ...] = (8,),
            objective: str = "rws", k: int = 10, eval_k: int = 1000, figures: bool = False,
            num_samples: int = 64, autoregressive: bool = False) -> RunResult:
    """Train a :class:`SigmoidBeliefNet` on binary ``dataset`` with two players, then evaluate.

    ``objective`` is ``"wake-sleep"``, ``"rws"``, ``"vimco"`` (``k`` particles) or ``"nvil"``
    (one sample, Pyro's ``TraceGraph_ELBO`` with input-dependent baselines).
    ``autoregressive=True`` makes each recognition layer autoregressive within itself.
    ``metrics.json`` holds the importance-sampled log p(x) per data point (``eval_k`` proposals
    from the recognition network) on the train and test splits and, for nets small enough to
    enumerate, the exact one.

    Example:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("bars-and-stripes")
        >>> cfg = TrainConfig(epochs=2, batch_size=10, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> m = fit_sbn(ds, cfg, layers=(4,), eval_k=20).metrics
        >>> m["test_log_px_exact"] <= 0
        True
    """
    out = check_run_inputs(dataset, train)
    if dataset.support != "binary":
        raise ValueError(
            f"dataset: a sigmoid belief net models binary data; {dataset.name!r} is "
            f"{dataset.support!r} (use digits-binarized, binarized-mnist, bars-and-stripes)"
        )
    config = SBNConfig(x_shape=tuple(dataset.event_shape), layers=tuple(layers),
                       baseline_hidden=NVIL_BASELINE_HIDDEN if objective == "nvil" else 0,
                       autoregressive=autoregressive)
    if train.seed is not None:
        pyro.set_rng_seed(train.seed)
    sbn = SigmoidBeliefNet(config)
    loss, players = build_player_objective(objective, k=k, lr=train.lr)
    spec = {"name": "sbn", "config": dataclasses.asdict(config), "data": dataset.name,
            "objective": objective, "k": k}
    engine = Engine(sbn.model, sbn.guide, loss, players, train, model_spec=spec)
    started = time.perf_counter()
    history = engine.fit(dataset.train)
    seconds = time.perf_counter() - started
    metrics: dict[str, Any] = {
        "model": "sbn", "data": dataset.name, "layers": list(config.layers),
        "objective": objective, "k": k, "epochs": train.epochs, "steps": len(history),
        "batch_size": train.batch_size, "seed": train.seed, "device": str(engine.device),
        "train_seconds": round(seconds, 3), "eval_k": eval_k,
    }
    for split in ("train", "test"):
        x = dataset.split(split).to(engine.device)
        est = estimate_log_likelihood(sbn.model, sbn.guide, x, num_samples=eval_k)
        metrics[f"{split}_log_px"] = {"mean": est.log_px.mean, "stderr": est.log_px.stderr}
        metrics[f"{split}_elbo"] = {"mean": est.elbo.mean, "stderr": est.elbo.stderr}
        if _enumerable(config):
            metrics[f"{split}_log_px_exact"] = sbn.exact_log_marginal(x).mean().item()
    files = write_run_files(out, metrics)
    if figures and is_main_process():
        files["loss_curve"] = plot_history(history, out / "loss_curve.png",
                                           title=f"SBN {config.layers} on {dataset.name}: {objective}")
        if len(config.x_shape) == 3:
            files["samples"] = save_image_grid(sbn.sample(num_samples, mean=True), out / "samples.png")
    return RunResult(out, files, metrics)


def _enumerable(config: SBNConfig) -> bool:
    widths = [1, *config.layers]
    return all(2**a * 2**b <= EXACT_EVALUATION_LIMIT for a, b in zip(widths, widths[1:]))

