"""log p(x) of given data by annealed importance sampling over any Pyro program's latents.

Forward AIS (:mod:`.annealing`) from the prior, or from a guide, to the posterior given ``x``:
the average of its weights is an unbiased estimate of p(x), so the log of it is a stochastic
lower bound on log p(x) that tightens as the number of intermediate distributions grows. On data
the model simulates, :func:`~ppdgm.inference.evaluation.bidirectional.bdmc` adds the upper bound
that says how tight it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro
import torch
from pyro import poutine

from ..params import preserved_rng
from .annealing import (
    Annealing,
    anneal_forward,
    check_annealing_settings,
    sigmoid_schedule,
)

__all__ = ["AISEstimate", "ais_log_marginal"]


@dataclass
class AISEstimate:
    """Forward AIS's estimate of log p(x), in nats.

    Attributes:
        log_px: the log of the mean weight per unit (per data point when the points anneal
            independently, else one value for the data set): a stochastic lower bound.
        log_weights: the runs' log weights, (chains, units).
        per_point: whether the units are the data points.
        acceptance: the HMC steps' mean acceptance rate (``None`` with no real-valued latent).
    """

    log_px: torch.Tensor
    log_weights: torch.Tensor
    per_point: bool
    acceptance: float | None


def ais_log_marginal(model: Callable, x: torch.Tensor, guide: Callable | None = None, *,
                     num_steps: int = 500, num_chains: int = 16, args: tuple = (),
                     kwargs: dict[str, Any] | None = None, leapfrog_steps: int = 5,
                     step_size: float = 0.1, target_accept: float = 0.65,
                     seed: int = 0) -> AISEstimate:
    """Estimate log p(x) of ``x`` under ``model(x, *args, **kwargs)`` by forward AIS.

    The settings are those of :func:`~ppdgm.inference.evaluation.bidirectional.bdmc`.

    Examples:
        >>> import pyro.distributions as dist
        >>> def model(x=None):
        ...     with pyro.plate("data", 2):
        ...         z = pyro.sample("z", dist.Normal(0.0, 1.0))
        ...         return pyro.sample("x", dist.Normal(z, 0.5), obs=x)
        >>> x = torch.tensor([0.3, -1.2])
        >>> estimate = ais_log_marginal(model, x, num_steps=100, num_chains=32)
        >>> exact = dist.Normal(0.0, 1.25 ** 0.5).log_prob(x)
        >>> bool((estimate.log_px - exact).abs().max() < 0.05)
        True
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a tensor of data, got {type(x).__name__}")
    kwargs = check_annealing_settings(model=model, guide=guide, num_steps=num_steps,
                                      num_chains=num_chains, leapfrog_steps=leapfrog_steps,
                                      step_size=step_size, target_accept=target_accept, seed=seed,
                                      args=args, kwargs=kwargs)
    with preserved_rng():
        pyro.set_rng_seed(seed)
        with torch.no_grad():
            layout = poutine.trace(model).get_trace(x, *args, **kwargs)
        annealing = Annealing(model, guide, x, layout, args, kwargs, leapfrog_steps=leapfrog_steps)
        log_w, _, acceptance = anneal_forward(annealing, sigmoid_schedule(num_steps).tolist(),
                                              num_chains, step_size, target_accept)
    return AISEstimate(torch.logsumexp(log_w, 0) - math.log(num_chains), log_w,
                       annealing.point_index is not None, acceptance)
