"""A Gibbs sampler for the discrete latent sites of any Pyro model, as a ``pyro.infer.MCMC`` kernel.

No conditional is written by hand. For each discrete site, the kernel enumerates the site's
support (``Distribution.enumerate_support``), runs the model once with every candidate value at
once (the candidates sit on a dimension left of every plate, as Pyro's parallel enumeration does),
and renormalises the log-density of the site's Markov blanket over the candidates.

What is updated together (blocked), and what one element at a time, follows from the model:

* Elements along a **plate** are updated together when nothing downstream ties them, which is what
  ``pyro.infer.inspect.get_dependencies`` reports: a plate in which a site depends on itself in the
  posterior (e.g. an observed sum over the plate) is swept element by element instead.
* Elements along **event dimensions** (``.to_event(1)``, as in a layer of binary units) are
  dependent in general (explaining away), so they are swept one at a time, each update vectorized
  over the independent plates and over the chains.
* A base distribution's own event (a one-hot vector) is enumerated as one value.

The model must broadcast over extra leading batch dimensions, as any model written for Pyro's
parallel enumeration does (plates for batch dimensions, ``...``-style indexing); one that does
not is refused before the first sweep, naming its statement
(:func:`~ppdgm.inference.mcmc.broadcasting.check_broadcasts`).

Examples:
    >>> import pyro.distributions as dist
    >>> from pyro.infer import MCMC
    >>> def model(y):
    ...     with pyro.plate("data", len(y)):
    ...         z = pyro.sample("z", dist.Bernoulli(0.5))
    ...         pyro.sample("y", dist.Normal(2.0 * z - 1.0, 1.0), obs=y)
    >>> mcmc = MCMC(Gibbs(model, chains=4), num_samples=20, warmup_steps=5, disable_progbar=True)
    >>> mcmc.run(torch.tensor([-2.0, 2.0]))
    >>> mcmc.get_samples()["z"].shape  # (draws, chains, data)
    torch.Size([20, 4, 2])
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.infer.inspect import get_dependencies
from pyro.poutine.util import site_is_subsample
from torch.utils._pytree import tree_flatten, tree_unflatten

from ..._memory import check_fits
from ..._validation import check_flag, check_labels
from ..compiled import Graphs, check_compile, layout_key
from ..params import ParamRecorder, owning_modules
from ..reads import DirectReads
from .base import DiscreteKernel
from .broadcasting import check_broadcasts

__all__ = ["CHAIN_PLATE", "Gibbs", "GibbsPlan", "ModelReads", "SitePlan", "base_distribution",
           "gibbs_plan", "gibbs_sweep", "gibbs_update", "is_latent_site", "model_reads"]

#: The plate that carries vectorized chains, left of every plate of the model.
CHAIN_PLATE = "_gibbs_chains"


class SitePlan(NamedTuple):
    """How one discrete site is updated.

    Attributes:
        name: the site.
        support: its candidate values, shape ``(V, *base_event_shape)``.
        batch_rank: how many batch dimensions its value has (after the chain plate, if any).
        blocked: for each batch dimension (left to right), whether its elements are updated
            together (an independent plate) or swept one at a time.
        event_shape: the dimensions reinterpreted as event (``.to_event``), swept one at a time.
        base_event_rank: the base distribution's own event rank, enumerated as one value.
        blanket: the sites whose log-density depends on this one (itself included).
    """

    name: str
    support: torch.Tensor
    batch_rank: int
    blocked: tuple[bool, ...]
    event_shape: tuple[int, ...]
    base_event_rank: int
    blanket: tuple[str, ...]


class GibbsPlan(NamedTuple):
    """The sites a Gibbs sweep visits, in model order, and where the candidate dimension goes.

    Attributes:
        sites: one :class:`SitePlan` per discrete latent site.
        nesting: the number of batch dimensions every site is aligned to (the model's plate
            nesting, plus one for vectorized chains); candidates sit at batch dimension
            ``-(nesting + 1)``.
        chains: the number of vectorized chains, or ``None``.
    """

    sites: tuple[SitePlan, ...]
    nesting: int
    chains: int | None


def _with_chains(model: Callable, chains: int | None, dim: int) -> Callable:
    if chains is None:
        return model

    def chained(*args, **kwargs):
        with pyro.plate(CHAIN_PLATE, chains, dim=dim):
            return model(*args, **kwargs)

    return chained


def _max_plate_nesting(trace: poutine.Trace) -> int:
    dims = [-f.dim for site in trace.nodes.values() if site["type"] == "sample"
            for f in site["cond_indep_stack"] if f.vectorized and f.dim is not None]
    return max(dims, default=0)


def base_distribution(fn: dist.Distribution) -> tuple[dist.Distribution, int]:
    reinterpreted = 0
    while isinstance(fn, dist.Independent):
        reinterpreted += fn.reinterpreted_batch_ndims
        fn = fn.base_dist
    return fn, reinterpreted


def is_latent_site(site: dict) -> bool:
    return (site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site)
            and not site["infer"].get("_deterministic"))


def gibbs_plan(model: Callable, args: tuple = (), kwargs: dict | None = None, *,
               sites: Sequence[str] | None = None, chains: int | None = None) -> GibbsPlan:
    """Inspect ``model(*args, **kwargs)`` once and decide how each discrete latent site is updated.

    Args:
        model: a Pyro model (observed values passed through its arguments or ``poutine.condition``).
        sites: the sites to update (default: every latent site with enumerable support; any other
            latent site must then be conditioned away, e.g. by :class:`HMCGibbs`).
        chains: the number of vectorized chains.

    Examples:
        >>> import pyro.distributions as dist
        >>> def model():
        ...     with pyro.plate("p", 3):
        ...         pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(2)).to_event(1))
        >>> plan = gibbs_plan(model)
        >>> plan.sites[0].blocked, plan.sites[0].event_shape
        ((True,), (2,))
    """
    kwargs = {} if kwargs is None else kwargs
    with torch.random.fork_rng(), torch.no_grad():
        trace = poutine.trace(model).get_trace(*args, **kwargs)
    latent = [name for name, site in trace.nodes.items() if is_latent_site(site)]
    if sites is None:
        sites = [n for n in latent if base_distribution(trace.nodes[n]["fn"])[0].has_enumerate_support]
        others = [n for n in latent if n not in sites]
        if others:
            raise ValueError(
                f"model: latent sites {others} have no enumerable support; condition them on values "
                "(poutine.condition) or sample them with HMCGibbs"
            )
    else:
        sites = list(sites)
        unknown = [n for n in sites if n not in latent]
        if unknown:
            raise ValueError(f"sites: {unknown} are not latent sample sites of the model; latent: {latent}")
    if not sites:
        raise ValueError("model: found no discrete latent site to sample")
    check_broadcasts(model, args, kwargs, is_latent=is_latent_site)
    nesting = _max_plate_nesting(trace)
    if chains is not None:
        # Each chain carries every site of the model (and a sweep its candidates' densities).
        each = 2 * sum(site["value"].numel() * site["value"].element_size()
                       for site in trace.nodes.values()
                       if site["type"] == "sample" and isinstance(site["value"], torch.Tensor))
        device = next((s["value"].device for s in trace.nodes.values()
                       if isinstance(s.get("value"), torch.Tensor)), torch.device("cpu"))
        check_fits("chains", chains, each, device, what="chains")
        nesting += 1
        with torch.random.fork_rng(), torch.no_grad():
            trace = poutine.trace(_with_chains(model, chains, -nesting)).get_trace(*args, **kwargs)
    with torch.random.fork_rng():
        deps = get_dependencies(model, args, kwargs)["posterior_dependencies"]
    plans = []
    for name in sites:
        site = trace.nodes[name]
        base, reinterpreted = base_distribution(site["fn"])
        if not base.has_enumerate_support:
            raise ValueError(f"sites: {name!r} has no enumerable support ({type(base).__name__})")
        support = base.enumerate_support(expand=False)
        base_event_rank = len(base.event_shape)
        support = support.reshape(support.shape[0], *support.shape[support.dim() - base_event_rank:])
        event_shape = tuple(site["fn"].event_shape[:reinterpreted]) if reinterpreted else ()
        batch_rank = len(site["fn"].batch_shape)
        coupled = deps[name].get(name, set())
        plate_dims = {f.dim for f in site["cond_indep_stack"]
                      if f.vectorized and f.dim is not None and f.name not in coupled}
        blocked = tuple((i - batch_rank) in plate_dims for i in range(batch_rank))
        blanket = tuple(n for n in trace.nodes if n in deps[name] or n == name)
        plans.append(SitePlan(name, support, batch_rank, blocked, event_shape, base_event_rank, blanket))
    return GibbsPlan(tuple(plans), nesting, chains)


def _position_index(blocked: tuple[bool, ...], position: tuple[int, ...]) -> tuple:
    # Integers select the swept element, slices keep the blocked plates; base event dims follow.
    it = iter(position)
    batch = tuple(slice(None) if b else next(it) for b in blocked)
    return batch + tuple(it)


def _blanket_logits(trace: poutine.Trace, site: SitePlan, target: tuple[int, ...]) -> torch.Tensor:
    trace.compute_log_prob(site_filter=lambda name, _: name in site.blanket)
    total = None
    for name in site.blanket:
        lp = trace.nodes[name]["log_prob"]
        lp = lp.reshape((1,) * (len(target) - lp.dim()) + lp.shape)
        # Each term is summed down to the target on its own, so that a term a swept dimension
        # does not span counts once. Equal ranks: the broadcast shape is the larger size of each.
        full = tuple(max(a, b) for a, b in zip(lp.shape, target))
        lp = lp.expand(full).sum_to_size(target)
        total = lp if total is None else total + lp
    assert total is not None
    return total


def _gumbel_argmax(log_p: torch.Tensor) -> torch.Tensor:
    # A categorical draw along dim 0 for every element at once, without building a distribution.
    u = torch.rand_like(log_p).clamp_(min=torch.finfo(log_p.dtype).tiny)
    return (log_p - (-u.log()).log()).argmax(0)


def _metropolized_shift(log_p: torch.Tensor) -> torch.Tensor:
    """Liu's (1996) Metropolized Gibbs, with candidates listed from the current value (shift 0):
    propose a shift other than 0 from the conditional renormalised without it, accept with
    min(1, (1 - p(current)) / (1 - p(proposal))). It leaves the same conditional invariant and
    moves more often (for binary sites: flip with probability min(1, p(other) / p(current)))."""
    if log_p.shape[0] == 2:
        proposal = torch.ones(log_p.shape[1:], dtype=torch.long, device=log_p.device)
    else:
        proposal = 1 + _gumbel_argmax(log_p[1:])
    log_stay = log_p[0]
    log_move = log_p.gather(0, proposal.unsqueeze(0)).squeeze(0)
    log_accept = torch.log(-torch.expm1(log_stay)) - torch.log(-torch.expm1(log_move))
    accept = torch.rand_like(log_accept).log() < log_accept
    return torch.where(accept, proposal, torch.zeros_like(proposal))


def _support_index(values: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Each element's position in ``support``; the base event dims (support's own) are matched whole."""
    rank = support.dim() - 1
    flat = support.reshape(support.shape[0], *[1] * (values.dim() - rank), *support.shape[1:])
    same = values.unsqueeze(0) == flat
    if rank:
        same = same.flatten(-rank).all(-1)
    return same.long().argmax(0)


def gibbs_update(model: Callable, values: dict[str, torch.Tensor], site: SitePlan, nesting: int,
                 args: tuple = (), kwargs: dict | None = None, *, metropolized: bool = False,
                 densities: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Draw ``site`` from its full conditional given ``values`` of every other latent site.

    ``model`` must already carry the chain plate if the plan has chains (see :func:`gibbs_sweep`).
    ``metropolized=True`` makes a Metropolized Gibbs move instead of a heat-bath draw.
    Returns the site's new value, of the shape of ``values[site.name]``; the unnormalised
    log-densities of each element's candidates are appended to ``densities`` when it is given.

    Candidates are listed per element from its current value on (shift k = 0, 1, ..., V - 1
    around the support), so the blanket density of the value an update keeps is the one the next
    update of the site starts from: after a site's first element, each model run evaluates the
    V - 1 other values only (one instead of two for binary units).
    """
    kwargs = {} if kwargs is None else kwargs
    value = values[site.name]
    support = site.support.to(device=value.device, dtype=value.dtype)
    n_values = support.shape[0]
    if n_values == 1:
        return value
    pad = nesting - site.batch_rank
    work = value.reshape((1,) * pad + tuple(value.shape)).clone()
    current = _support_index(work, support)
    blocked = (False,) * pad + site.blocked
    sizes = work.shape[:nesting]
    swept = [range(sizes[i]) for i in range(nesting) if not blocked[i]] + [range(n) for n in site.event_shape]
    kept = [sizes[i] for i in range(nesting) if blocked[i]]
    target = tuple(sizes[i] if blocked[i] else 1 for i in range(nesting))
    all_shifts = torch.arange(n_values, device=value.device).reshape(n_values, *[1] * len(kept))
    log_kept: torch.Tensor | None = None  # the blanket density of the current values
    for position in itertools.product(*swept):
        index = _position_index(blocked, position)
        shifts = all_shifts if log_kept is None else all_shifts[1:]
        chosen = (current[index].unsqueeze(0) + shifts) % n_values
        trial = work.expand(len(shifts), *work.shape).clone()
        trial[(slice(None),) + index] = support[chosen]
        conditioned = poutine.condition(model, data={**values, site.name: trial})
        trace = poutine.trace(conditioned).get_trace(*args, **kwargs)
        log_p = _blanket_logits(trace, site, (len(shifts), *target)).reshape(len(shifts), *kept)
        if log_kept is not None:
            log_p = torch.cat([log_kept.unsqueeze(0), log_p])
        if densities is not None:
            densities.append(log_p)
        shift = _metropolized_shift(log_p.log_softmax(0)) if metropolized else _gumbel_argmax(log_p)
        log_kept = log_p.gather(0, shift.unsqueeze(0)).squeeze(0)
        current[index] = (current[index] + shift) % n_values
        work[index] = support[current[index]]
    return work.reshape(value.shape)


def gibbs_sweep(model: Callable, values: dict[str, torch.Tensor], plan: GibbsPlan,
                args: tuple = (), kwargs: dict | None = None, *, metropolized: bool = False,
                densities: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """One systematic-scan sweep: every site of ``plan`` in model order, each from its conditional
    (or by a Metropolized Gibbs move, see :func:`gibbs_update`; ``densities`` collects the
    candidates' log-densities there).

    Examples:
        >>> def model():
        ...     a = pyro.sample("a", dist.Bernoulli(0.5))
        ...     pyro.sample("b", dist.Bernoulli(0.9 * a + 0.05), obs=torch.tensor(1.0))
        >>> plan = gibbs_plan(model, chains=1000)
        >>> values = {"a": torch.zeros(1000)}
        >>> draws = torch.stack([gibbs_sweep(model, values, plan)["a"] for _ in range(5)])
        >>> abs(draws.mean().item() - 0.95 / 1.0) < 0.03  # p(a=1 | b=1) = 0.475 / 0.5
        True
    """
    run = _with_chains(model, plan.chains, -plan.nesting)
    values = dict(values)
    with torch.no_grad():
        for site in plan.sites:
            values[site.name] = gibbs_update(run, values, site, plan.nesting, args, kwargs,
                                             metropolized=metropolized, densities=densities)
    return values


class ModelReads(NamedTuple):
    """What a kernel that runs a model many times per step finds about it once, at setup.

    Attributes:
        reads: a block in which the weights the model reads as themselves skip their param
            statements (a step reads only sample sites).
        weights: every parameter of the modules the model belongs to, which a traced step reads
            by identity.
        run_key: the part of a traced step's key that is fixed for the run (the data's layout
            and the weights'); ``None`` when the data hold something a key cannot say.
    """

    reads: DirectReads
    weights: list[torch.Tensor]
    run_key: Any


def model_reads(model: Callable, args: tuple, kwargs: dict) -> ModelReads:
    """The :class:`ModelReads` of ``model`` on its data (one run of it, the RNG untouched)."""
    with torch.random.fork_rng(), torch.no_grad(), ParamRecorder() as recorder:
        poutine.trace(model).get_trace(*args, **kwargs)
    modules = owning_modules(model)
    weights = [p for module in modules for p in module.parameters()]
    return ModelReads(DirectReads(modules, recorder.found.values()), weights,
                      layout_key(args, kwargs, weights))


class Gibbs(DiscreteKernel):
    """Systematic-scan Gibbs over a model's discrete latent sites (see the module docstring).

    Args:
        model: a Pyro model whose latent sites all have enumerable support (or are listed in
            ``sites`` while the others are conditioned away); observed data through its arguments.
        sites: the sites to sample (default: every latent site).
        chains: run this many chains as one batch dimension (draws then have a leading
            ``chains`` axis; :func:`ppdgm.diagnostics.to_inference_data` makes them ArviZ chains).
        metropolized: replace each heat-bath draw by Liu's Metropolized Gibbs move (propose a
            different value, accept or stay), which leaves the same distribution invariant and
            mixes faster on binary sites; PyMC's ``BinaryGibbsMetropolis`` is this move.
        compile: ``"replay"`` traces a sweep once through the model's effect handlers and replays
            the graph of tensor operations on later sweeps (the same draws as the eager sweep, bit
            for bit); ``"inductor"`` (or ``True``) also compiles that graph with
            ``torch.compile`` (the fastest sweeps, after a compilation of seconds to a minute);
            ``False`` (the default) runs the model on every sweep. A new shape of the data, or a
            model a graph cannot follow, traces again or runs eagerly, as the engine's compiled
            step does (:mod:`ppdgm.inference.compiled`).

    ``logging()`` and ``diagnostics()`` report each site's flip rate, the fraction of its elements
    that change per sweep.
    """

    def __init__(self, model: Callable, sites: Sequence[str] | None = None, chains: int | None = None,
                 metropolized: bool = False, compile: bool | str = False):
        if not callable(model):
            raise TypeError(f"model: expected a callable Pyro model, got {type(model).__name__}")
        super().__init__(chains)
        self.model = model
        self.sites = None if sites is None else check_labels("sites", sites)
        self.metropolized = check_flag("metropolized", metropolized)
        mode = check_compile(compile)
        #: The traced sweeps (``None`` when sweeps run the model eagerly).
        self.graphs = None if mode == "off" else Graphs(mode, subject="sampler")
        self.plan: GibbsPlan | None = None
        self._reads: DirectReads | contextlib.AbstractContextManager = contextlib.nullcontext()
        self._args: tuple = ()
        self._kwargs: dict[str, Any] = {}
        self._weights: list[torch.Tensor] = []
        self._run_key: Any = None

    def setup(self, warmup_steps: int, *args, **kwargs) -> None:
        self._args, self._kwargs = args, kwargs
        self.check_data(args, kwargs)
        # pyro.infer.MCMC turns validation off for its run (divergences would raise); the data
        # are checked once here, with it on, so data outside the model's support are refused.
        with pyro.validation_enabled(True):
            try:
                self.plan = gibbs_plan(self.model, args, kwargs, sites=self.sites,
                                       chains=self.chains)
            except ValueError as err:
                if ":" in str(err).split(" ", 1)[0]:
                    raise  # the model's own check, naming its argument
                raise ValueError(f"args: the model refuses the data it was given: {err}") from err
        self._reads, self._weights, self._run_key = model_reads(self.model, args, kwargs)
        super().setup(warmup_steps, *args, **kwargs)

    def _init_values(self, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
        assert self.plan is not None
        run = _with_chains(self.model, self.chains, -self.plan.nesting)
        with torch.no_grad():
            trace = poutine.trace(run).get_trace(*args, **kwargs)
        return {s.name: trace.nodes[s.name]["value"].detach() for s in self.plan.sites}

    def _sweep(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        assert self.plan is not None
        with self._reads:
            if self.graphs is not None:
                swept = self._graph_sweep(params)
                if swept is not None:
                    return swept
            return gibbs_sweep(self.model, params, self.plan, self._args, self._kwargs,
                               metropolized=self.metropolized)

    def _graph_sweep(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """A sweep from the graph traced for these shapes, or ``None`` to sweep eagerly."""
        assert self.plan is not None and self.graphs is not None
        plan, metropolized = self.plan, self.metropolized
        names = list(params)
        leaves, spec = tree_flatten((self._args, self._kwargs))
        positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]

        def sweep(*tensors: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
            values = dict(zip(names, tensors[:len(names)]))
            filled = list(leaves)
            for i, tensor in zip(positions, tensors[len(names):]):
                filled[i] = tensor
            args, kwargs = tree_unflatten(filled, spec)
            # The densities ride along so that a graph checked against the model is compared
            # on them, not only on draws that a small drift in the model would rarely change.
            densities: list[torch.Tensor] = []
            values = gibbs_sweep(self.model, values, plan, args, kwargs, metropolized=metropolized,
                                 densities=densities)
            return values, densities

        values_key = layout_key((params,), {})
        key = None if values_key is None or self._run_key is None else (values_key, self._run_key)
        inputs = [*params.values(), *(leaves[i] for i in positions)]
        out = self.graphs.run("gibbs", sweep, inputs, key, params=self._weights)
        return None if out is None else out[0]
