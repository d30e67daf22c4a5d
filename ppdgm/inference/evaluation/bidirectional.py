"""Bidirectional Monte Carlo (Grosse, Ghahramani and Adams, 2015): log p(x) between two bounds.

On data the model simulates, the latents that generated ``x`` are an exact draw from p(z | x).
Annealed importance sampling (:mod:`.annealing`) run forward, from the prior (or a guide) to
the posterior, gives weights whose mean is p(x): the log of their average is a stochastic lower
bound on log p(x). Run in reverse, started at the simulated latents and annealed back to the
prior, it gives weights whose mean is 1 / p(x): minus the log of their average is a stochastic
upper bound. log p(x) lies between them, and their gap bounds the error of either (and of any
estimator that sits between them, such as an importance-sampled one) on data like these. The gap
shrinks towards zero as the number of intermediate distributions grows.

"Stochastic" means in expectation and with high probability: a log-average of few, very uneven
weights can overshoot by chance, which more chains make rare.
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
from ..simulation import find_data_site
from .annealing import (
    Annealing,
    anneal_forward,
    anneal_reverse,
    check_annealing_settings,
    sigmoid_schedule,
)

__all__ = ["BDMCResult", "bdmc"]


@dataclass
class BDMCResult:
    """What :func:`bdmc` found, in nats.

    Attributes:
        lower: the forward-AIS lower bound per unit: per data point when the points anneal
            independently (``per_point``), else one value for the whole data set.
        upper: the reverse-AIS upper bound, laid out like ``lower``.
        x: the simulated data set the bounds are for.
        num_steps: the number of intermediate distributions.
        per_point: whether the units are the data points.
        forward_log_weights, reverse_log_weights: the runs' log weights, (chains, units); the
            reverse weights estimate 1 / p(x).
        acceptance: the HMC steps' mean acceptance rate in the forward run (``None`` with no
            real-valued latent).
    """

    lower: torch.Tensor
    upper: torch.Tensor
    x: torch.Tensor
    num_steps: int
    per_point: bool
    forward_log_weights: torch.Tensor
    reverse_log_weights: torch.Tensor
    acceptance: float | None

    @property
    def gap(self) -> torch.Tensor:
        """upper - lower per unit: how far either bound can be from log p(x)."""
        return self.upper - self.lower

    def summary(self) -> dict[str, Any]:
        """Plain numbers for JSON: the bounds and the gap averaged over units."""
        return {"lower": self.lower.mean().item(), "upper": self.upper.mean().item(),
                "gap": self.gap.mean().item(), "units": self.lower.numel(),
                "per_point": self.per_point, "num_steps": self.num_steps,
                "acceptance": self.acceptance}


def bdmc(model: Callable, guide: Callable | None = None, *, num_steps: int = 100,
         num_chains: int = 16, args: tuple = (), kwargs: dict[str, Any] | None = None,
         leapfrog_steps: int = 5, step_size: float = 0.1, target_accept: float = 0.65,
         seed: int = 0) -> BDMCResult:
    """Sandwich log p(x) of one data set simulated from ``model`` between two AIS bounds.

    Args:
        model: a Pyro model with ppdgm's signature: ``model(None, *args, **kwargs)`` simulates a
            data set, ``model(x, *args, **kwargs)`` scores it. Its latents are real-valued (moved
            by HMC) or discrete with a per-coordinate support (Bernoulli, Categorical; moved by
            Gibbs).
        guide: start the forward run from ``guide(x, ...)`` instead of the prior; a guide close
            to the posterior needs fewer steps. The reverse run ends at it too.
        num_steps: intermediate distributions (the knob: the gap shrinks as it grows).
        num_chains: independent runs per unit in each direction.
        leapfrog_steps: leapfrog steps per HMC step.
        step_size: the HMC step size at the start; it is adapted during the forward run towards
            ``target_accept`` and replayed in the reverse run.
        target_accept: the HMC acceptance rate the step size is adapted towards.
        args: further positional arguments of the model (and the guide).
        kwargs: keyword arguments of both (``{"num_samples": n}``: n data points for ppdgm's
            models).
        seed: seeds the simulation and both runs (the global RNG is restored after).

    Examples:
        >>> import pyro.distributions as dist
        >>> def model(x=None):
        ...     with pyro.plate("data", 3):
        ...         z = pyro.sample("z", dist.Normal(0.0, 1.0))
        ...         return pyro.sample("x", dist.Normal(z, 0.5), obs=x)
        >>> result = bdmc(model, num_steps=50, num_chains=8)
        >>> exact = dist.Normal(0.0, 1.25 ** 0.5).log_prob(result.x)
        >>> bool((result.lower - 0.05 <= exact).all() and (exact <= result.upper + 0.05).all())
        True
    """
    kwargs = check_annealing_settings(model=model, guide=guide, num_steps=num_steps,
                                      num_chains=num_chains, leapfrog_steps=leapfrog_steps,
                                      step_size=step_size, target_accept=target_accept, seed=seed,
                                      args=args, kwargs=kwargs)
    with preserved_rng():
        pyro.set_rng_seed(seed)
        with torch.no_grad():
            prior = poutine.trace(model).get_trace(None, *args, **kwargs)
        x = prior.nodes[find_data_site(model, prior, args, kwargs)]["value"]
        with torch.no_grad():
            layout = poutine.trace(model).get_trace(x, *args, **kwargs)
        annealing = Annealing(model, guide, x, layout, args, kwargs,
                              leapfrog_steps=leapfrog_steps)
        truth = {name: annealing.full(name, prior.nodes[name]["value"], num_chains)
                 for name in annealing.sites}
        betas = sigmoid_schedule(num_steps).tolist()
        forward, steps, acceptance = anneal_forward(annealing, betas, num_chains, step_size,
                                                    target_accept)
        reverse = anneal_reverse(annealing, betas, truth, steps)
    log_chains = math.log(num_chains)
    return BDMCResult(lower=torch.logsumexp(forward, 0) - log_chains,
                      upper=log_chains - torch.logsumexp(reverse, 0), x=x, num_steps=num_steps,
                      per_point=annealing.point_index is not None,
                      forward_log_weights=forward, reverse_log_weights=reverse,
                      acceptance=acceptance)
