"""What an objective with several players offers the engine, written once.

A single-player objective is an ``ELBO`` or a callable ``loss(model, guide, *args)``, exactly as
``pyro.infer.SVI`` takes it. An objective with several players (wake/sleep, model/guide,
discriminator/generator, encoder/decoder/discriminator) names them in ``player_names`` and
answers :meth:`PlayerObjective.player_loss`, so that the engine evaluates only the loss of the
player whose turn it is; called as a plain loss it returns ``{player: loss}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

from ..importance import PairCheck

__all__ = ["MultiPlayerObjective", "PlayerObjective"]


@runtime_checkable
class PlayerObjective(Protocol):
    """The protocol the engine checks once, when it is built: one loss per player, by name
    (the names of ``Player`` s; ppdgm's objectives list theirs in ``player_names``)."""

    def player_loss(self, player: str, model: Callable[..., Any], guide: Callable[..., Any],
                    *args: Any, **kwargs: Any) -> torch.Tensor:
        """The loss of ``player`` on this batch."""
        ...


class MultiPlayerObjective:
    """Base of ppdgm's several-player objectives: ``__call__`` and the player-name check.

    Subclasses set ``player_names`` and implement :meth:`player_loss`, starting with
    ``self.check_player(player)``.

    Examples:
        >>> class Halves(MultiPlayerObjective):
        ...     player_names = ("a", "b")
        ...     def player_loss(self, player, model, guide, x):
        ...         self.check_player(player)
        ...         return x.sum() / 2
        >>> Halves()(None, None, torch.ones(4))
        {'a': tensor(2.), 'b': tensor(2.)}
    """

    player_names: tuple[str, ...] = ()
    #: ``"sum"`` (Pyro's convention, a sum over the batch) or ``"mean"`` (a batch mean).
    loss_reduction = "sum"

    def __call__(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                 **kwargs: Any) -> dict[str, torch.Tensor]:
        return {name: self.player_loss(name, model, guide, *args, **kwargs)
                for name in self.player_names}

    def player_loss(self, player: str, model: Callable[..., Any], guide: Callable[..., Any],
                    *args: Any, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError

    def check_pair(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> None:
        """For objectives that importance-sample the guide's proposals: refuse, once per pair, a
        model without a likelihood or a guide that is not a proposal for its latent sites
        (:func:`~ppdgm.inference.importance.check_importance_pair`)."""
        if "_pair_check" not in self.__dict__:
            self._pair_check = PairCheck()
        self._pair_check(model, guide, *args, **kwargs)

    def check_player(self, player: str) -> None:
        """Raise ``ValueError`` unless ``player`` is one of ``player_names``."""
        if player not in self.player_names:
            raise ValueError(f"player: expected one of {tuple(self.player_names)}, got {player!r}")
