"""What a model family tells the command line: its flags, how it trains, what it reports.

A :class:`Recipe` is one family's entry in :data:`ppdgm.recipes.RECIPES`. The command line builds
``ppdgm fit <name>`` from it and dispatches to it; nothing outside the recipe names the family.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["Recipe", "hidden_widths", "summary_lines", "train_config"]


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
        resume=args.resume, max_steps=args.max_steps,
        progress=False if args.no_progress else None, distributed=args.distributed,
        precision=args.precision,
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
    """One family on the command line. Subclasses set the class attributes and implement
    :meth:`add_flags`, :meth:`fit` and :meth:`title`.

    Attributes:
        name: the family's name (``ppdgm fit <name>``, ``model_spec["name"]`` in checkpoints).
        help: one line for ``ppdgm fit --help``.
        epochs: the default ``--epochs``; ``None`` for a family the engine does not train
            (then the shared run flags are not offered).
        defaults: other defaults of the shared flags (``{"lr": 2e-4}``).
    """

    name: str = ""
    help: str = ""
    epochs: int | None = 20
    defaults: dict[str, Any] = {}

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        """Add the family's own flags to its ``ppdgm fit <name>`` parser."""

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        """Train on ``dataset`` as ``args`` say; returns a :class:`~ppdgm.runs.RunResult`."""
        raise NotImplementedError

    def title(self, result: Any, dataset: Any) -> str:
        """The first line ``ppdgm fit`` prints."""
        return f"Trained a {self.name} on {dataset.name}"

    def lines(self, result: Any) -> list[str]:
        """What ``ppdgm fit`` prints under the title (the measured figures)."""
        return summary_lines(result.metrics)
