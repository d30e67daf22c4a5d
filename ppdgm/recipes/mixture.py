"""``ppdgm fit mixture``: a Bernoulli or Gaussian mixture fitted by EM (no engine, no epochs)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from .._files import atomic_write_text, make_folder
from ..data import Dataset
from ..diagnostics import save_image_grid
from ..inference.checkpoint import save_checkpoint
from ..inference.objectives.em import expectation_maximization
from ..models.mixture import BernoulliMixture, GaussianMixture, MixtureConfig
from .base import Recipe
from .run import RunResult, versions

__all__ = ["MixtureRecipe", "fit_mixture"]


def fit_mixture(dataset: Dataset, out: str | Path, *, components: int = 10, iterations: int = 100,
                seed: int = 0, m_step: str = "auto", figures: bool = False) -> RunResult:
    """Fit a mixture to ``dataset`` by EM (k-means++ seeding), then write metrics and figures.

    Binary data gets a Bernoulli mixture, other data a diagonal Gaussian one. ``metrics.json``
    holds the exact mean log p(x) on train and test and the train log-likelihood after every
    iteration; ``checkpoint.pt`` holds the parameters (read it with :func:`ppdgm.load_checkpoint`).

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> m = fit_mixture(load_dataset("bars-and-stripes"), tempfile.mkdtemp(), components=4).metrics
        >>> m["log_likelihood_trace"][-1] >= m["log_likelihood_trace"][0]
        True
    """
    out = make_folder("out", out)
    x = dataset.train.flatten(1)
    config = MixtureConfig(x_dim=x.shape[1], components=components)
    cls = BernoulliMixture if dataset.support == "binary" else GaussianMixture
    model = cls(config, seed=seed)
    model.initialize(x, seed=seed)
    started = time.perf_counter()
    result = expectation_maximization(model, x, iterations=iterations, m_step=m_step)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        test = model.log_marginal(dataset.test.flatten(1)).mean().item()
    name = "bernoulli-mixture" if cls is BernoulliMixture else "gaussian-mixture"
    metrics = {"model": name, "data": dataset.name, "components": components,
               "iterations": result.iterations, "seconds": round(seconds, 3),
               "train_log_px_exact": result.log_likelihood[-1], "test_log_px_exact": test,
               "log_likelihood_trace": result.log_likelihood}
    files = {"metrics": out / "metrics.json", "checkpoint": out / "checkpoint.pt"}
    metrics["versions"] = versions()
    atomic_write_text(files["metrics"], json.dumps(metrics, indent=2))
    save_checkpoint({"model_spec": {"name": name, "config": dataclasses.asdict(config),
                                    "data": dataset.name, "x_shape": list(dataset.event_shape)},
                     "modules": [model.state_dict()]}, files["checkpoint"])
    if figures and dataset.train.dim() == 4 and cls is BernoulliMixture:
        means = torch.sigmoid(model.logits.detach()).reshape(components, *dataset.train.shape[1:])
        files["components"] = save_image_grid(means, out / "components.png")
    return RunResult(out, files, metrics)


class MixtureRecipe(Recipe):
    name = "mixture"
    help = "Bernoulli or Gaussian mixture fitted by EM"
    epochs = None
    models = {"bernoulli-mixture": (BernoulliMixture, MixtureConfig),
              "gaussian-mixture": (GaussianMixture, MixtureConfig)}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--components", type=int, default=10)
        p.add_argument("--iterations", type=int, default=100)
        p.add_argument("--m-step", choices=["auto", "closed-form", "gradient"], default="auto")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", default="runs/mixture")

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        return fit_mixture(dataset, args.out, components=args.components,
                           iterations=args.iterations, seed=args.seed, m_step=args.m_step,
                           figures=args.plots)

    def title(self, result: Any, dataset: Any) -> str:
        return f"Fitted a mixture to {dataset.name} by EM"

    def lines(self, result: Any) -> list[str]:
        m = result.metrics
        return [f"exact log p(x) per example: train {m['train_log_px_exact']:.3f}, test "
                f"{m['test_log_px_exact']:.3f} after {m['iterations']} EM iterations "
                f"({m['seconds']:.1f} s)"]
