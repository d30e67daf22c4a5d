"""Players: named parameter groups, each with its own optimizer and update schedule.

One player ("svi") is plain stochastic variational inference. Adversarial training adds a
generator and a discriminator, wake-sleep a wake (model) and a sleep (guide) player. A player's
step only ever moves its own parameters: gradients are taken with respect to them alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .._validation import check_positive_int

__all__ = ["Player", "OptimizerFactory", "SchedulerFactory", "adam"]

OptimizerFactory = Callable[[Sequence[torch.Tensor]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]
ParamOwner = str | Callable[[str], bool]


def adam(lr: float = 1e-3, **kwargs: object) -> OptimizerFactory:
    """An optimizer factory for :class:`torch.optim.Adam`.

    Examples:
        >>> opt = adam(1e-2)([torch.nn.Parameter(torch.zeros(2))])
        >>> type(opt).__name__
        'Adam'
    """
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: expected a finite number > 0, got {lr!r}")

    def make(params: Sequence[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr, **kwargs)

    return make


@dataclass
class Player:
    """A named group of parameters trained by its own optimizer on its own schedule.

    Args:
        name: the key under which an objective returning several losses gives this player's loss.
        owns: which parameters the player updates: ``"all"``, ``"model"`` (the ``param`` sites seen
            when tracing the model), ``"guide"`` (those seen when tracing the guide), or a predicate
            on the parameter's site name.
        optimizer: a factory ``params -> torch.optim.Optimizer``; ``None`` means Adam at the run's
            learning rate.
        every: the player updates on batches whose index is a multiple of ``every`` (a generator
            with ``every=5`` steps once per five critic steps).
        repeats: optimizer steps per scheduled batch, each on a fresh evaluation of the objective.
        scheduler: a factory ``optimizer -> torch.optim.lr_scheduler.LRScheduler``, stepped once
            at the end of every epoch and saved in checkpoints, e.g.
            ``lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99)``.

    Examples:
        >>> Player("discriminator", owns=lambda name: name.startswith("disc"), every=1).name
        'discriminator'
    """

    name: str
    owns: ParamOwner = "all"
    optimizer: OptimizerFactory | None = None
    every: int = 1
    repeats: int = 1
    scheduler: SchedulerFactory | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: expected a non-empty str, got {self.name!r}")
        if not callable(self.owns) and self.owns not in ("all", "model", "guide"):
            raise ValueError(
                f"owns: expected 'all', 'model', 'guide' or a callable on parameter names, "
                f"got {self.owns!r}"
            )
        if self.optimizer is not None and not callable(self.optimizer):
            raise TypeError(
                f"optimizer: expected a callable params -> torch.optim.Optimizer, "
                f"got {type(self.optimizer).__name__}"
            )
        if self.scheduler is not None and not callable(self.scheduler):
            raise TypeError(
                f"scheduler: expected a callable optimizer -> LRScheduler, "
                f"got {type(self.scheduler).__name__}"
            )
        check_positive_int("every", self.every)
        check_positive_int("repeats", self.repeats)

    def select(self, names: Sequence[str], model_names: set[str], guide_names: set[str]) -> list[str]:
        """The parameter names this player owns, in discovery order."""
        if self.owns == "all":
            return list(names)
        if self.owns == "model":
            return [n for n in names if n in model_names]
        if self.owns == "guide":
            return [n for n in names if n in guide_names]
        return [n for n in names if self.owns(n)]

    def scheduled(self, batch_index: int) -> bool:
        """Whether the player updates on the batch with this index (counted over the whole run)."""
        return batch_index % self.every == 0
