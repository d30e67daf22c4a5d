"""A model run on every posterior draw: pointwise log-likelihood and posterior predictive.

Given S draws of a model's latent sites (from MCMC, say), :func:`run_on_draws` conditions the
model on each draw and returns, for every observed site, its log-likelihood per data point and a
fresh draw of it (the posterior predictive). It runs all S draws at once when it can: the model
runs inside one extra plate of size S, left of all its own plates, with each draw reshaped by
**its own site's** batch and event shape, so a vector latent drawn with ``.to_event(1)`` keeps its
event dimension on the right and its draw axis on the left. (Pyro's ``Predictive`` pads every draw
to the plate depth without regard to its event dimensions, which puts a vector latent's draw axis
where a data plate is: silently wrong when the number of draws equals that plate's size.)

The vectorized result is then checked against the model run alone on the first and the last
draw; a model that cannot broadcast over the extra plate (it raises, or its answer differs) is run
draw by draw instead. :attr:`PosteriorRun.vectorized` says which happened.

Examples:
    >>> import pyro, pyro.distributions as dist
    >>> def model(y):
    ...     mus = pyro.sample("mus", dist.Normal(torch.zeros(2), 3.0).to_event(1))
    ...     with pyro.plate("data", len(y)):
    ...         pyro.sample("y", dist.Normal(mus.sum(-1), 1.0), obs=y)
    >>> draws = {"mus": torch.randn(5, 2)}
    >>> run = run_on_draws(model, draws, torch.tensor([0.0, 1.0, 2.0]))
    >>> tuple(run.log_likelihood["y"].shape), tuple(run.predictive["y"].shape), run.vectorized
    ((5, 3), (5, 3), True)

    ``mus.sum(-1, keepdim=True)`` would add a batch dimension that does not broadcast over the
    draws' plate; the same call then runs draw by draw (``run.vectorized`` is ``False``) and gives
    the same shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import pyro
import pyro.poutine as poutine
import torch
from pyro.distributions.util import scale_and_mask

from ..importance import PARTICLE_PLATE

__all__ = ["PosteriorRun", "model_prototype", "run_on_draws"]

# What a model that cannot broadcast over the draws' plate raises (shape mismatches and the like).
_VECTORIZE_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, AssertionError)


class PosteriorRun(NamedTuple):
    """What :func:`run_on_draws` returns.

    Attributes:
        log_likelihood: per observed site, log p(x | z_s) of each data point, shape
            ``(S, *site_batch_shape)`` (masked elements 0).
        predictive: per observed site, one draw x_s ~ p(x | z_s), shape ``(S, *site_shape)``.
        prototype: a trace of the model run once, whose sites say how each value is laid out.
        vectorized: whether all draws ran at once (``False``: draw by draw).
    """

    log_likelihood: dict[str, torch.Tensor]
    predictive: dict[str, torch.Tensor]
    prototype: Any
    vectorized: bool


def model_prototype(model: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One trace of ``model(*args, **kwargs)``, without gradients or moving the global RNG."""
    with torch.no_grad(), poutine.block(), torch.random.fork_rng():
        return poutine.trace(model).get_trace(*args, **kwargs)


def run_on_draws(model: Callable[..., Any], draws: Mapping[str, torch.Tensor], *args: Any,
                 vectorize: bool | None = None, **kwargs: Any) -> PosteriorRun:
    """Run ``model(*args, **kwargs)`` conditioned on each of S draws of its latent sites.

    ``draws`` maps latent site names to tensors of shape ``(S, *site_shape)``, the site shape being
    the one the model gives that site. ``vectorize=None`` runs all draws at once when that agrees
    with the model run alone (checked on the first and last draw), else draw by draw;
    ``True``/``False`` insists. Random draws (the predictive) come from torch's global RNG.
    """
    if not callable(model):
        raise TypeError(f"model: expected a callable Pyro model, got {type(model).__name__}")
    if not isinstance(draws, Mapping) or not draws:
        raise TypeError(f"draws: expected a non-empty dict of site name -> tensor, got {draws!r}")
    bad = [k for k, v in draws.items() if not isinstance(v, torch.Tensor) or v.dim() == 0]
    if bad:
        raise TypeError(f"draws: site {bad[0]!r} should be a tensor with a leading draw axis, got "
                        f"{type(draws[bad[0]]).__name__}")
    sizes = {int(v.shape[0]) for v in draws.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError("draws: expected tensors with the same number of draws on their first axis, "
                         f"got shapes { {k: tuple(getattr(v, 'shape', ())) for k, v in draws.items()} }")
    if vectorize is not None and not isinstance(vectorize, bool):
        raise TypeError(f"vectorize: expected None, True or False, got {vectorize!r}")
    num = sizes.pop()
    prototype = model_prototype(model, *args, **kwargs)
    _check_sites(prototype, draws)
    if vectorize is not False:
        try:
            result = _vectorized(model, draws, prototype, num, args, kwargs)
        except _VECTORIZE_ERRORS:
            if vectorize:
                raise
        else:
            if vectorize or _agrees(model, draws, result, num, args, kwargs):
                return PosteriorRun(*result, prototype, True)
    log_lik, predictive = _looped(model, draws, range(num), args, kwargs)
    return PosteriorRun(log_lik, predictive, prototype, False)


def _draw(draws: Mapping[str, torch.Tensor], s: int) -> dict[str, torch.Tensor]:
    return {name: value[s] for name, value in draws.items()}


def _observed_sites(trace: Any) -> list[str]:
    return [name for name, site in trace.nodes.items()
            if site["type"] == "sample" and site["is_observed"]]


def _check_sites(prototype: Any, draws: Mapping[str, torch.Tensor]) -> None:
    for name, value in draws.items():
        site = prototype.nodes.get(name)
        if site is None or site["type"] != "sample":
            raise ValueError(f"draws: the model has no sample site {name!r}")
        shape = tuple(site["fn"].shape())
        if tuple(value.shape[1:]) != shape:
            raise ValueError(f"draws: site {name!r} should have shape (draws, "
                             f"{', '.join(map(str, shape))}) as the model gives it, "
                             f"got {tuple(value.shape)}")


def _site_log_lik(site: dict[str, Any]) -> torch.Tensor:
    fn = site["fn"]
    log_lik = scale_and_mask(fn.log_prob(site["value"]), 1.0, site["mask"])
    return log_lik.expand(fn.batch_shape)


def _vectorized(model: Callable[..., Any], draws: Mapping[str, torch.Tensor], prototype: Any,
                num: int, args: tuple, kwargs: dict) -> tuple[dict, dict]:
    nesting = max([-f.dim for site in prototype.nodes.values() if site["type"] == "sample"
                   for f in site["cond_indep_stack"] if f.vectorized and f.dim is not None] or [0])
    shaped = {}
    for name, value in draws.items():
        site = prototype.nodes[name]
        pad = (1,) * (nesting - len(site["fn"].batch_shape))
        shaped[name] = value.reshape(num, *pad, *site["fn"].shape())

    def all_draws(*a: Any, **k: Any) -> Any:
        with pyro.plate(PARTICLE_PLATE, num, dim=-(nesting + 1)):
            return poutine.condition(model, data=shaped)(*a, **k)

    with torch.no_grad(), poutine.block():
        trace = poutine.trace(all_draws).get_trace(*args, **kwargs)
    log_lik, predictive = {}, {}
    for name in _observed_sites(prototype):
        site, proto = trace.nodes[name], prototype.nodes[name]
        value = _site_log_lik(site)
        log_lik[name] = value.reshape(num, *proto["fn"].batch_shape)
        sample = site["fn"].sample()
        predictive[name] = sample.reshape(num, *proto["fn"].shape())
    return log_lik, predictive


def _looped(model: Callable[..., Any], draws: Mapping[str, torch.Tensor], which: Any, args: tuple,
            kwargs: dict) -> tuple[dict, dict]:
    log_lik: dict[str, list] = {}
    predictive: dict[str, list] = {}
    observed = None
    with torch.no_grad(), poutine.block():
        for s in which:
            trace = poutine.trace(poutine.condition(model, data=_draw(draws, s))).get_trace(
                *args, **kwargs)
            if observed is None:  # conditioning marks the drawn sites observed too
                observed = [n for n in _observed_sites(trace) if n not in draws]
            for name in observed:
                log_lik.setdefault(name, []).append(_site_log_lik(trace.nodes[name]))
                predictive.setdefault(name, []).append(trace.nodes[name]["fn"].sample())
    return ({k: torch.stack(v) for k, v in log_lik.items()},
            {k: torch.stack(v) for k, v in predictive.items()})


def _agrees(model: Callable[..., Any], draws: Mapping[str, torch.Tensor], result: tuple[dict, dict],
            num: int, args: tuple, kwargs: dict) -> bool:
    """Whether the vectorized log-likelihood equals the model's own on the first and last draw."""
    which = sorted({0, num - 1})
    with torch.random.fork_rng():
        alone, _ = _looped(model, draws, which, args, kwargs)
    together = result[0]
    if set(alone) != set(together):
        return False
    for name, value in alone.items():
        expected = value.to(together[name].dtype)
        got = together[name][which]
        if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-5, atol=1e-5,
                                                              equal_nan=True):
            return False
    return True
