"""One kernel, a move per block of sites: Gibbs, Gibbs-with-Gradients or DMALA for discrete sites,
HMC or NUTS for the continuous ones, each step visiting the blocks in the model's order.

Each block's move sees the model with every other site fixed at its current value (a
``poutine.condition``), so each block leaves its full conditional invariant and the scan leaves
the joint posterior invariant, as any Metropolis-within-Gibbs scheme does. Sites sharing a move
form one block: Gibbs still sweeps its sites one variable at a time, a gradient move proposes over
all of its block's sites at once, and HMC or NUTS moves every continuous site together.

Examples:
    >>> import pyro
    >>> import pyro.distributions as dist
    >>> from pyro.infer import MCMC
    >>> def model(y):
    ...     loc = pyro.sample("loc", dist.Normal(0.0, 3.0))
    ...     z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(4)).to_event(1))
    ...     k = pyro.sample("k", dist.Categorical(torch.ones(3)))
    ...     pyro.sample("y", dist.Normal(loc * z + k[..., None], 1.0).to_event(1), obs=y)
    >>> kernel = Compound(model, moves={"z": "dmala"}, continuous="hmc", step_size=0.2, num_steps=4)
    >>> mcmc = MCMC(kernel, num_samples=10, warmup_steps=10, disable_progbar=True)
    >>> mcmc.run(torch.tensor([0.1, 2.0, 2.2, 0.3]))
    >>> kernel.blocks
    {'loc': 'hmc', 'z': 'dmala', 'k': 'gibbs'}
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import pyro.poutine as poutine
import torch
from pyro.infer.mcmc import HMC, NUTS

from ..._validation import check_choice, check_label
from .base import DiscreteKernel
from .dmala import DMALA
from .gibbs import Gibbs, base_distribution, is_latent_site
from .gwg import GibbsWithGradients

__all__ = ["CONTINUOUS_MOVES", "Compound", "DISCRETE_MOVES"]

#: The moves a discrete site can be given.
DISCRETE_MOVES: dict[str, Callable[..., DiscreteKernel]] = {
    "gibbs": Gibbs, "metropolized-gibbs": lambda model, sites, chains: Gibbs(
        model, sites, chains, metropolized=True),
    "gwg": GibbsWithGradients, "dmala": DMALA}
#: The moves of the continuous sites, all in one block.
CONTINUOUS_MOVES = {"nuts": NUTS, "hmc": HMC}


class Compound(DiscreteKernel):
    """A move per block of sites (see the module docstring).

    Args:
        model: a Pyro model; its data through its arguments.
        moves: site name -> move, one of :data:`DISCRETE_MOVES` for a discrete site
            (``"gibbs"``, ``"metropolized-gibbs"``, ``"gwg"``, ``"dmala"``); sites left out get
            ``"gibbs"`` when discrete and ``continuous`` otherwise.
        continuous: ``"nuts"`` (default) or ``"hmc"``, the move of every continuous site.
        chains: vectorized chains, for models without continuous sites (Pyro's HMC and NUTS
            run one chain; use ``MCMC(num_chains=...)`` otherwise).
        **hmc_kwargs: passed to Pyro's ``NUTS``/``HMC`` (``step_size``, ``num_steps``, ...).

    ``blocks`` (after setup) maps each site to its move; ``diagnostics()`` gathers every move's.
    """

    def __init__(self, model: Callable, moves: Mapping[str, str] | None = None, *,
                 continuous: str = "nuts", chains: int | None = None, **hmc_kwargs: Any) -> None:
        if not callable(model):
            raise TypeError(f"model: expected a callable Pyro model, got {type(model).__name__}")
        super().__init__(chains)
        if moves is not None and not isinstance(moves, Mapping):
            raise TypeError(f"moves: expected a mapping of site name to move, got "
                            f"{type(moves).__name__}")
        self.moves = {check_label("moves", site): check_choice(f"moves[{site!r}]", move, (
            *DISCRETE_MOVES, *CONTINUOUS_MOVES)) for site, move in (moves or {}).items()}
        self.continuous = check_choice("continuous", continuous, tuple(CONTINUOUS_MOVES))
        self.model = model
        self.hmc_kwargs = hmc_kwargs
        #: site -> move, in the model's order (filled by setup).
        self.blocks: dict[str, str] = {}
        self._kernels: dict[str, DiscreteKernel] = {}
        self._fixed: dict[str, dict[str, torch.Tensor]] = {}
        self.inner: HMC | None = None

    @property
    def transforms(self) -> dict:  # type: ignore[override]
        return {} if self.inner is None else self.inner.transforms

    def _given(self, move: str) -> Callable:
        def conditioned(*args: Any, **kwargs: Any) -> Any:
            return poutine.condition(self.model, data=self._fixed[move])(*args, **kwargs)
        return conditioned

    def _assign(self, trace: poutine.Trace) -> dict[str, str]:
        blocks = {}
        latent = [n for n, s in trace.nodes.items() if is_latent_site(s)]
        unknown = sorted(set(self.moves) - set(latent))
        if unknown:
            raise ValueError(f"moves: {unknown} are not latent sample sites of the model; "
                             f"latent: {latent}")
        for name in latent:
            discrete = base_distribution(trace.nodes[name]["fn"])[0].has_enumerate_support
            move = self.moves.get(name, "gibbs" if discrete else self.continuous)
            if discrete != (move in DISCRETE_MOVES):
                kind = "discrete" if discrete else "continuous"
                allowed = DISCRETE_MOVES if discrete else CONTINUOUS_MOVES
                raise ValueError(f"moves[{name!r}]: {name!r} is {kind}; expected one of "
                                 f"{', '.join(allowed)}, got {move!r}")
            blocks[name] = move
        return blocks

    def setup(self, warmup_steps: int, *args, **kwargs) -> None:
        self._args, self._kwargs = args, kwargs
        self.check_data(args, kwargs)
        with torch.random.fork_rng(), torch.no_grad():
            trace = poutine.trace(self.model).get_trace(*args, **kwargs)
        self.blocks = self._assign(trace)
        values = {n: trace.nodes[n]["value"].detach() for n in self.blocks}
        continuous = [n for n, m in self.blocks.items() if m in CONTINUOUS_MOVES]
        if continuous and self.chains is not None:
            raise ValueError(f"chains: {continuous} move by {self.continuous}, which runs one "
                             "chain; drop chains= and use MCMC(num_chains=...)")
        self.inner, self._kernels = None, {}
        if continuous:
            self._fixed["continuous"] = {n: v for n, v in values.items() if n not in continuous}
            self.inner = CONTINUOUS_MOVES[self.continuous](self._given("continuous"),
                                                          **self.hmc_kwargs)
            self.inner.setup(warmup_steps, *args, **kwargs)
            values.update(self._constrained(self.inner.initial_params))
        chained = values
        for move in dict.fromkeys(m for m in self.blocks.values() if m in DISCRETE_MOVES):
            sites = [n for n, m in self.blocks.items() if m == move]
            self._fixed[move] = {n: v for n, v in values.items() if n not in sites}
            kernel = DISCRETE_MOVES[move](self._given(move), sites, self.chains)
            kernel.setup(warmup_steps, *args, **kwargs)
            self._kernels[move] = kernel
            chained = {**chained, **kernel.initial_params}
        self._start = chained
        super().setup(warmup_steps, *args, **kwargs)

    def _constrained(self, unconstrained: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        transforms = self.transforms
        return {n: transforms[n].inv(v) if n in transforms else v for n, v in unconstrained.items()}

    def _init_values(self, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
        unconstrained = {} if self.inner is None else self.inner.initial_params
        return {**self._start, **unconstrained}

    def _sweep(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        params = dict(params)
        constrained = self._constrained(params)
        for move, kernel in self._kernels.items():
            sites = [n for n, m in self.blocks.items() if m == move]
            self._fixed[move] = {n: v for n, v in constrained.items() if n not in sites}
            clear = getattr(kernel, "clear_cache", None)
            if clear is not None:
                clear()  # the other blocks moved: what it cached belongs to the old values
            moved = kernel.sample({n: params[n] for n in sites})
            params.update(moved)
            constrained.update(moved)
        if self.inner is not None:
            continuous = [n for n, m in self.blocks.items() if m in CONTINUOUS_MOVES]
            self._fixed["continuous"] = {n: v for n, v in constrained.items()
                                         if n not in continuous}
            self.inner.clear_cache()
            params.update(self.inner.sample({n: params[n] for n in continuous}))
        return params

    def end_warmup(self) -> None:
        if self.inner is not None:
            self.inner.end_warmup()

    def cleanup(self) -> None:
        super().cleanup()
        for kernel in self._kernels.values():
            kernel.cleanup()
        if self.inner is not None:
            self.inner.cleanup()

    def logging(self) -> OrderedDict:
        logged: OrderedDict = OrderedDict()
        if self.inner is not None:
            logged.update(self.inner.logging())
        for move, kernel in self._kernels.items():
            logged.update((f"{move} {k}" if not k.startswith("flip") else k, v)
                          for k, v in kernel.logging().items())
        return logged

    def diagnostics(self) -> dict:
        out = {**super().diagnostics()}
        for move, kernel in self._kernels.items():
            out[move] = kernel.diagnostics()
        if self.inner is not None:
            out.update(self.inner.diagnostics())
        return out
