"""Estimates computed from a trained model/guide pair.

:func:`log_importance_weights` returns, for every data point, log p(x, z) - log q(z | x) with
z ~ q(z | x): its mean is the ELBO, and its log-mean-exp over K draws is an importance-sampled
lower bound of log p(x) that tightens as K grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro.poutine as poutine
import torch

from .._validation import check_positive_int

__all__ = ["log_importance_weights", "estimate_elbo", "Estimate"]


@dataclass(frozen=True)
class Estimate:
    """A mean over data points with its standard error (both in nats per data point)."""

    mean: float
    stderr: float
    n: int


def log_importance_weights(model: Callable[..., Any], guide: Callable[..., Any],
                           x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """One draw z ~ q(z | x) per data point; returns log p(x, z) - log q(z | x), shape (batch,).

    Sites whose log-density has a leading batch dimension contribute per data point; sites with
    scalar log-densities (global latents or parameters) are shared equally across the batch.

    Example:
        >>> from ppdgm.models.linear_gaussian import LinearGaussian
        >>> m = LinearGaussian()
        >>> log_importance_weights(m.model, m.guide, m.sample(5)).shape
        torch.Size([5])
    """
    batch = x.shape[0]
    guide_trace = poutine.trace(guide).get_trace(x, *args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x, *args, **kwargs)
    return _per_example(model_trace, batch) - _per_example(guide_trace, batch)


def _per_example(trace: poutine.Trace, batch: int) -> torch.Tensor:
    trace.compute_log_prob()
    total = None
    for name, site in trace.nodes.items():
        if site["type"] != "sample":
            continue
        log_p = site["log_prob"]
        if log_p.dim() == 0:
            log_p = log_p.expand(batch) / batch
        elif log_p.shape[0] != batch or log_p.dim() > 1:
            log_p = log_p.reshape(batch, -1).sum(-1) if log_p.shape[0] == batch else None
            if log_p is None:
                raise ValueError(
                    f"model: site {name!r} has log-density shape {tuple(site['log_prob'].shape)}, "
                    f"which does not split over a batch of {batch}"
                )
        total = log_p if total is None else total + log_p
    if total is None:
        raise ValueError("model: the trace holds no sample site")
    return total


@torch.no_grad()
def estimate_elbo(model: Callable[..., Any], guide: Callable[..., Any], x: torch.Tensor, *,
                  num_particles: int = 1, batch_size: int = 1024) -> Estimate:
    """The ELBO per data point of ``x`` (averaged over ``num_particles`` draws), with its
    standard error across data points.

    Example:
        >>> from ppdgm.models.linear_gaussian import LinearGaussian
        >>> m = LinearGaussian()
        >>> x = m.sample(100)
        >>> est = estimate_elbo(m.model, m.guide, x, num_particles=10)
        >>> est.mean <= m.log_marginal(x).mean().item()
        True
    """
    check_positive_int("num_particles", num_particles)
    check_positive_int("batch_size", batch_size)
    if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[0] == 0:
        raise ValueError("x: expected a tensor with at least one data point")
    values = []
    for chunk in x.split(batch_size):
        draws = torch.stack([log_importance_weights(model, guide, chunk)
                             for _ in range(num_particles)])
        values.append(draws.mean(0))
    per_point = torch.cat(values).double()
    n = per_point.numel()
    stderr = per_point.std().item() / math.sqrt(n) if n > 1 else float("nan")
    return Estimate(per_point.mean().item(), stderr, n)
