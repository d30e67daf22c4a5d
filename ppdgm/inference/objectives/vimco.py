"""VIMCO (Mnih and Rezende 2016): the multi-sample bound for discrete latents, with per-particle
leave-one-out baselines.

With K particles z_k ~ q(z | x) and L = log (1/K) sum_k w_k, the gradient is

    sum_k (L - L_{-k}) grad log q(z_k | x)  +  sum_k w~_k grad log w_k,

where L_{-k} replaces w_k by the geometric mean of the other K - 1 weights and w~ are the
normalized weights. The first term is a score-function estimator whose baseline for each particle
is built from the others, so no learned baseline is needed; both terms are taken per data point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ..._validation import check_label, check_positive_int
from ..importance import check_importance_pair, nesting_of, particle_log_probs

__all__ = ["VIMCO", "leave_one_out_bounds"]


def leave_one_out_bounds(log_w: torch.Tensor) -> torch.Tensor:
    """L_{-k} for every particle k: log-mean-exp of the weights with w_k replaced by the
    geometric mean of the others. ``log_w`` has shape ``(K, ...)`` with K >= 2.

    Examples:
        >>> leave_one_out_bounds(torch.zeros(3, 2))  # equal weights: every L_{-k} is log 1
        tensor([[0., 0.],
                [0., 0.],
                [0., 0.]])
    """
    k = log_w.shape[0]
    if k < 2:
        raise ValueError(f"log_w: leave-one-out needs at least 2 particles, got {k}")
    others = (log_w.sum(0, keepdim=True) - log_w) / (k - 1)  # (K, ...)
    # Row k of `swapped` is log_w with entry k replaced by others[k].
    swapped = log_w.unsqueeze(0).expand(k, *log_w.shape).clone()
    index = torch.arange(k, device=log_w.device)
    swapped[index, index] = others
    return torch.logsumexp(swapped, dim=1) - math.log(k)


class VIMCO:
    """The VIMCO loss of a batch: one player, a differentiable surrogate whose value is the
    negative IWAE(K) bound and whose gradient is VIMCO's.

    Every latent site of the guide must be non-reparameterizable (Bernoulli, Categorical...):
    reparameterizable ones are better served by :class:`~ppdgm.inference.objectives.IWAE`.

    Examples:
        >>> from ppdgm.models.sbn import SigmoidBeliefNet
        >>> sbn = SigmoidBeliefNet(x_shape=(6,), layers=(3,))
        >>> VIMCO(num_particles=5)(sbn.model, sbn.guide, sbn.sample(4)).requires_grad
        True
    """

    def __init__(self, num_particles: int = 5, data_plate: str = "data") -> None:
        check_positive_int("num_particles", num_particles, minimum=2)
        self.num_particles = num_particles
        self.data_plate = check_label("data_plate", data_plate)
        self._nesting: int | None = None

    def __call__(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                 **kwargs: Any) -> torch.Tensor:
        if self._nesting is None:
            # Once, with the same traces: a model with a likelihood, a guide for its latents.
            self._nesting = nesting_of(*check_importance_pair(model, guide, *args, **kwargs))
        log_p, log_q, scale = particle_log_probs(
            model, guide, *args, num_particles=self.num_particles,
            max_plate_nesting=self._nesting, data_plate=self.data_plate, reparam=False, **kwargs,
        )
        log_w = log_p - log_q
        bound = torch.logsumexp(log_w, dim=0) - math.log(self.num_particles)  # (batch,)
        signal = (bound.detach().unsqueeze(0) - leave_one_out_bounds(log_w.detach()))
        surrogate = scale * (bound.sum() + (signal * log_q).sum())
        return -scale * bound.sum().detach() - (surrogate - surrogate.detach())
