"""``ppdgm fit autoregressive``: NADE or MADE on binary images, trained by exact likelihood."""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

import torch
from pyro.infer import Trace_ELBO

from ..data import Dataset
from ..diagnostics import plot_history, save_image_grid
from ..inference import Engine, TrainConfig
from ..models.nade import ARCHITECTURES, MADE, NADE, AutoregressiveConfig, build_autoregressive
from .base import Recipe, hidden_widths, train_config
from .run import RunResult, check_run_inputs, evaluation_points, finish_run, train_with_engine

__all__ = ["AutoregressiveRecipe", "exact_log_likelihood", "fit_autoregressive"]


@torch.no_grad()
def exact_log_likelihood(model: Any, x: torch.Tensor, *, batch_size: int = 500) -> dict[str, Any]:
    """Mean exact log p(x) per image over ``x`` and its standard error over images.

    Examples:
        >>> m = MADE(AutoregressiveConfig(x_shape=(3,), hidden=(4,)))
        >>> r = exact_log_likelihood(m, torch.ones(5, 3))
        >>> r["stderr"], r["points"]
        (0.0, 5)
    """
    values = torch.cat([model.log_prob(chunk) for chunk in x.split(batch_size)]).double()
    stderr = values.std().item() / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"mean": values.mean().item(), "stderr": stderr, "points": len(values)}


def fit_autoregressive(dataset: Dataset, train: TrainConfig, *, architecture: str = "made",
                       hidden: tuple[int, ...] = (500,), direct: bool = False,
                       eval_points: int | None = 10_000,
                       figures: bool = False, num_samples: int = 64) -> RunResult:
    """Train NADE or MADE on binary ``dataset`` by maximum likelihood with the engine.

    The Pyro loss is ``Trace_ELBO`` with the empty guide, which is exactly -log p(x). The metrics
    hold the exact test log p(x) (every test image) and the train one (``eval_points`` of them,
    a fixed uniform subset), with standard errors over images.

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> cfg = TrainConfig(epochs=1, batch_size=10, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> m = fit_autoregressive(load_dataset("bars-and-stripes"), cfg, hidden=(8,)).metrics
        >>> m["model"], m["test_log_px_exact"]["mean"] < 0
        ('made', True)
    """
    check_run_inputs(dataset, train)
    if dataset.support != "binary":
        raise ValueError(f"dataset: NADE and MADE model binary images; {dataset.name!r} is "
                         f"{dataset.support!r} (take its binarized version)")
    config = AutoregressiveConfig(x_shape=tuple(dataset.event_shape), hidden=tuple(hidden),
                                  seed=train.seed or 0, direct=direct)
    build_autoregressive(architecture, config)  # check the configuration before any data moves
    spec = {"name": architecture, "config": dataclasses.asdict(config), "data": dataset.name}
    run = train_with_engine(dataset, train, lambda: build_autoregressive(architecture, config),
                            lambda m: Engine(m.model, m.guide, Trace_ELBO(), config=train,
                                             model_spec=spec))
    model, device = run.model, run.device
    train_points = evaluation_points(dataset.train, eval_points).to(device)
    metrics = {
        "model": architecture, "data": dataset.name, "hidden": list(config.hidden),
        **run.run_metrics(train),
        "train_log_px_exact": exact_log_likelihood(model, train_points),
        "test_log_px_exact": exact_log_likelihood(model, dataset.test.to(device)),
    }

    def draw() -> dict[str, Any]:
        files = {"loss_curve": plot_history(run.history, run.out / "loss_curve.png",
                                            title=f"{architecture.upper()} on {dataset.name}: -log p(x)")}
        if dataset.train.dim() == 4:
            files["samples"] = save_image_grid(model.sample(num_samples), run.out / "samples.png")
        return files

    return finish_run(run.out, metrics, figures=figures, draw_figures=draw)


class AutoregressiveRecipe(Recipe):
    name = "autoregressive"
    help = "NADE or MADE: exact log p(x), ancestral sampling pixel by pixel"
    epochs = 20
    models = {"nade": (NADE, AutoregressiveConfig), "made": (MADE, AutoregressiveConfig)}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--arch", choices=list(ARCHITECTURES), default="made")
        p.add_argument("--hidden", type=hidden_widths, default=(500,),
                       help="hidden widths (NADE: one), e.g. 500 or 500,500")
        p.add_argument("--direct", action="store_true",
                       help="MADE: add direct input-to-output connections")
        p.add_argument("--eval-points", type=int, default=10_000, metavar="N",
                       help="the closing train log p(x) on at most N points (0: all of them)")

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        return fit_autoregressive(dataset, train_config(args), architecture=args.arch,
                                  hidden=tuple(args.hidden), direct=args.direct,
                                  eval_points=args.eval_points or None,
                                  figures=args.plots)

    def title(self, result: Any, dataset: Any) -> str:
        return f"Trained a {result.metrics['model'].upper()} on {dataset.name}"

    def lines(self, result: Any) -> list[str]:
        m = result.metrics
        tr, te = m["train_log_px_exact"], m["test_log_px_exact"]
        return [f"exact log p(x) per example (nats): train {tr['mean']:.3f} ± {tr['stderr']:.3f}, "
                f"test {te['mean']:.3f} ± {te['stderr']:.3f}",
                f"{m['steps']} steps in {m['train_seconds']:.1f} s on {m['device']}"]

    def evaluate(self, model: Any, x: torch.Tensor, *, k: int, batch_size: int,
                 seed: int) -> dict[str, Any]:
        r = exact_log_likelihood(model, x, batch_size=batch_size)
        return {"log_px": r["mean"], "log_px_stderr": r["stderr"], "nll": -r["mean"],
                "n": r["points"], "exact": True}

    def bounds(self, model: Any, *, num_steps: int, k: int, seed: int) -> dict[str, Any]:
        raise ValueError("bounds: an autoregressive model has no latent variable; its log p(x) "
                         "is exact")

    def evaluation_lines(self, metrics: dict[str, Any]) -> list[str]:
        m = metrics
        return [f"exact log p(x) per example (nats): {m['log_px']:.3f} ± {m['log_px_stderr']:.3f}"
                f"  (NLL {m['nll']:.3f}); {m['n']} points of {m.get('data', '?')}/"
                f"{m.get('split', '?')}"]
