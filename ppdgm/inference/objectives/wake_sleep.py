"""Wake-sleep (Hinton, Dayan, Frey and Neal 1995): two players, two phases, one Helmholtz machine.

* **wake** (the model's parameters): draw z ~ q(z | x) for the data and climb log p(x, z);
* **sleep** (the guide's parameters): dream (x, z) ~ p by ancestral sampling and climb
  log q(z | x) on the dreams.

The two losses are separate objectives, not one bound, so they are two players of the engine:
``Player("wake", owns="model")`` and ``Player("sleep", owns="guide")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyro.poutine as poutine
import torch

from .base import MultiPlayerObjective

__all__ = ["WakeSleep"]


class WakeSleep(MultiPlayerObjective):
    """The wake and sleep losses of a model/guide pair, as ``{"wake": ..., "sleep": ...}``.

    The **wake** loss reports the negative ELBO of the batch, -(log p(x, z) - log q(z | x)), and
    carries the gradient of -log p(x, z) for the model alone (z is a sample, not a function of the
    model). The **sleep** loss is -log q(z | x) on a dreamed batch of the same size, drawn by
    calling ``model(None, num_samples=n)`` (ppdgm's convention for generating), whose return
    value is the dreamed x.

    Examples:
        >>> from ppdgm.models.sbn import SigmoidBeliefNet
        >>> sbn = SigmoidBeliefNet(x_shape=(6,), layers=(3,))
        >>> losses = WakeSleep()(sbn.model, sbn.guide, sbn.sample(5))
        >>> sorted(losses), losses["wake"].shape
        (['sleep', 'wake'], torch.Size([]))
    """

    player_names = ("wake", "sleep")

    def player_loss(self, player: str, model: Callable[..., Any], guide: Callable[..., Any],
                    *args: Any, **kwargs: Any) -> torch.Tensor:
        """The loss of ``player`` (``"wake"`` or ``"sleep"``) on this batch."""
        self.check_pair(model, guide, *args, **kwargs)
        if player == "wake":
            return self.wake(model, guide, *args, **kwargs)
        if player == "sleep":
            return self.sleep(model, guide, *args, **kwargs)
        raise ValueError(f"player: expected one of {self.player_names}, got {player!r}")

    @staticmethod
    def wake(model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
             **kwargs: Any) -> torch.Tensor:
        """-log p(x, z), z ~ q(z | x); its value is shifted to the batch's negative ELBO."""
        with torch.no_grad():
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        log_p = model_trace.log_prob_sum()
        elbo = log_p.detach() - guide_trace.log_prob_sum()
        return -(elbo + (log_p - log_p.detach()))

    @staticmethod
    def sleep(model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
              **kwargs: Any) -> torch.Tensor:
        """-log q(z | x) on dreams (x, z) ~ p, as many as the batch has data points."""
        x = args[0] if args else kwargs.get("x")
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            raise ValueError("x: wake-sleep needs the data batch as the first argument (a tensor)")
        with torch.no_grad(), poutine.block(expose_types=["param"]):
            dream = poutine.trace(model).get_trace(None, num_samples=x.shape[0])
        dreamed_x = dream.nodes["_RETURN"]["value"]
        if not isinstance(dreamed_x, torch.Tensor) or dreamed_x.shape != x.shape:
            raise ValueError(
                "model: model(None, num_samples=n) must return n dreamed data points shaped like "
                f"the batch {tuple(x.shape)}, got {getattr(dreamed_x, 'shape', type(dreamed_x))}"
            )
        guide_trace = poutine.trace(poutine.replay(guide, trace=dream)).get_trace(
            dreamed_x, *args[1:], **{k: v for k, v in kwargs.items() if k != "x"})
        return -guide_trace.log_prob_sum()

