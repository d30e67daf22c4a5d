"""Ancestral sampling: prior and prior-predictive draws of any Pyro model, by running it forwards.

A model run with nothing observed draws every latent from its prior and every "observed" site
from its likelihood given those latents: that is ancestral sampling, and
:class:`pyro.infer.Predictive` without posterior samples does exactly that. A ppdgm model generates
when called as ``model(None, num_samples=n)`` (``n`` points in its ``"data"`` plate), so
``ancestral_samples(vae.model, S, None, num_samples=n)`` returns S draws of n generated points.

The draws convert to ArviZ with :func:`ppdgm.diagnostics.to_inference_data` (``prior=``, one chain,
the S draws along ``draw``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from pyro.infer import Predictive
from pyro.nn import PyroModule

from ..._memory import MAX_CHUNK, check_fits, chunks
from ..._pyro import built_for_local_params, local_params
from ..._validation import check_positive_int

__all__ = ["AncestralSampler", "ancestral_samples", "module_params"]

# What a model that cannot broadcast over Predictive's extra plate raises (shape mismatches).
_VECTORIZE_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, AssertionError)


class AncestralSampler:
    """Draws every sample site of a Pyro model ``num_samples`` times by running it forwards.

    **Vectorized or looped.** ``parallel=None`` (the default) first runs the model once inside one
    extra plate of size ``num_samples``, left of all its own plates
    (``Predictive(parallel=True)``): one forward pass for all draws. A model that cannot broadcast
    over that plate (it raises) is then run ``num_samples`` times in a Python loop
    (``Predictive(parallel=False)``). ``parallel=True`` insists on the vectorized run (its errors
    propagate), ``parallel=False`` always loops. After a call, :attr:`vectorized` says which ran.

    A ppdgm model runs with its own parameters (module-local parameters when it was built that
    way, as the engine runs it), without gradients.

    Args:
        model: any Pyro model.
        num_samples: how many draws of the whole model (the leading axis of every result).
        return_sites: the sites to return (default: every sample site).
        parallel: ``None`` (try vectorized, else loop), ``True`` or ``False``.

    Examples:
        >>> import pyro, pyro.distributions as dist
        >>> def model():
        ...     z = pyro.sample("z", dist.Normal(0.0, 1.0))
        ...     return pyro.sample("x", dist.Normal(z, 0.5))
        >>> sampler = AncestralSampler(model, 500)
        >>> draws = sampler()
        >>> tuple(draws["z"].shape), tuple(draws["x"].shape), sampler.vectorized
        ((500,), (500,), True)
    """

    def __init__(self, model: Callable[..., Any], num_samples: int, *,
                 return_sites: Sequence[str] | None = None, parallel: bool | None = None) -> None:
        if not callable(model):
            raise TypeError(f"model: expected a callable Pyro model, got {type(model).__name__}")
        self.model = model
        self.num_samples = check_positive_int("num_samples", num_samples)
        if return_sites is not None:
            if isinstance(return_sites, str) or not all(isinstance(s, str) for s in return_sites):
                raise TypeError(f"return_sites: expected a sequence of site names, got {return_sites!r}")
            return_sites = tuple(return_sites)
            if not return_sites:
                raise ValueError("return_sites: expected at least one site name, got an empty sequence")
        self.return_sites = return_sites
        if parallel is not None and not isinstance(parallel, bool):
            raise TypeError(f"parallel: expected None, True or False, got {parallel!r}")
        self.parallel = parallel
        #: Whether the last call ran vectorized (``None`` before the first call).
        self.vectorized: bool | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Run the model with ``args``/``kwargs``; returns ``{site: (num_samples, *site_shape)}``.

        More than ``MAX_CHUNK`` draws are sized first by one draw (apart from the global RNG)
        and refused, naming ``num_samples``, when they would not fit in memory; those that fit
        are drawn ``MAX_CHUNK`` at a time."""
        if self.num_samples <= MAX_CHUNK:
            return self._draw(self.num_samples, args, kwargs)
        with torch.random.fork_rng():
            one = self._draw(1, args, kwargs)
        each = sum(v.numel() * v.element_size() for v in one.values())
        device = next(iter(one.values())).device if one else torch.device("cpu")
        check_fits("num_samples", self.num_samples, each, device)
        parts = [self._draw(k, args, kwargs) for k in chunks(self.num_samples)]
        return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}

    def _draw(self, num_samples: int, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
        modes = [True, False] if self.parallel is None else [self.parallel]
        for vectorized in modes:
            predictive = Predictive(self.model, num_samples=num_samples,
                                    return_sites=self.return_sites or (), parallel=vectorized)
            try:
                with module_params(self.model), torch.no_grad():
                    draws = predictive(*args, **kwargs)
            except _VECTORIZE_ERRORS:
                if vectorized and self.parallel is None:
                    continue  # not vectorizable: loop instead
                raise
            self.vectorized = vectorized
            missing = set(self.return_sites or ()) - set(draws)
            if missing:
                raise ValueError(f"return_sites: the model has no sample site {sorted(missing)}")
            return {name: value.detach() for name, value in draws.items()}
        raise AssertionError("unreachable")  # pragma: no cover


def ancestral_samples(model: Callable[..., Any], num_samples: int, /, *args: Any,
                      return_sites: Sequence[str] | None = None, parallel: bool | None = None,
                      **kwargs: Any) -> dict[str, torch.Tensor]:
    """``num_samples`` ancestral draws of every sample site of ``model(*args, **kwargs)``.

    ``model`` and ``num_samples`` are positional-only, so a model's own ``num_samples=`` keyword
    passes through (``ancestral_samples(vae.model, 100, None, num_samples=8)``: 100 draws of 8
    generated points). Vectorized when the model allows it, else looped: see
    :class:`AncestralSampler`. Each result has shape ``(num_samples, *site_shape)``.

    Examples:
        >>> from ppdgm.models import VAE
        >>> vae = VAE(x_shape=(4,), z_dim=2, hidden=(8,))
        >>> draws = ancestral_samples(vae.model, 10, None, num_samples=3)
        >>> {name: tuple(value.shape) for name, value in draws.items()}
        {'z': (10, 3, 2), 'x': (10, 3, 4)}
    """
    sampler = AncestralSampler(model, num_samples, return_sites=return_sites, parallel=parallel)
    return sampler(*args, **kwargs)


def module_params(*fns: Callable[..., Any]) -> contextlib.AbstractContextManager[Any]:
    """How the engine runs ``fns``: module-local parameters when their PyroModules were built so.

    Functions that are not bound methods of a PyroModule run in Pyro's current mode.
    """
    modules = [getattr(fn, "__self__", None) for fn in fns]
    modules = [m for m in modules if isinstance(m, PyroModule)]
    if modules and all(built_for_local_params(m) for m in modules):
        return local_params()
    return contextlib.nullcontext()
