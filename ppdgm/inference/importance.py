"""Log importance weights per particle and per data point, the core of IWAE and log p(x).

For a model/guide pair whose data points sit in one vectorized plate (``"data"`` by default),
:func:`log_weights` draws K particles z_k ~ q(z | x_i) for every data point at once and returns
the (K, batch) matrix of log w_ik = log p(x_i, z_ik) - log q(z_ik | x_i). The particles are a
vectorized plate of their own, so an encoder runs once per batch and a decoder once on all
K x batch latents.

Every latent site must lie inside the data plate: the per-data-point bound of Burda et al.
(2015) factorises over data points only when no latent is shared between them, and a model with
such a latent gets a clear error instead of a bound of the whole batch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import pyro
import pyro.poutine as poutine
import torch
from pyro.distributions.util import scale_and_mask
from pyro.infer.util import is_validation_enabled
from pyro.poutine.util import prune_subsample_sites

from .._validation import check_positive_int, check_program

__all__ = ["PARTICLE_PLATE", "PairCheck", "check_importance_pair", "log_weights", "nesting_of",
           "paired_traces", "particle_log_probs", "plate_nesting"]

PARTICLE_PLATE = "ppdgm_particles"


def plate_nesting(model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                  **kwargs: Any) -> int:
    """How many plate dimensions the model and guide use (their deepest ``plate`` nesting).

    Runs each once, without recording gradients, leaking sites to outer handlers or moving the
    global RNG (a later draw is the same as if this had not run).

    Examples:
        >>> from ppdgm.models.linear_gaussian import LinearGaussian
        >>> m = LinearGaussian()
        >>> plate_nesting(m.model, m.guide, m.sample(3))
        1
    """
    return nesting_of(*paired_traces(model, guide, *args, **kwargs))


def paired_traces(model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                  **kwargs: Any) -> tuple[Any, Any]:
    """One trace of the guide and one of the model replayed on it, run as :func:`plate_nesting`
    runs them (no gradients, nothing leaked, the global RNG untouched)."""
    check_program("model", model)
    check_program("guide", guide)
    with torch.no_grad(), poutine.block(), torch.random.fork_rng(devices=_cuda_devices(args, kwargs)):
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    return guide_trace, model_trace


def check_importance_pair(model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                          **kwargs: Any) -> tuple[Any, Any]:
    """Refuse a model without a likelihood of the data, or a guide that does not propose exactly
    the model's latent sites, as importance sampling (log p(x), IWAE, RWS, VIMCO, wake-sleep)
    needs; returns the pair of traces it ran (see :func:`paired_traces`).

    Examples:
        >>> from ppdgm.models import GAN, GANConfig
        >>> gan = GAN(GANConfig(x_shape=(2,), hidden=(4,)))
        >>> try:
        ...     check_importance_pair(gan.model, gan.guide, torch.zeros(1, 2))
        ... except ValueError as err:
        ...     print(str(err)[:31])
        model: a GAN has no likelihood,
    """
    owner = getattr(model, "__self__", None)
    reason = getattr(type(owner), "unsupported", {}).get("likelihood")
    if reason:
        raise ValueError(f"model: {reason}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pyro's own "vars in model but not guide" says less
        guide_trace, model_trace = paired_traces(model, guide, *args, **kwargs)
    guide_sites = prune_subsample_sites(guide_trace).nodes  # a plate's subsample is no latent
    sites = [(n, s) for n, s in prune_subsample_sites(model_trace).nodes.items()
             if s["type"] == "sample"]
    if not any(s["is_observed"] for _, s in sites):
        raise ValueError("model: observes nothing when given the data, so it has no likelihood "
                         "of them")
    latent = {n for n, s in sites if not s["is_observed"]}
    proposed = {n for n, s in guide_sites.items() if s["type"] == "sample" and not s["is_observed"]}
    if latent != proposed:
        raise ValueError(
            f"guide: proposes {sorted(proposed)} but the model's latent sites are {sorted(latent)} "
            f"(missing {sorted(latent - proposed)}, extra {sorted(proposed - latent)}); "
            "importance sampling needs the guide written for this model")
    return guide_trace, model_trace


class PairCheck:
    """:func:`check_importance_pair` once per model/guide pair an objective meets."""

    def __init__(self) -> None:
        self._seen: set[tuple[int, Any, int, Any]] = set()

    def __call__(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                 **kwargs: Any) -> None:
        key = (*_identity(model), *_identity(guide))
        if key not in self._seen:
            check_importance_pair(model, guide, *args, **kwargs)
            self._seen.add(key)


def _identity(f: Callable[..., Any]) -> tuple[int, Any]:
    # A bound method is a new object on every attribute access; its owner and function are not.
    return id(getattr(f, "__self__", f)), getattr(f, "__func__", None)


def nesting_of(guide_trace: Any, model_trace: Any) -> int:
    """The deepest plate nesting of a pair of traces (see :func:`plate_nesting`)."""
    deepest = 0
    for trace in (guide_trace, model_trace):
        for site in trace.nodes.values():
            if site["type"] == "sample":
                dims = [f.dim for f in site["cond_indep_stack"] if f.vectorized and f.dim is not None]
                if dims:
                    deepest = max(deepest, -min(dims))
    return deepest


def _cuda_devices(args: tuple, kwargs: dict) -> list[torch.device]:
    values = [*args, *kwargs.values()]
    return sorted({v.device for v in values if isinstance(v, torch.Tensor) and v.is_cuda}, key=str)


def log_weights(model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                num_particles: int = 1, max_plate_nesting: int | None = None,
                data_plate: str = "data", require_reparam: bool = False,
                **kwargs: Any) -> tuple[torch.Tensor, float]:
    """Log importance weights of shape ``(num_particles, batch)`` and the data plate's scale.

    The scale is 1 unless the data plate subsamples (``pyro.plate(..., subsample_size=...)``),
    when it is ``full_size / batch``. ``max_plate_nesting`` is found by running the pair once
    when not given; pass it to avoid that extra run in a loop. ``require_reparam=True`` raises
    when a latent is not reparameterizable (the weights would then carry no pathwise gradient).

    Examples:
        >>> from ppdgm.models.linear_gaussian import LinearGaussian
        >>> m = LinearGaussian()
        >>> lw, scale = log_weights(m.model, m.guide, m.sample(4), num_particles=10)
        >>> tuple(lw.shape), scale
        ((10, 4), 1.0)
    """
    log_p, log_q, scale = particle_log_probs(
        model, guide, *args, num_particles=num_particles, max_plate_nesting=max_plate_nesting,
        data_plate=data_plate, reparam=True if require_reparam else None, **kwargs,
    )
    return log_p - log_q, scale


def particle_log_probs(model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                       num_particles: int = 1, max_plate_nesting: int | None = None,
                       data_plate: str = "data", require_reparam: bool = False,
                       reparam: bool | None = None,
                       **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor, float]:
    """log p(x, z) and log q(z | x), each ``(num_particles, batch)``, and the plate's scale.

    The two halves of :func:`log_weights`, for objectives that weight them differently
    (reweighted wake-sleep takes gradients of each under normalized weights). ``reparam=True``
    (or ``require_reparam=True``) insists that every latent is reparameterizable, ``False``
    that none is (score-function estimators), ``None`` accepts both.

    Examples:
        >>> from ppdgm.models.linear_gaussian import LinearGaussian
        >>> m = LinearGaussian()
        >>> log_p, log_q, _ = particle_log_probs(m.model, m.guide, m.sample(4), num_particles=3)
        >>> tuple(log_p.shape), tuple(log_q.shape)
        ((3, 4), (3, 4))
    """
    check_program("model", model)
    check_program("guide", guide)
    check_positive_int("num_particles", num_particles)
    if max_plate_nesting is None:
        max_plate_nesting = plate_nesting(model, guide, *args, **kwargs)
    else:
        check_positive_int("max_plate_nesting", max_plate_nesting, minimum=0)
    particle_dim = -(max_plate_nesting + 1)

    def vectorize(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*a: Any, **k: Any) -> Any:
            with pyro.plate(PARTICLE_PLATE, num_particles, dim=particle_dim):
                return fn(*a, **k)

        return wrapped

    guide_trace = poutine.trace(vectorize(guide)).get_trace(*args, **kwargs)
    model_trace = poutine.trace(
        poutine.replay(vectorize(model), trace=guide_trace)
    ).get_trace(*args, **kwargs)
    if is_validation_enabled():
        # Pyro's own check that model and guide agree on their latent sites.
        from pyro.util import check_model_guide_match

        check_model_guide_match(model_trace, guide_trace, max_plate_nesting)
    guide_trace = prune_subsample_sites(guide_trace)
    model_trace = prune_subsample_sites(model_trace)
    if require_reparam:
        reparam = True
    if reparam is not None:
        for name, site in guide_trace.nodes.items():
            if site["type"] != "sample" or site["is_observed"]:
                continue
            if reparam and not site["fn"].has_rsample:
                raise ValueError(
                    f"guide: site {name!r} ({type(site['fn']).__name__}) is not reparameterizable; "
                    "importance-weighted training here needs pathwise gradients"
                )
            if not reparam and site["fn"].has_rsample:
                raise ValueError(
                    f"guide: site {name!r} ({type(site['fn']).__name__}) is reparameterizable; this "
                    "score-function estimator is for discrete latents (use IWAE for this guide)"
                )
    halves: dict[str, torch.Tensor] = {}
    scales: set[float] = set()
    for role, trace in (("model", model_trace), ("guide", guide_trace)):
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or (role == "guide" and site["is_observed"]):
                continue
            value, scale = _site_weights(name, site, role, max_plate_nesting, data_plate,
                                         num_particles)
            scales.add(scale)
            halves[role] = value if role not in halves else halves[role] + value
    if "model" not in halves:
        raise ValueError("model: the model has no sample site")
    if len(scales) > 1:
        raise ValueError(
            f"model: sites of plate {data_plate!r} carry different scales {sorted(scales)}; "
            "importance weights need one scale per data point"
        )
    log_p = halves["model"]
    log_q = halves.get("guide", torch.zeros_like(log_p))
    return log_p, log_q, scales.pop()


def _site_weights(name: str, site: dict[str, Any], role: str, max_plate_nesting: int,
                  data_plate: str, num_particles: int) -> tuple[torch.Tensor, float]:
    frame = next((f for f in site["cond_indep_stack"] if f.name == data_plate), None)
    if frame is None or frame.dim is None:
        where = "outside" if frame is None else "in a sequential (non-vectorized) form of"
        raise ValueError(
            f"{role}: site {name!r} is {where} the plate {data_plate!r}; per-data-point importance "
            f"weights need every sample site inside a vectorized plate named {data_plate!r} "
            "(pass data_plate= if yours has another name)"
        )
    log_p = site["fn"].log_prob(site["value"])
    log_p = scale_and_mask(log_p, 1.0, site["mask"])
    full = max_plate_nesting + 1
    if log_p.dim() < full:
        log_p = log_p.reshape((1,) * (full - log_p.dim()) + tuple(log_p.shape))
    if log_p.dim() != full:
        raise ValueError(
            f"{role}: site {name!r} has log-density shape {tuple(log_p.shape)}, more dimensions "
            f"than its {max_plate_nesting} plate(s); declare event dimensions with .to_event()"
        )
    data_pos = full + frame.dim
    log_p = log_p.movedim(data_pos, 1)
    particles, batch = log_p.shape[0], log_p.shape[1]
    log_p = log_p.reshape(particles, batch, -1).sum(-1).expand(num_particles, frame.size)
    return log_p, _plate_scale(site, frame)


def _plate_scale(site: dict[str, Any], frame: Any) -> float:
    scale = site["scale"]
    if isinstance(scale, torch.Tensor):
        if scale.numel() != 1:
            raise ValueError(
                f"model: site {site['name']!r} has a tensor scale of shape {tuple(scale.shape)}; "
                "importance weights need one scale for every data point"
            )
        scale = float(scale)
    expected = frame.full_size / frame.size if frame.full_size else 1.0
    if not math.isclose(float(scale), expected, rel_tol=1e-6):
        raise ValueError(
            f"model: site {site['name']!r} is scaled by {float(scale)} beyond its plate's "
            f"subsampling ({expected}); importance weights are not defined under poutine.scale"
        )
    return float(scale)
