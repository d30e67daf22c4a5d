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

Every site is a tensor of variables, ``(units, variables, options)`` once flattened. A *unit*
accepts or rejects its move on its own: one vectorized chain, and within it one element of every
plate along which the moved sites are independent in the posterior (each data point of an SBN,
say), so a move over many data points is decided point by point. The model
must let its discrete values enter through arithmetic (``z @ w``, ``loc * z``), which is how
gradients reach them: a ``Categorical`` index used to index a tensor carries no gradient and is
refused, with the two ways out (``OneHotCategorical``, or :class:`~.gibbs.Gibbs` for that site).
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import pyro
import pyro.poutine as poutine
import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from ..._validation import check_labels
from ..compiled import Graphs, check_compile, layout_key
from .base import DiscreteKernel
from .gibbs import GibbsPlan, SitePlan, gibbs_plan, model_reads

__all__ = ["GradientKernel", "MoveInfo", "Proposal", "SiteLayout", "Units", "log_density",
           "one_hot_options", "options_of", "per_unit", "plan_units", "site_layouts",
           "state_deltas", "unit_mask", "with_options"]


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
    batch_rank: int


class Units(NamedTuple):
    """The batch dimensions whose elements accept or reject a move on their own.

    A site's value is read aligned to ``rank`` batch dimensions (the plan's nesting, the chains'
    dimension included). ``dims`` are the positions, left to right, of the dimensions that index
    units: the chains', and every plate along which all moved sites are independent in the
    posterior (``SitePlan.blocked``); ``sizes`` their sizes. No such dimension: one unit.
    """

    rank: int
    dims: tuple[int, ...]
    sizes: tuple[int, ...]

    @property
    def count(self) -> int:
        return math.prod(self.sizes)


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
        return SiteLayout(site.name, False, 2, site.batch_rank)
    if site.base_event_rank == 1 and support.shape[0] == support.shape[1] and bool(
            (support == torch.eye(support.shape[0], dtype=support.dtype)).all()):
        return SiteLayout(site.name, True, support.shape[0], site.batch_rank)
    kind = "a Categorical index" if site.base_event_rank == 0 else "not a one-hot vector"
    raise ValueError(
        f"sites: {site.name!r} is {kind}, which a gradient move cannot relax; write it as "
        "Bernoulli units or as pyro.distributions.OneHotCategorical whose vector enters the "
        "model through arithmetic, or sample that site by Gibbs")


def site_layouts(plan: GibbsPlan) -> tuple[SiteLayout, ...]:
    """The :class:`SiteLayout` of every site of a Gibbs plan, or a ``ValueError`` naming a site
    that no gradient can reach."""
    return tuple(_layout(site) for site in plan.sites)


def plan_units(plan: GibbsPlan, values: dict[str, torch.Tensor]) -> Units:
    """The :class:`Units` of a plan: the chains, and the plates every site is independent along."""
    rank = plan.nesting
    dims, sizes = [], []
    for position in range(rank):
        spanned = [site for site in plan.sites if site.batch_rank >= rank - position]
        if len(spanned) < len(plan.sites) or not all(
                site.blocked[position - (rank - site.batch_rank)] for site in spanned):
            continue
        size = {values[site.name].shape[position - (rank - site.batch_rank)] for site in spanned}
        if len(size) == 1:
            dims.append(position)
            sizes.append(size.pop())
    return Units(rank, tuple(dims), tuple(sizes))


def _order(units: Units, value_rank: int, batch_rank: int) -> list[int]:
    # The value aligned to units.rank batch dimensions, its unit dimensions moved first.
    aligned = units.rank + value_rank - batch_rank
    return [*units.dims, *(d for d in range(aligned) if d not in units.dims)]


def _aligned(value: torch.Tensor, units: Units, batch_rank: int) -> torch.Tensor:
    return value.reshape((1,) * (units.rank - batch_rank) + tuple(value.shape))


def options_of(value: torch.Tensor, layout: SiteLayout, units: Units) -> torch.Tensor:
    """A site's value as the option index of each variable, ``(units, variables)``."""
    aligned = _aligned(value, units, layout.batch_rank)
    flat = aligned.permute(_order(units, value.dim(), layout.batch_rank))
    if layout.one_hot:
        return flat.reshape(units.count, -1, layout.options).argmax(-1)
    return flat.reshape(units.count, -1).long()


def one_hot_options(options: torch.Tensor, count: int) -> torch.Tensor:
    """``options`` as boolean one-hot vectors of length ``count``. Unlike
    ``torch.nn.functional.one_hot`` it reads no value to check the range, so a traced move can
    hold it."""
    return options.unsqueeze(-1) == torch.arange(count, device=options.device)


def with_options(options: torch.Tensor, layout: SiteLayout, like: torch.Tensor,
                 units: Units) -> torch.Tensor:
    """The site's value with these option indices, shaped and typed like ``like``."""
    value = one_hot_options(options, layout.options) if layout.one_hot else options
    order = _order(units, like.dim(), layout.batch_rank)
    aligned = _aligned(like, units, layout.batch_rank)
    permuted = value.to(like.dtype).reshape([aligned.shape[d] for d in order])
    return permuted.permute([order.index(d) for d in range(len(order))]).reshape(like.shape)


def unit_mask(accept: torch.Tensor, units: Units, like: torch.Tensor,
              batch_rank: int) -> torch.Tensor:
    """``accept`` (one per unit) laid over a site's value, broadcastable to ``like``."""
    shape = [1] * (units.rank + like.dim() - batch_rank)
    for dim, size in zip(units.dims, units.sizes):
        shape[dim] = size
    aligned = accept.reshape(shape)
    return aligned.reshape(aligned.shape[units.rank - batch_rank:])


def per_unit(log_prob: torch.Tensor, units: Units) -> torch.Tensor:
    """A site's log-density summed to one number per unit (constant across units when it spans
    none of their dimensions)."""
    extra = log_prob.dim() - units.rank
    if extra < 0:
        log_prob = log_prob.reshape((1,) * -extra + tuple(log_prob.shape))
        extra = 0
    keep = [extra + d for d in units.dims]
    others = [d for d in range(log_prob.dim()) if d not in keep]
    summed = log_prob.sum(others) if others else log_prob
    return summed.expand(units.sizes).reshape(units.count)


def log_density(model: Callable, values: dict[str, torch.Tensor], units: Units,
                args: tuple, kwargs: dict) -> torch.Tensor:
    """The joint log density of ``model`` at ``values``, one number per unit: every sample site,
    observed ones and ``pyro.factor`` included, summed over everything but the unit dimensions.
    ``model`` must already carry the chain plate when there are chains."""
    trace = poutine.trace(poutine.condition(model, data=values)).get_trace(*args, **kwargs)
    trace.compute_log_prob()
    total = None
    for site in trace.nodes.values():
        if site["type"] == "sample":
            term = per_unit(site["log_prob"], units)
            total = term if total is None else total + term
    assert total is not None
    return total


def state_deltas(model: Callable, values: dict[str, torch.Tensor], units: Units,
                 layouts: Sequence[SiteLayout], args: tuple, kwargs: dict
                 ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The log density per unit at ``values`` and, for every site, the first-order estimates
    ``delta`` of each option's change to it, shaped ``(units, variables, options)``."""
    leaves = {layout.name: values[layout.name].detach().clone().requires_grad_(True)
              for layout in layouts}
    with torch.enable_grad():
        f = log_density(model, {**values, **leaves}, units, args, kwargs)
        grads = torch.autograd.grad(f.sum(), list(leaves.values()), allow_unused=True)
    deltas = []
    for layout, grad in zip(layouts, grads):
        value = leaves[layout.name].detach()
        grad = torch.zeros_like(value) if grad is None else grad
        order = _order(units, value.dim(), layout.batch_rank)
        g = _aligned(grad, units, layout.batch_rank).permute(order)
        x = _aligned(value, units, layout.batch_rank).permute(order)
        if layout.one_hot:
            g, x = g.reshape(units.count, -1, layout.options), x.reshape(units.count, -1,
                                                                         layout.options)
            deltas.append(g - (g * x).sum(-1, keepdim=True))
        else:
            g, x = g.reshape(units.count, -1, 1), x.reshape(units.count, -1, 1)
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
        chains: vectorized chains, as for :class:`~.gibbs.Gibbs`.
        compile: ``"replay"`` traces a move (the model's log density and its gradient at the
            proposed state, the proposal and the accept test) once through the model's effect
            handlers and replays the graph of tensor operations on later steps, the same draws
            as the eager move bit for bit; ``"inductor"`` (or ``True``) also compiles that graph
            with ``torch.compile``; ``False`` (the default) runs the model on every step. A model
            a graph cannot follow runs eagerly, as :class:`~.gibbs.Gibbs`'s compiled sweeps do.
    """

    def __init__(self, model: Callable, sites: Sequence[str] | None = None,
                 chains: int | None = None, compile: bool | str = False) -> None:
        if not callable(model):
            raise TypeError(f"model: expected a callable Pyro model, got {type(model).__name__}")
        super().__init__(chains)
        self.model = model
        self.sites = None if sites is None else check_labels("sites", sites)
        mode = check_compile(compile)
        #: The traced moves (``None`` when moves run the model eagerly).
        self.graphs = None if mode == "off" else Graphs(mode, subject="sampler")
        self._reads: contextlib.AbstractContextManager = contextlib.nullcontext()
        self._weights: list[torch.Tensor] = []
        self._run_key: Any = None
        self.plan: GibbsPlan | None = None
        self.layouts: tuple[SiteLayout, ...] = ()
        #: The dimensions whose elements accept or reject on their own (filled by setup).
        self.units = Units(0, (), ())
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
        if self.graphs is not None:
            self._reads, self._weights, self._run_key = model_reads(self.model, args, kwargs)
        self._cache, self._accept_sum, self._accept_count = None, 0.0, 0
        super().setup(warmup_steps, *args, **kwargs)
        self.units = plan_units(self.plan, self.initial_params)

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
        return state_deltas(self._run(), values, self.units, self.layouts, self._args,
                            self._kwargs)

    def _sweep(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self._reads:
            f, deltas = self._at(params)
            # A tensor, so that a traced move reads the step size that warm-up adapts.
            step = torch.tensor(self.step_size, dtype=f.dtype, device=f.device)
            moved = None if self.graphs is None else self._graph_move(params, f, deltas, step)
            if moved is None:
                moved = self._move(params, f, deltas, step)
        out, f_kept, deltas_kept, accept_prob = moved
        self._cache = (out, f_kept, deltas_kept)
        self._adapt(accept_prob)
        if self._t >= self._warmup_steps:
            self._accept_sum = self._accept_sum + accept_prob
            self._accept_count += 1
        self._last = MoveInfo(accept_prob, self.step_size)  # type: ignore[arg-type]
        return out

    def _move(self, params: dict[str, torch.Tensor], f: torch.Tensor, deltas: list[torch.Tensor],
              step: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor,
                                           list[torch.Tensor], torch.Tensor]:
        """One Metropolis-Hastings move from ``params`` (log density ``f`` and ``deltas`` there):
        the new values, their log density and deltas, and the mean acceptance probability.
        A function of tensors only, so that it can be traced."""
        units = self.units
        current = [options_of(params[lay.name], lay, units) for lay in self.layouts]
        proposal = self._propose(current, deltas, step)
        proposed = dict(params)
        for lay, options in zip(self.layouts, proposal.options):
            proposed[lay.name] = with_options(options, lay, params[lay.name], units)
        f_new, deltas_new = state_deltas(self._run(), proposed, units, self.layouts,
                                         self._args, self._kwargs)
        log_back = self._log_q(proposal.options, deltas_new, current, step)
        log_accept = f_new - f + log_back - proposal.log_q
        accept = torch.rand_like(log_accept).log() < log_accept
        out = {}
        for lay in self.layouts:
            new, old = proposed[lay.name], params[lay.name]
            out[lay.name] = torch.where(unit_mask(accept, units, new, lay.batch_rank), new, old)
        f_kept = torch.where(accept, f_new, f)
        deltas_kept = [torch.where(accept.reshape(-1, 1, 1), dn, d)
                       for dn, d in zip(deltas_new, deltas)]
        accept_prob = log_accept.clamp(max=0).exp().nan_to_num(0.0).mean()
        return out, f_kept, deltas_kept, accept_prob

    def _graph_move(self, params: dict[str, torch.Tensor], f: torch.Tensor,
                    deltas: list[torch.Tensor], step: torch.Tensor) -> Any:
        """:meth:`_move` from the graph traced for these shapes, or ``None`` to move eagerly."""
        assert self.graphs is not None
        names = list(params)
        leaves, spec = tree_flatten((self._args, self._kwargs))
        positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        count = len(names)

        def move(*tensors: torch.Tensor) -> Any:
            values = dict(zip(names, tensors[:count]))
            held = tensors[count:count + 2 + len(deltas)]
            args, kwargs = self._args, self._kwargs
            filled = list(leaves)
            for i, tensor in zip(positions, tensors[count + 2 + len(deltas):]):
                filled[i] = tensor
            self._args, self._kwargs = tree_unflatten(filled, spec)
            try:
                return self._move(values, held[0], list(held[2:]), held[1])
            finally:
                self._args, self._kwargs = args, kwargs

        values_key = layout_key((params, deltas), {})
        key = None if values_key is None or self._run_key is None else (values_key, self._run_key)
        inputs = [*params.values(), f, step, *deltas, *(leaves[i] for i in positions)]
        return self.graphs.run("move", move, inputs, key, params=self._weights)

    # --------------------------------------------------------------- for subclasses

    @property
    def step_size(self) -> float:
        """The proposal's step size (``nan`` when it has none)."""
        return math.nan

    def _adapt(self, accept_prob: torch.Tensor) -> None:
        """Warm-up adaptation of the proposal from this step's acceptance probability."""

    def _propose(self, current: list[torch.Tensor], deltas: list[torch.Tensor],
                 step: torch.Tensor) -> Proposal:
        """A move from ``current`` (option indices per site), ``step`` the step size as a
        tensor."""
        raise NotImplementedError

    def _log_q(self, start: list[torch.Tensor], deltas: list[torch.Tensor],
               end: list[torch.Tensor], step: torch.Tensor) -> torch.Tensor:
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
