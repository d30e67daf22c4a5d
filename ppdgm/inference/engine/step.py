"""One player's update, once its loss (or its gradients, from a compiled graph) is known.

:func:`update` sets the gradients, checks them, clips them, steps the optimizer, checks the
parameters and updates the moving average, in that order; every check names the tensor, the step
and the player that went wrong, and says that nothing non-finite reached a checkpoint. The loss
itself comes from the Pyro program (:class:`~ppdgm.inference.engine.Engine`) or from a replayed
graph (:mod:`ppdgm.inference.compiled`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..ema import WeightAverage
from .config import DivergedError, NonFiniteLossError
from .state import PlayerState, Position

__all__ = ["check_divergence", "check_finite_losses", "guard", "loss_values", "update"]


def loss_values(loss: Any, objective_name: str) -> list[float]:
    """The loss as floats: one, or one per loss of an objective that returns several (RWS)."""
    parts = loss if isinstance(loss, (tuple, list)) else (loss,)
    values = []
    for part in parts:
        if isinstance(part, torch.Tensor):
            if part.numel() != 1:
                raise TypeError(f"objective: {objective_name} returned a loss of shape "
                                f"{tuple(part.shape)}; expected a scalar")
            values.append(float(part.detach()))
        elif isinstance(part, (int, float)) and not isinstance(part, bool):
            values.append(float(part))
        else:
            raise TypeError(f"objective: {objective_name} returned {type(part).__name__}; expected "
                            "a number or a scalar tensor")
    if not values:
        raise TypeError(f"objective: {objective_name} returned no loss")
    return values


def check_finite_losses(values: Sequence[float], state: PlayerState, pos: Position, *,
                        objective_name: str, kept: str) -> None:
    """Stop before a NaN or Inf loss moves anything (:class:`NonFiniteLossError`)."""
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        where = (f"at step {pos.step} (epoch {pos.epoch}, batch {pos.batch}) for player "
                 f"{state.player.name!r}")
        raise NonFiniteLossError(f"objective {objective_name} returned {bad[0]} {where}; the "
                                 f"parameters were not updated with it{kept}")


def update(state: PlayerState, pos: Position, *, loss: Any = None,
           grads: Sequence[torch.Tensor | None] | None = None, grad_clip: float | None = None,
           ema: WeightAverage | None = None, kept: str = "") -> None:
    """The update half of a player's step: ``grads`` (from a graph) or a backward pass of
    ``loss``, checked, clipped to ``grad_clip``; the optimizer's step; the parameters checked; the
    moving average updated. ``kept`` ends an error's message (where the last checkpoint is)."""
    if grads is not None:
        for p, grad in zip(state.params, grads):
            if grad is not None:
                p.grad = grad
    elif isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward(inputs=state.params)
    guard(state, pos, "gradient", [p.grad for p in state.params if p.grad is not None], kept=kept)
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(state.params, grad_clip)
    assert state.optimizer is not None
    state.optimizer.step()
    guard(state, pos, "parameter", state.params, kept=kept)
    if ema is not None:
        ema.update(state.names, state.params)


def guard(state: PlayerState, pos: Position, what: str, tensors: list[torch.Tensor], *,
          kept: str = "") -> None:
    """Stop when a ``what`` (``"gradient"`` or ``"parameter"``) of the player is NaN or Inf."""
    # One reduction per player: a sum is finite when every entry is (NaN and Inf propagate;
    # 60 us a check for a 784-400-20 VAE on CPU, a norm takes twice that). Only when it is not
    # (a NaN, an Inf, or a sum past float range) are the tensors looked at one by one.
    if not tensors or bool(torch.isfinite(torch.stack([t.sum() for t in tensors]).sum())):
        return
    named = zip(state.names, state.params)
    bad = [n for n, p in named if not bool(torch.isfinite(
        p if what == "parameter" else (p.grad if p.grad is not None else p.new_zeros(()))).all())]
    if not bad:
        return  # finite entries whose sum overflowed: large, but not wrong
    done = "the parameters were not updated with it" if what == "gradient" else "no checkpoint holds it"
    raise NonFiniteLossError(
        f"{what} of {bad[0]!r} became NaN or Inf at step {pos.step} (epoch {pos.epoch}, batch "
        f"{pos.batch}) for player {state.player.name!r}; {done}{kept} (a smaller "
        "lr or grad_clip may help)")


def check_divergence(state: PlayerState, value: float, pos: Position, *, factor: float | None,
                     first_loss: float, kept: str = "") -> None:
    """Stop when the player's loss exceeds ``factor`` times the size of its first (at least 1);
    ``first_loss`` is that first loss, remembered in ``state`` from then on."""
    if factor is None:
        return
    if state.first_loss is None:
        state.first_loss = first_loss
    limit = factor * max(1.0, abs(state.first_loss))
    if abs(value) > limit:
        raise DivergedError(
            f"player {state.player.name!r} diverged at step {pos.step} (epoch {pos.epoch}): "
            f"its loss {value:.4g} is more than {factor:g} times its first ({state.first_loss:.4g})"
            f"{kept}; try a smaller lr")
