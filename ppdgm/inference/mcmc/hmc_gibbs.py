"""Gibbs within HMC: discrete sites by :mod:`~ppdgm.inference.mcmc.gibbs`, continuous ones by HMC/NUTS.

Each step first draws every discrete site from its full conditional given the continuous sites,
then takes one HMC (or NUTS) step on the continuous sites with the discrete ones held fixed. Pyro's
own HMC would instead sum the discrete sites out by enumeration, which is exact but needs the
model to be written for it and costs the product of their supports; this kernel only ever
enumerates one element's support at a time.

Examples:
    >>> import pyro
    >>> import pyro.distributions as dist
    >>> from pyro.infer import MCMC
    >>> def model(y):
    ...     loc = pyro.sample("loc", dist.Normal(0.0, 3.0))
    ...     with pyro.plate("data", len(y)):
    ...         z = pyro.sample("z", dist.Bernoulli(0.5))
    ...         pyro.sample("y", dist.Normal(loc * z, 1.0), obs=y)
    >>> mcmc = MCMC(HMCGibbs(model, kernel="hmc", step_size=0.2, num_steps=5),
    ...             num_samples=10, warmup_steps=10, disable_progbar=True)
    >>> mcmc.run(torch.tensor([0.1, 3.0, 3.2]))
    >>> sorted(mcmc.get_samples())
    ['loc', 'z']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import pyro.poutine as poutine
import torch
from pyro.infer.mcmc import HMC, NUTS

from ..._validation import check_choice, check_labels
from .base import DiscreteKernel
from .gibbs import GibbsPlan, base_distribution, gibbs_plan, gibbs_sweep, is_latent_site

__all__ = ["HMCGibbs"]

_INNER = {"nuts": NUTS, "hmc": HMC}


class HMCGibbs(DiscreteKernel):
    """Gibbs for a model's discrete latent sites, HMC or NUTS for its continuous ones.

    Args:
        model: a Pyro model with discrete (enumerable) and continuous latent sites.
        kernel: ``"nuts"`` (default) or ``"hmc"``, the sampler of the continuous sites.
        discrete_sites: the sites Gibbs samples (default: every latent site with enumerable support).
        **hmc_kwargs: passed to Pyro's ``NUTS``/``HMC`` (``step_size``, ``adapt_step_size``, ...).

    Vectorized chains are not offered: Pyro's HMC runs one chain; use ``MCMC(num_chains=...)``.
    """

    def __init__(self, model: Callable, kernel: str = "nuts", discrete_sites: Sequence[str] | None = None,
                 **hmc_kwargs: Any) -> None:
        if not callable(model):
            raise TypeError(f"model: expected a callable Pyro model, got {type(model).__name__}")
        super().__init__(None)
        kind = check_choice("kernel", kernel, tuple(_INNER))
        self.model = model
        self.discrete_sites = (None if discrete_sites is None
                               else check_labels("discrete_sites", discrete_sites))
        self._discrete: dict[str, torch.Tensor] = {}
        self.inner = _INNER[kind](self._given_discrete, **hmc_kwargs)
        self.plan: GibbsPlan | None = None
        self._args: tuple = ()
        self._kwargs: dict[str, Any] = {}

    def _given_discrete(self, *args, **kwargs):
        # The continuous kernel sees the model with the discrete sites fixed at their current draw.
        return poutine.condition(self.model, data=self._discrete)(*args, **kwargs)

    @property
    def transforms(self) -> dict:  # type: ignore[override]
        return self.inner.transforms

    def setup(self, warmup_steps: int, *args, **kwargs) -> None:
        self._args, self._kwargs = args, kwargs
        with torch.random.fork_rng(), torch.no_grad():
            trace = poutine.trace(self.model).get_trace(*args, **kwargs)
        names = self.discrete_sites
        if names is None:
            names = [n for n, s in trace.nodes.items()
                     if is_latent_site(s) and base_distribution(s["fn"])[0].has_enumerate_support]
        if not names:
            raise ValueError("model: found no discrete latent site for the Gibbs step; use NUTS alone")
        self._discrete = {n: trace.nodes[n]["value"] for n in names}
        self.inner.setup(warmup_steps, *args, **kwargs)
        continuous = self._continuous(self.inner.initial_params)
        self.plan = gibbs_plan(poutine.condition(self.model, data=continuous), args, kwargs, sites=names)
        super().setup(warmup_steps, *args, **kwargs)

    def _continuous(self, unconstrained: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        transforms = self.inner.transforms
        return {n: transforms[n].inv(v) if n in transforms else v for n, v in unconstrained.items()}

    def _init_values(self, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
        return {**self.inner.initial_params, **self._discrete}

    def _sweep(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        assert self.plan is not None
        continuous = {n: v for n, v in params.items() if n not in self._discrete}
        given = poutine.condition(self.model, data=self._continuous(continuous))
        discrete = {n: params[n] for n in self._discrete}
        self._discrete = {n: v for n, v in gibbs_sweep(given, discrete, self.plan, self._args,
                                                        self._kwargs).items() if n in discrete}
        # The cached potential energy belongs to the old discrete values.
        self.inner.clear_cache()
        return {**self.inner.sample(continuous), **self._discrete}

    def end_warmup(self) -> None:
        self.inner.end_warmup()

    def cleanup(self) -> None:
        # MCMC runs sequential chains through one kernel: the next chain must adapt from its own
        # warm-up and count its own divergences, so the inner HMC/NUTS starts afresh too.
        super().cleanup()
        self.inner.cleanup()
        self._discrete = {}
        self.plan = None

    def logging(self) -> OrderedDict:
        return OrderedDict([*self.inner.logging().items(), *super().logging().items()])

    def diagnostics(self) -> dict:
        return {**super().diagnostics(), **self.inner.diagnostics()}
