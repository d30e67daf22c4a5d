"""What the gradient-informed discrete moves share: the joint log density of a Pyro program per
chain, its gradient in the discrete state, and a Metropolis-Hastings kernel around a proposal.

A discrete state is relaxed only to be differentiated: each Bernoulli site's value (0 or 1) and
each ``OneHotCategorical`` site's one-hot vector is handed to the model as a floating-point leaf,
the model's joint log density f is differentiated in it, and

    delta(v, k) = grad f(x) . (x with variable v set to option k  -  x)

is the first-order estimate of f(x with v = k) - f(x) for every variable v and option k (zero at
the current option). A proposal built from these estimates (:mod:`.gwg`, :mod:`.dmala`) is then
corrected exactly: the model is run at the proposed state and the move is accepted with the
Metropolis-Hastings probability of the true densities and both directions' proposal
probabilities, so the chain's invariant distribution is the model's posterior, however rough the
linearisation.

Every site is a tensor of variables, ``(units, variables, options)`` once flattened; a *unit* is
one vectorized chain (the whole state of a chain is accepted or rejected together). The model
must let its discrete values enter through arithmetic (``z @ w``, ``loc * z``), which is how
gradients reach them: a ``Categorical`` index used to index a tensor carries no gradient and is
refused, with the two ways out (``OneHotCategorical``, or :class:`~.gibbs.Gibbs` for that site).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import pyro
import pyro.poutine as poutine
import torch

from ..._validation import check_labels
from .base import DiscreteKernel
from .gibbs import GibbsPlan, SitePlan, gibbs_plan

__all__ = ["GradientKernel", "MoveInfo", "SiteLayout", "Proposal", "log_density", "options_of",
           "site_layouts", "state_deltas", "with_options"]


class SiteLayout(NamedTuple):
    """One site as a gradient move sees it.

    Attributes:
        name: the site.
        one_hot: ``True`` for a one-hot vector per variable (``OneHotCategorical``), ``False``
            for a Bernoulli unit per element.
        options: K, the number of values each variable takes (2 for a Bernoulli unit).
    """

    name: str
    one_hot: bool
    options: int


class Proposal(NamedTuple):
    """A proposed move: the new options of every site and the forward proposal's log-probability
    per unit."""

    options: list[torch.Tensor]
    log_q: torch.Tensor


class MoveInfo(NamedTuple):
    """What a gradient move did in one step.

    Attributes:
        accept_prob: the Metropolis-Hastings acceptance probability, averaged over units.
        step_size: the step size the proposal used (``nan`` for a proposal without one).
    """

    accept_prob: float
    step_size: float


def _layout(site: SitePlan) -> SiteLayout:
    support = site.support
    if site.base_event_rank == 0 and support.numel() == 2 and bool(
            (support.flatten() == torch.tensor([0.0, 1.0], dtype=support.dtype)).all()):
        return SiteLayout(site.name, False, 2)
    if site.base_event_rank == 1 and support.shape[0] == support.shape[1] and bool(
            (support == torch.eye(support.shape[0], dtype=support.dtype)).all()):
        return SiteLayout(site.name, True, support.shape[0])
    kind = "a Categorical index" if site.base_event_rank == 0 else "not a one-hot vector"
    raise ValueError(
        f"sites: {site.name!r} is {kind}, which a gradient move cannot relax; write it as "
        "Bernoulli units or as pyro.distributions.OneHotCategorical whose vector enters the "
        "model through arithmetic, or sample that site by Gibbs")


def site_layouts(plan: GibbsPlan) -> tuple[SiteLayout, ...]:
    """The :class:`SiteLayout` of every site of a Gibbs plan, or a ``ValueError`` naming a site
    that no gradient can reach."""
    return tuple(_layout(site) for site in plan.sites)


def options_of(value: torch.Tensor, layout: SiteLayout, units: int) -> torch.Tensor:
    """A site's value as the option index of each variable, ``(units, variables)``."""
    if layout.one_hot:
        return value.reshape(units, -1, layout.options).argmax(-1)
    return value.reshape(units, -1).long()


def with_options(options: torch.Tensor, layout: SiteLayout, like: torch.Tensor) -> torch.Tensor:
    """The site's value with these option indices, shaped and typed like ``like``."""
    if layout.one_hot:
        value = torch.nn.functional.one_hot(options, layout.options)
    else:
        value = options
    return value.to(like.dtype).reshape(like.shape)


def _per_unit(log_prob: torch.Tensor, nesting: int, units: int) -> torch.Tensor:
    """A site's log-density summed to one number per unit (chain), the chains at ``-nesting``."""
    if nesting == 0 or log_prob.dim() < nesting:
        return log_prob.sum().expand(units)
    chain_dim = log_prob.dim() - nesting
    moved = log_prob.movedim(chain_dim, 0)
    return moved.reshape(moved.shape[0], -1).sum(1).expand(units)


def log_density(model: Callable, values: dict[str, torch.Tensor], plan: GibbsPlan,
                args: tuple, kwargs: dict) -> torch.Tensor:
    """The joint log density of ``model`` at ``values``, one number per unit: every sample site,
    observed ones and ``pyro.factor`` included, summed over everything but the chain dimension.
    ``model`` must already carry the chain plate when the plan has chains."""
    units = plan.chains or 1
    trace = poutine.trace(poutine.condition(model, data=values)).get_trace(*args, **kwargs)
    trace.compute_log_prob()
    nesting = plan.nesting if plan.chains else 0
    total = None
    for site in trace.nodes.values():
        if site["type"] == "sample":
            term = _per_unit(site["log_prob"], nesting, units)
            total = term if total is None else total + term
    assert total is not None
    return total


def state_deltas(model: Callable, values: dict[str, torch.Tensor], plan: GibbsPlan,
                 layouts: Sequence[SiteLayout], args: tuple, kwargs: dict
                 ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The log density per unit at ``values`` and, for every site, the first-order estimates
    ``delta`` of each option's change to it, shaped ``(units, variables, options)``."""
    units = plan.chains or 1
    leaves = {layout.name: values[layout.name].detach().clone().requires_grad_(True)
              for layout in layouts}
    with torch.enable_grad():
        f = log_density(model, {**values, **leaves}, plan, args, kwargs)
        grads = torch.autograd.grad(f.sum(), list(leaves.values()), allow_unused=True)
    deltas = []
    for layout, grad in zip(layouts, grads):
        value = leaves[layout.name].detach()
        grad = torch.zeros_like(value) if grad is None else grad
        if layout.one_hot:
            g = grad.reshape(units, -1, layout.options)
            here = (g * value.reshape(g.shape)).sum(-1, keepdim=True)
            deltas.append(g - here)
        else:
            g, x = grad.reshape(units, -1, 1), value.reshape(units, -1, 1)
            option = torch.arange(2, dtype=g.dtype, device=g.device)
            deltas.append(g * (option - x))
    return f.detach(), deltas


class GradientKernel(DiscreteKernel):
    """Metropolis-Hastings over a model's Bernoulli and one-hot sites with a proposal informed by
    the gradient of the joint log density (see the module docstring). Subclasses give the
    proposal: :meth:`_propose` draws a move and :meth:`_log_q` scores one.

    Args:
        model: a Pyro model whose latent sites are Bernoulli or ``OneHotCategorical`` (others
            conditioned away), its data through its arguments.
        sites: the sites to move (default: every discrete latent site).
        chains: vectorized chains, as for :class:`~.gibbs.Gibbs`; each chain accepts or rejects
            its whole state.
    """

    def __init__(self, model: Callable, sites: Sequence[str] | None = None,
                 chains: int | None = None) -> None:
        if not callable(model):
            raise TypeError(f"model: expected a callable Pyro model, got {type(model).__name__}")
        super().__init__(chains)
        self.model = model
        self.sites = None if sites is None else check_labels("sites", sites)
        self.plan: GibbsPlan | None = None
        self.layouts: tuple[SiteLayout, ...] = ()
        self._args: tuple = ()
        self._kwargs: dict[str, Any] = {}
        self._cache: tuple[dict[str, torch.Tensor], torch.Tensor, list[torch.Tensor]] | None = None
        self._accept_sum: torch.Tensor | float = 0.0
        self._accept_count = 0
        self._last = MoveInfo(math.nan, math.nan)

    # --------------------------------------------------------------- the kernel

    def setup(self, warmup_steps: int, *args, **kwargs) -> None:
        self._args, self._kwargs = args, kwargs
        self.check_data(args, kwargs)
        with pyro.validation_enabled(True):
            self.plan = gibbs_plan(self.model, args, kwargs, sites=self.sites, chains=self.chains)
        self.layouts = site_layouts(self.plan)
        self._cache, self._accept_sum, self._accept_count = None, 0.0, 0
        super().setup(warmup_steps, *args, **kwargs)

    def clear_cache(self) -> None:
        """Forget the log density and gradient kept from the last step (for a caller that
        changed what the model is conditioned on, as :class:`~.compound.Compound` does)."""
        self._cache = None

    def _run(self) -> Callable:
        assert self.plan is not None
        if self.plan.chains is None:
            return self.model
        plan = self.plan

        def chained(*args: Any, **kwargs: Any) -> Any:
            with pyro.plate("_gibbs_chains", plan.chains, dim=-plan.nesting):
                return self.model(*args, **kwargs)
        return chained

    def _init_values(self, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            trace = poutine.trace(self._run()).get_trace(*args, **kwargs)
        return {layout.name: trace.nodes[layout.name]["value"].detach() for layout in self.layouts}

    def _at(self, values: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        cached = self._cache
        if cached is not None and all(cached[0][k] is values[k] for k in cached[0]):
            return cached[1], cached[2]
        assert self.plan is not None
        return state_deltas(self._run(), values, self.plan, self.layouts, self._args, self._kwargs)

    def _sweep(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        assert self.plan is not None
        units = self.plan.chains or 1
        f, deltas = self._at(params)
        current = [options_of(params[lay.name], lay, units) for lay in self.layouts]
        proposal = self._propose(current, deltas)
        proposed = dict(params)
        for lay, options in zip(self.layouts, proposal.options):
            proposed[lay.name] = with_options(options, lay, params[lay.name])
        f_new, deltas_new = state_deltas(self._run(), proposed, self.plan, self.layouts,
                                         self._args, self._kwargs)
        log_back = self._log_q(proposal.options, deltas_new, current)
        log_accept = f_new - f + log_back - proposal.log_q
        accept = torch.rand_like(log_accept).log() < log_accept
        out = {}
        for lay in self.layouts:
            new, old = proposed[lay.name], params[lay.name]
            # The chains are every site's leading dimension; without chains, one unit.
            shape = (units,) + (1,) * (new.dim() - 1) if self.plan.chains else (1,) * new.dim()
            out[lay.name] = torch.where(accept.reshape(shape), new, old)
        f_kept = torch.where(accept, f_new, f)
        deltas_kept = [torch.where(accept.reshape(units, 1, 1), dn, d)
                       for dn, d in zip(deltas_new, deltas)]
        self._cache = (out, f_kept, deltas_kept)
        accept_prob = log_accept.clamp(max=0).exp().nan_to_num(0.0).mean()
        self._adapt(accept_prob)
        if self._t >= self._warmup_steps:
            self._accept_sum = self._accept_sum + accept_prob
            self._accept_count += 1
        self._last = MoveInfo(accept_prob, self.step_size)  # type: ignore[arg-type]
        return out

    # --------------------------------------------------------------- for subclasses

    @property
    def step_size(self) -> float:
        """The proposal's step size (``nan`` when it has none)."""
        return math.nan

    def _adapt(self, accept_prob: torch.Tensor) -> None:
        """Warm-up adaptation of the proposal from this step's acceptance probability."""

    def _propose(self, current: list[torch.Tensor], deltas: list[torch.Tensor]) -> Proposal:
        raise NotImplementedError

    def _log_q(self, start: list[torch.Tensor], deltas: list[torch.Tensor],
               end: list[torch.Tensor]) -> torch.Tensor:
        """log q(end | start) per unit, with ``deltas`` taken at ``start``."""
        raise NotImplementedError

    # --------------------------------------------------------------- reporting

    @property
    def acceptance_rate(self) -> float:
        """The mean Metropolis-Hastings acceptance probability since warm-up ended."""
        if not self._accept_count:
            return math.nan
        return float(self._accept_sum) / self._accept_count

    def logging(self) -> OrderedDict:
        logged = super().logging()
        if self._accept_count and (self._t % 50 == 0 or "accept" not in logged):
            logged["accept"] = f"{self.acceptance_rate:.3f}"
            if not math.isnan(self.step_size):
                logged["step size"] = f"{self.step_size:.3g}"
        return logged

    def diagnostics(self) -> dict:
        return {**super().diagnostics(), "acceptance rate": self.acceptance_rate,
                "step size": self.step_size}
