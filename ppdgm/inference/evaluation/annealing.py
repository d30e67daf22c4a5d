"""Annealed importance sampling over the latents of any Pyro program, given its data.

The intermediate distributions join a normalized start f_0 (the prior p(z), or a guide
q(z | x)) to the unnormalized posterior p(x, z):

    log f_beta(z) = (1 - beta) log f_0(z) + beta log p(x, z),   0 = beta_0 < ... < beta_T = 1.

Each transition leaves f_beta invariant: a systematic Gibbs sweep over the coordinates of the
discrete latents (every value of one coordinate is scored in one batched run of the model), then
one Hamiltonian Monte Carlo step (``leapfrog_steps`` leapfrog steps and a Metropolis-Hastings
test) for the real-valued ones. Chains run as a plate left of the model's own, so one run of the
program scores them all.

When the data site and every latent lie in one plate and no latent is global, the data points
are independent given the parameters: each point then anneals on its own (its own acceptance
test, its own weights) and the estimates are per point. Otherwise the whole data set is one unit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro
import torch
from pyro import poutine
from torch.distributions import constraints

from ..._validation import check_number, check_positive_int, check_program, check_program_call
from ..simulation import is_draw, plate_nesting_of

__all__ = ["CHAIN_PLATE", "MAX_CHAINS", "MAX_STEPS", "Annealing", "anneal_forward",
           "anneal_reverse", "check_annealing_settings", "sigmoid_schedule"]

CHAIN_PLATE = "_annealing_chains"
#: The most intermediate distributions (each costs a transition per direction) and runs per unit.
MAX_STEPS, MAX_CHAINS, MAX_LEAPFROG = 100_000, 100_000, 1_000
#: The step size grows by this factor after a step whose acceptance beat the target, and shrinks
#: by it otherwise (the rule of Wu, Burda, Salakhutdinov and Grosse, 2017).
STEP_FACTOR = 1.02


def check_annealing_settings(*, model: object, guide: object, num_steps: object,
                             num_chains: object, leapfrog_steps: object, step_size: object,
                             target_accept: object, seed: object, args: object,
                             kwargs: object) -> dict[str, Any]:
    """Refuse a bad program, setting of the annealing or argument of the programs in one line;
    returns ``kwargs`` as a dict."""
    check_program("model", model)
    if guide is not None:
        check_program("guide", guide)
    check_positive_int("num_steps", num_steps, maximum=MAX_STEPS)
    check_positive_int("num_chains", num_chains, maximum=MAX_CHAINS)
    check_positive_int("leapfrog_steps", leapfrog_steps, maximum=MAX_LEAPFROG)
    check_number("step_size", step_size, above=0)
    target = check_number("target_accept", target_accept, above=0)
    if target >= 1:
        raise ValueError(f"target_accept: expected a number in (0, 1), got {target_accept!r}")
    return check_program_call(seed=seed, args=args, kwargs=kwargs)


def sigmoid_schedule(num_steps: int, sharpness: float = 4.0) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_T = 1 spaced by a scaled sigmoid, denser at
    both ends where f_beta changes fastest (Grosse, Ghahramani and Adams, 2015).

    Examples:
        >>> betas = sigmoid_schedule(4)
        >>> betas[0].item(), betas[-1].item(), bool((betas.diff() > 0).all())
        (0.0, 1.0, True)
    """
    s = torch.sigmoid(sharpness * torch.linspace(-1.0, 1.0, num_steps + 1, dtype=torch.float64))
    return (s - s[0]) / (s[-1] - s[0])


@dataclass
class _Site:
    event_dim: int
    discrete: bool
    values: torch.Tensor | None  # the support of one coordinate, for a discrete site


class Annealing:
    """The intermediate densities and transitions for one data set ``x`` of ``model``.

    ``layout`` is a trace of ``model(x, ...)`` (any latent values), which fixes the sites, their
    plates and whether the estimates are per point.
    """

    def __init__(self, model: Callable, guide: Callable | None, x: torch.Tensor, layout: Any,
                 args: tuple, kwargs: dict[str, Any], *, leapfrog_steps: int) -> None:
        self.model, self.guide, self.x = model, guide, x
        self.args, self.kwargs = args, kwargs
        self.leapfrog_steps = leapfrog_steps
        self.nesting = plate_nesting_of(layout)
        latents = {n: s for n, s in layout.nodes.items() if is_draw(s) and not s["is_observed"]}
        observed = [s for s in layout.nodes.values() if is_draw(s) and s["is_observed"]]
        if not latents:
            raise ValueError("model: it has no latent sample site to anneal over")
        self.sites = {name: _describe(name, site) for name, site in latents.items()}
        self.point_index, self.num_units = _point_layout(latents, observed, self.nesting)

    # -- densities -------------------------------------------------------------------------

    def full(self, name: str, value: torch.Tensor, chains: int) -> torch.Tensor:
        """``value`` with every batch dimension present, the chains' first, as a new tensor."""
        rank = self.nesting + 1 + self.sites[name].event_dim
        value = value.reshape((1,) * (rank - value.dim()) + tuple(value.shape))
        return value.expand(chains, *value.shape[1:]).clone()

    def densities(self, z: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(log f_0(z), log p(x, z)) per chain and unit, each of shape (chains, units)."""
        chains = next(iter(z.values())).shape[0]
        with pyro.plate(CHAIN_PLATE, chains, dim=-(self.nesting + 1)):
            trace = poutine.trace(poutine.condition(self.model, data=z)).get_trace(
                self.x, *self.args, **self.kwargs)
            joint = self._total(trace, chains, lambda name, site: True)
            if self.guide is None:
                return self._total(trace, chains, lambda name, site: name in z), joint
            base = poutine.trace(poutine.condition(self.guide, data=z)).get_trace(
                self.x, *self.args, **self.kwargs)
        return self._total(base, chains, lambda name, site: name in z), joint

    def log_f(self, z: dict[str, torch.Tensor], beta: float) -> torch.Tensor:
        base, joint = self.densities(z)
        return (1.0 - beta) * base + beta * joint

    def start(self, chains: int) -> dict[str, torch.Tensor]:
        """Draws from f_0: the prior given x (or the guide), ``chains`` per unit."""
        with torch.no_grad(), pyro.plate(CHAIN_PLATE, chains, dim=-(self.nesting + 1)):
            program = self.model if self.guide is None else self.guide
            trace = poutine.trace(program).get_trace(self.x, *self.args, **self.kwargs)
        missing = [name for name in self.sites if name not in trace.nodes]
        if missing:
            raise ValueError(f"guide: it samples none of the model's latent site(s) {missing}")
        return {name: self.full(name, trace.nodes[name]["value"], chains) for name in self.sites}

    def _total(self, trace: Any, chains: int, keep: Callable[[str, Any], bool]) -> torch.Tensor:
        total = torch.zeros(chains, self.num_units, device=self.x.device)
        for name, site in trace.nodes.items():
            if is_draw(site) and keep(name, site):
                total = total + self.per_unit(site["fn"].log_prob(site["value"]), chains)
        return total

    def per_unit(self, batch_value: torch.Tensor, chains: int) -> torch.Tensor:
        """Sum a tensor of batch shape over everything but the chains and the points."""
        full = batch_value.reshape((1,) * (self.nesting + 1 - batch_value.dim())
                                   + tuple(batch_value.shape))
        full = full.expand(chains, *full.shape[1:])
        if self.point_index is None:
            return full.reshape(chains, -1).sum(-1, keepdim=True)
        moved = full.movedim(self.point_index, 1)
        moved = moved.expand(chains, self.num_units, *moved.shape[2:])
        return moved.reshape(chains, self.num_units, -1).sum(-1)

    # -- transitions -----------------------------------------------------------------------

    def transition(self, z: dict[str, torch.Tensor], beta: float,
                   step_size: float) -> tuple[dict[str, torch.Tensor], float | None]:
        """One move that leaves f_beta invariant; also the HMC step's acceptance rate."""
        z = self.gibbs_sweep(z, beta)
        if not any(not s.discrete for s in self.sites.values()):
            return z, None
        return self.hmc_step(z, beta, step_size)

    @torch.no_grad()
    def gibbs_sweep(self, z: dict[str, torch.Tensor], beta: float) -> dict[str, torch.Tensor]:
        z = dict(z)
        for name, site in self.sites.items():
            if not site.discrete:
                continue
            value = z[name]
            chains, k = value.shape[0], len(site.values)
            dims = [d for d in range(1, value.dim()) if d != self.point_index]
            for coordinate in itertools.product(*(range(value.shape[d]) for d in dims)):
                index: list[Any] = [slice(None)] * value.dim()
                for d, i in zip(dims, coordinate):
                    index[d] = i
                # Every value of the coordinate in one run: the candidates stacked as chains.
                candidates = value.repeat(k, *([1] * (value.dim() - 1)))
                blocks = candidates.view(k, chains, *value.shape[1:])
                for j in range(k):
                    blocks[j][tuple(index)] = site.values[j]
                scored = {**{n: v.repeat(k, *([1] * (v.dim() - 1))) for n, v in z.items()},
                          name: candidates}
                log_f = self.log_f(scored, beta).view(k, chains, self.num_units)
                pick = torch.distributions.Categorical(logits=log_f.movedim(0, -1)).sample()
                chosen = site.values.to(value.device)[pick]  # (chains, units)
                value = value.clone()
                value[tuple(index)] = chosen if self.point_index is not None else chosen[:, 0]
                z[name] = value
        return z

    def hmc_step(self, z: dict[str, torch.Tensor], beta: float,
                 step_size: float) -> tuple[dict[str, torch.Tensor], float]:
        real = [n for n, s in self.sites.items() if not s.discrete]
        q = {n: z[n].detach() for n in real}
        chains = q[real[0]].shape[0]
        p = {n: torch.randn_like(v) for n, v in q.items()}
        log_f, grad = self._log_f_and_grad(z, q, beta)
        h0 = -log_f + self._kinetic(p, chains)
        new_q = dict(q)
        new_p = {n: p[n] + 0.5 * step_size * grad[n] for n in real}
        for step in range(self.leapfrog_steps):
            new_q = {n: new_q[n] + step_size * new_p[n] for n in real}
            new_log_f, grad = self._log_f_and_grad(z, new_q, beta)
            scale = step_size if step < self.leapfrog_steps - 1 else 0.5 * step_size
            new_p = {n: new_p[n] + scale * grad[n] for n in real}
        h1 = -new_log_f + self._kinetic(new_p, chains)
        log_accept = torch.nan_to_num(h0 - h1, nan=-math.inf)
        accept = torch.rand_like(log_accept).log() < log_accept
        moved = dict(z)
        for n in real:
            mask = self._unit_mask(accept, n, q[n])
            moved[n] = torch.where(mask, new_q[n], q[n])
        return moved, accept.double().mean().item()

    def _log_f_and_grad(self, z: dict[str, torch.Tensor], q: dict[str, torch.Tensor],
                        beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.enable_grad():
            leaves = {n: v.detach().requires_grad_() for n, v in q.items()}
            log_f = self.log_f({**z, **leaves}, beta)
            names = list(leaves)
            grads = torch.autograd.grad(log_f.sum(), [leaves[n] for n in names])
        return log_f.detach(), dict(zip(names, grads))

    def _kinetic(self, p: dict[str, torch.Tensor], chains: int) -> torch.Tensor:
        total = 0.0
        for name, value in p.items():
            event = self.sites[name].event_dim
            squared = value.pow(2).sum(tuple(range(-event, 0))) if event else value.pow(2)
            total = total + 0.5 * self.per_unit(squared, chains)
        return total

    def _unit_mask(self, accept: torch.Tensor, name: str, like: torch.Tensor) -> torch.Tensor:
        shape = [1] * like.dim()
        shape[0] = accept.shape[0]
        if self.point_index is not None:
            shape[self.point_index] = accept.shape[1]
        return accept.reshape(shape)


def _describe(name: str, site: dict) -> _Site:
    fn = site["fn"]
    base = fn
    while isinstance(base, torch.distributions.Independent):
        base = base.base_dist
    if getattr(base, "has_enumerate_support", False) and base.event_shape == ():
        return _Site(fn.event_dim, True, base.enumerate_support(expand=False).reshape(-1))
    support = fn.support
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    if isinstance(support, type(constraints.real)):
        return _Site(fn.event_dim, False, None)
    raise ValueError(f"model: latent site {name!r} has support {fn.support}; annealing moves "
                     "real-valued latents (by HMC) and discrete ones with a per-coordinate "
                     "support such as Bernoulli or Categorical (by Gibbs)")


def _point_layout(latents: dict[str, dict], observed: list[dict],
                  nesting: int) -> tuple[int | None, int]:
    """The position of the data points' plate in a full value (chains first) and their number,
    when the data and every latent lie in it; else (None, 1)."""
    for frame in (f for s in observed for f in s["cond_indep_stack"] if f.dim is not None):
        if frame.size > 1 and all(frame in s["cond_indep_stack"] for s in latents.values()):
            return nesting + 1 + frame.dim, frame.size
    return None, 1


def anneal_forward(annealing: Annealing, betas: list[float], chains: int, step_size: float,
                   target: float) -> tuple[torch.Tensor, list[float], float | None]:
    """Forward AIS from f_0: log weights (chains, units) whose mean estimates the normalizer of
    p(x, z), which is p(x); the step size used at each beta_t (t >= 1); the mean acceptance.
    The step size is multiplied by :data:`STEP_FACTOR` after a step whose acceptance beat
    ``target`` and divided by it otherwise."""
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


def anneal_reverse(annealing: Annealing, betas: list[float], truth: dict[str, torch.Tensor],
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
