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

from ..._validation import check_number, check_positive_int, check_program
from ..params import preserved_rng
from ..simulation import find_data_site
from .annealing import STEP_FACTOR, Annealing, sigmoid_schedule

__all__ = ["BDMCResult", "MAX_CHAINS", "MAX_STEPS", "bdmc"]

#: The most intermediate distributions (each costs a transition per direction) and runs per unit.
MAX_STEPS, MAX_CHAINS, MAX_LEAPFROG = 100_000, 100_000, 1_000


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
    check_program("model", model)
    if guide is not None:
        check_program("guide", guide)
    num_steps = check_positive_int("num_steps", num_steps, maximum=MAX_STEPS)
    num_chains = check_positive_int("num_chains", num_chains, maximum=MAX_CHAINS)
    leapfrog_steps = check_positive_int("leapfrog_steps", leapfrog_steps, maximum=MAX_LEAPFROG)
    step_size = check_number("step_size", step_size, above=0)
    target_accept = check_number("target_accept", target_accept, above=0)
    if target_accept >= 1:
        raise ValueError(f"target_accept: expected a number in (0, 1), got {target_accept!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed: expected an int in [0, 2**32), got {seed!r}")
    if not isinstance(args, tuple):
        raise TypeError(f"args: expected a tuple, got {type(args).__name__}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError(f"kwargs: expected a dict or None, got {type(kwargs).__name__}")
    kwargs = dict(kwargs or {})
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
        forward, steps, acceptance = _forward(annealing, betas, num_chains, step_size,
                                              target_accept)
        reverse = _reverse(annealing, betas, truth, steps)
    log_chains = math.log(num_chains)
    return BDMCResult(lower=torch.logsumexp(forward, 0) - log_chains,
                      upper=log_chains - torch.logsumexp(reverse, 0), x=x, num_steps=num_steps,
                      per_point=annealing.point_index is not None,
                      forward_log_weights=forward, reverse_log_weights=reverse,
                      acceptance=acceptance)


def _forward(annealing: Annealing, betas: list[float], chains: int, step_size: float,
             target: float) -> tuple[torch.Tensor, list[float], float | None]:
    """Forward AIS: log weights, the step size used at each beta_t (t >= 1), mean acceptance."""
    z = annealing.start(chains)
    log_w = torch.zeros(chains, annealing.num_units, device=annealing.x.device)
    steps, rates = [], []
    for t in range(1, len(betas)):
        with torch.no_grad():
            base, joint = annealing.densities(z)
        log_w = log_w + (betas[t] - betas[t - 1]) * (joint - base)
        steps.append(step_size)
        if t < len(betas) - 1:  # the last transition would not change any weight
            z, rate = annealing.transition(z, betas[t], step_size)
            if rate is not None:
                rates.append(rate)
                step_size *= STEP_FACTOR if rate > target else 1.0 / STEP_FACTOR
    return log_w, steps, (sum(rates) / len(rates) if rates else None)


def _reverse(annealing: Annealing, betas: list[float], truth: dict[str, torch.Tensor],
             steps: list[float]) -> torch.Tensor:
    """Reverse AIS from an exact posterior draw: log weights whose mean estimates 1 / p(x)."""
    z = truth
    chains = next(iter(z.values())).shape[0]
    log_w = torch.zeros(chains, annealing.num_units, device=annealing.x.device)
    for t in range(len(betas) - 1, 0, -1):
        if t < len(betas) - 1:  # z is already an exact draw from f_T
            z, _ = annealing.transition(z, betas[t], steps[t - 1])
        with torch.no_grad():
            base, joint = annealing.densities(z)
        log_w = log_w - (betas[t] - betas[t - 1]) * (joint - base)
    return log_w
