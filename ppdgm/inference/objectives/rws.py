"""Reweighted wake-sleep (Bornschein and Bengio 2015), per data point, so it works on minibatches.

With K particles z_k ~ q(z | x) and normalized importance weights w_k = softmax_k(log p(x, z_k) -
log q(z_k | x)), taken separately for every data point:

* the model climbs sum_k w_k log p(x, z_k), which is exactly the gradient of the IWAE bound
  with respect to the model's parameters;
* the guide climbs sum_k w_k log q(z_k | x) (the wake-phase update, a step on KL(p(z|x) || q)),
  and/or log q(z | x) on dreams (x, z) ~ p (the sleep-phase update).

Pyro's own ``ReweightedWakeSleep`` normalizes the weights over the whole batch, which is only
right for a batch of one data point; here they are normalized per data point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ..._validation import check_choice, check_label, check_positive_int
from ..importance import check_importance_pair, nesting_of, particle_log_probs
from .base import MultiPlayerObjective
from .wake_sleep import WakeSleep

__all__ = ["ReweightedWakeSleep", "GUIDE_UPDATES"]

GUIDE_UPDATES = ("wake", "sleep", "wake+sleep")


class ReweightedWakeSleep(MultiPlayerObjective):
    """RWS losses for two players, ``"model"`` and ``"guide"``.

    Both players report the negative IWAE bound of the batch as their loss value (a number you
    can read: it falls as the model improves); the gradients are RWS's. Pair it with
    ``Player("model", owns="model")`` and ``Player("guide", owns="guide")``.

    Args:
        num_particles: K, importance samples per data point.
        guide_update: ``"wake"`` (default), ``"sleep"`` or ``"wake+sleep"``.
        data_plate: the name of the plate over data points.

    Examples:
        >>> from ppdgm.models.sbn import SigmoidBeliefNet
        >>> sbn = SigmoidBeliefNet(x_shape=(6,), layers=(3,))
        >>> losses = ReweightedWakeSleep(num_particles=5)(sbn.model, sbn.guide, sbn.sample(4))
        >>> sorted(losses)
        ['guide', 'model']
    """

    player_names = ("model", "guide")

    def __init__(self, num_particles: int = 5, guide_update: str = "wake",
                 data_plate: str = "data") -> None:
        self.num_particles = check_positive_int("num_particles", num_particles)
        self.guide_update = check_choice("guide_update", guide_update, GUIDE_UPDATES)
        self.data_plate = check_label("data_plate", data_plate)
        self._nesting: int | None = None

    def player_loss(self, player: str, model: Callable[..., Any], guide: Callable[..., Any],
                    *args: Any, **kwargs: Any) -> torch.Tensor:
        """The loss of ``player`` (``"model"`` or ``"guide"``) on this batch."""
        if player not in self.player_names:
            raise ValueError(f"player: expected one of {self.player_names}, got {player!r}")
        if self._nesting is None:
            # Once, with the same traces: a model with a likelihood, a guide for its latents.
            self._nesting = nesting_of(*check_importance_pair(model, guide, *args, **kwargs))
        log_p, log_q, scale = particle_log_probs(
            model, guide, *args, num_particles=self.num_particles,
            max_plate_nesting=self._nesting, data_plate=self.data_plate, **kwargs,
        )
        log_w = (log_p - log_q).detach()
        weights = torch.softmax(log_w, dim=0)  # per data point: softmax over the particles
        bound = scale * (torch.logsumexp(log_w, dim=0) - math.log(self.num_particles)).sum()
        if player == "model":
            surrogate = -scale * (weights * log_p).sum()
        else:
            surrogate = torch.zeros((), device=log_p.device)
            if "wake" in self.guide_update:
                surrogate = surrogate - scale * (weights * log_q).sum()
            if "sleep" in self.guide_update:
                surrogate = surrogate + WakeSleep.sleep(model, guide, *args, **kwargs)
        return -bound + (surrogate - surrogate.detach())
