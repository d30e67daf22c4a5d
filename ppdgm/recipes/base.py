"""What a model family tells the command line: its flags, how it trains, what it reports.

A :class:`Recipe` is one family's entry in :data:`ppdgm.recipes.RECIPES`. The command line builds
``ppdgm fit <name>`` from it and dispatches to it; nothing outside the recipe names the family.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["BOUNDS_CHAINS", "BOUNDS_POINTS", "BOUNDS_STEPS", "Recipe", "bounds_lines",
           "hidden_widths", "summary_lines", "train_config"]

#: ``ppdgm evaluate --bounds``: data points simulated from the model, AIS runs per point and
#: direction, and the default number of intermediate distributions. On the demo's VAE the
#: log-weights then vary by about 0.3 nats, so each point's bounds are good to about 0.05.
BOUNDS_POINTS, BOUNDS_CHAINS, BOUNDS_STEPS = 16, 32, 500


def hidden_widths(text: str) -> tuple[int, ...]:
    """Parse ``--hidden 256,128``-style comma-separated positive widths."""
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated ints like 256,128, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths, got {text!r}")
    return widths


def train_config(args: argparse.Namespace) -> Any:
    """The :class:`~ppdgm.inference.TrainConfig` the shared run flags describe."""
    from ..inference import TrainConfig

    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        device=args.device, out_dir=args.out, checkpoint_every=args.checkpoint_every,
        checkpoint_seconds=getattr(args, "checkpoint_seconds", None),
        resume=args.resume, max_steps=args.max_steps,
        progress=False if args.no_progress else None, distributed=args.distributed,
        precision=args.precision, divergence=getattr(args, "divergence", None) or None,
        ema=getattr(args, "ema", None), tensorboard=getattr(args, "tensorboard", None),
        compile=getattr(args, "compile", "off"),
    )


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """The likelihood lines every fit that measures them prints (train and test, with errors)."""
    lines = []
    if "test_log_px" in metrics:
        tr, te = metrics["train_log_px"], metrics["test_log_px"]
        how = (f"K={metrics['eval_k']}" if "eval_k" in metrics
               else f"log Z {metrics['log_z_method']}: {metrics['log_z']:.3f}")
        lines.append(f"log p(x) per example (nats, {how}): train {tr['mean']:.3f} ± "
                     f"{tr['stderr']:.3f}, test {te['mean']:.3f} ± {te['stderr']:.3f}")
        if "test_log_px_exact" in metrics:
            lines.append(f"exact log p(x) by enumeration: train {metrics['train_log_px_exact']:.3f}, "
                         f"test {metrics['test_log_px_exact']:.3f}")
    if "test_elbo_nats" in metrics:
        tr, te = metrics["train_elbo_nats"], metrics["test_elbo_nats"]
        lines.append(f"ELBO per example (nats): train {tr['mean']:.3f} ± {tr['stderr']:.3f}, "
                     f"test {te['mean']:.3f} ± {te['stderr']:.3f}")
        lines.append(f"{metrics['steps']} steps in {metrics['train_seconds']:.1f} s on "
                     f"{metrics['device']}")
    return lines


class Recipe:
    """One family on the command line and behind its checkpoints.

    Subclasses set the class attributes and implement :meth:`add_flags` and :meth:`fit`; the
    other methods have defaults that suit a model/guide pair with a likelihood.

    Attributes:
        name: the family's name (``ppdgm fit <name>``).
        help: one line for ``ppdgm fit --help``.
        epochs: the default ``--epochs``; ``None`` for a family the engine does not train
            (then the shared run flags are not offered).
        defaults: other defaults of the shared flags (``{"lr": 2e-4}``).
        models: the models this recipe trains and reads back, by the ``model_spec["name"]``
            its checkpoints record: ``(model class, config dataclass)``. ``ppdgm sample``,
            ``evaluate`` and ``diagnose`` pick the recipe, and rebuild the model, by it.
    """

    name: str = ""
    help: str = ""
    epochs: int | None = 20
    defaults: dict[str, Any] = {}
    models: dict[str, tuple[type, type]] = {}

    def handles(self, model_name: str) -> bool:
        """Whether checkpoints whose ``model_spec["name"]`` is ``model_name`` are this family's."""
        return model_name in self.models

    def build(self, model_name: str, config: Mapping[str, Any]) -> torch.nn.Module:
        """The untrained model a checkpoint's ``model_spec`` describes."""
        from ..models import build_from_config

        return build_from_config(*self.models[model_name], config)

    # ppdgm fit
    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        """Add the family's own flags to its ``ppdgm fit <name>`` parser."""

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        """Train on ``dataset`` as ``args`` say; returns a :class:`~ppdgm.recipes.run.RunResult`."""
        raise NotImplementedError

    def title(self, result: Any, dataset: Any) -> str:
        """The first line ``ppdgm fit`` prints."""
        return f"Trained a {self.name} on {dataset.name}"

    def lines(self, result: Any) -> list[str]:
        """What ``ppdgm fit`` prints under the title (the measured figures)."""
        return summary_lines(result.metrics)

    # ppdgm sample
    def add_sample_flags(self, parser: argparse.ArgumentParser) -> None:
        """Flags of ``ppdgm sample`` that only this family reads (a sampler, its steps)."""

    def sample_options(self, args: argparse.Namespace) -> dict[str, Any]:
        """The keyword options of :meth:`draw` that ``ppdgm sample``'s flags give."""
        return {}

    def draw(self, model: Any, n: int, *, mean: bool, seed: int,
             **options: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """``n`` samples of a trained model and what to record about how they were drawn.

        ``mean=True`` shows the likelihood's mean instead of a random draw from it.
        """
        if options:
            raise ValueError(f"options: a {self.name} checkpoint takes no sampling options, "
                             f"got {sorted(options)}")
        return model.sample(n, mean=mean), {}

    # ppdgm evaluate
    def evaluate(self, model: Any, x: torch.Tensor, *, k: int, batch_size: int,
                 seed: int) -> dict[str, Any]:
        """What ``ppdgm evaluate`` measures on ``x``: by default the importance-sampled
        log p(x) with ``k`` proposals from the guide and the ELBO of the same draws."""
        from ..inference.evaluate import estimate_log_likelihood

        return estimate_log_likelihood(model.model, model.guide, x, num_samples=k,
                                       batch_size=batch_size, seed=seed).as_dict()

    def bounds(self, model: Any, *, num_steps: int, k: int, seed: int) -> dict[str, Any]:
        """``ppdgm evaluate --bounds``: bidirectional Monte Carlo on :data:`BOUNDS_POINTS` points
        simulated from the model (:func:`ppdgm.inference.evaluation.bdmc`), annealing from the
        guide to the posterior and back, and the importance-sampled estimate with ``k``
        proposals on the same points, which should lie between the bounds; the gap is how far
        either can be from log p(x) on such data."""
        from ..inference.evaluate import estimate_log_likelihood
        from ..inference.evaluation import bdmc

        result = bdmc(model.model, model.guide, num_steps=num_steps, num_chains=BOUNDS_CHAINS,
                      kwargs={"num_samples": BOUNDS_POINTS}, seed=seed)
        sampled = estimate_log_likelihood(model.model, model.guide, result.x, num_samples=k,
                                          seed=seed)
        return {**result.summary(), "chains": BOUNDS_CHAINS,
                "log_px_importance": sampled.log_px.mean, "importance_k": k}

    def evaluation_lines(self, metrics: dict[str, Any]) -> list[str]:
        """What ``ppdgm evaluate`` prints about the metrics :meth:`evaluate` returned."""
        m = metrics
        return [f"log p(x) per example (nats, K={m['num_samples']}): {m['log_px']:.3f} ± "
                f"{m['log_px_stderr']:.3f}  (NLL {m['nll']:.3f})",
                f"ELBO per example (nats, same draws): {m['elbo']:.3f} ± {m['elbo_stderr']:.3f}; "
                f"{m['n']} points of {m['data']}/{m['split']} in {m['seconds']:.1f} s on "
                f"{m['device']}"]


def bounds_lines(bounds: dict[str, Any]) -> list[str]:
    """What ``ppdgm evaluate --bounds`` prints about :meth:`Recipe.bounds`' numbers."""
    b = bounds
    return [f"BDMC on {b['units']} points simulated from the model ({b['num_steps']} "
            f"intermediate distributions, {b['chains']} runs each way): {b['lower']:.3f} <= "
            f"log p(x) <= {b['upper']:.3f} nats per point (gap {b['gap']:.3f}); the "
            f"importance-sampled estimate (K={b['importance_k']}) of the same points: "
            f"{b['log_px_importance']:.3f}"]
