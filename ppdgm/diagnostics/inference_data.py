"""ArviZ data from every ppdgm engine: MCMC runs, SVI-trained guides, ancestral draws and
training histories, as ``arviz.InferenceData`` on ArviZ 0.x and ``xarray.DataTree`` on ArviZ 1.x
(see :mod:`ppdgm.diagnostics.arviz_api`).

* :func:`from_mcmc`: a ``pyro.infer.MCMC`` run, the groups ``arviz.from_pyro`` writes, built by
  ppdgm itself (ArviZ 1.x has no Pyro converter; draws keep their dtypes). A ppdgm kernel that
  carries C chains as a batch dimension (``kernel.vectorized_chains == C``, see
  :mod:`ppdgm.inference.mcmc.base`) makes draws of shape ``(draws, C, ...)`` under MCMC; they are
  folded into ArviZ's ``chain`` dimension, MCMC chain m's kernel chain c becoming chain
  ``m * C + c``, so R-hat and ESS treat them as the chains they are.
* :func:`from_guide`: draws of the latent sites from a guide q(z | x) for each data point (the
  ``posterior`` group), the posterior predictive and the pointwise log-likelihood of the observed
  sites, and the importance weights log p(x, z) - log q(z | x) per data point (``sample_stats``
  ``log_weight``) with their PSIS k-hat (the attribute ``sample_stats.attrs["pareto_k"]``, or
  :func:`psis_khat` of the data).
* :func:`from_history`: the engine's per-step losses, one chain with one draw per update.
* :func:`to_inference_data`: one entry point for all of the above and for prior draws
  (``prior=``/``prior_predictive=`` dicts such as :func:`ppdgm.inference.sampling.ancestral_samples`
  returns: one chain, the draws along ``draw``).

Every group names its dimensions from the model's plates (:mod:`ppdgm.diagnostics.dims`): the
data plate's axis is ``"obs"`` (``obs_dim=``), any other plate keeps its name, and the remaining
axes of a site are ``<site>_dim_0, <site>_dim_1, ...``, the same in every group of MCMC and guide
outputs alike; ``dims=``/``coords=`` override them as in ArviZ. Only variables with
``(chain, draw)`` sit in ``posterior``-like groups and ``sample_stats``, as ArviZ's functions
expect. ArviZ is imported on first use, so importing ppdgm stays fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyro
import pyro.poutine as poutine
import torch
from pyro.distributions.util import scale_and_mask
from pyro.poutine.util import prune_subsample_sites

from .._memory import check_fits
from .._random import seeded
from .._validation import check_number, check_positive_int, check_tensor
from ..inference.history import History
from ..inference.importance import PARTICLE_PLATE, nesting_of, paired_traces, particle_log_probs
from ..inference.mcmc.base import typed_samples
from ..inference.sampling.ancestral import module_params
from ..inference.sampling.posterior import PosteriorRun, model_prototype, run_on_draws
from .arviz_api import container, dataset, is_container, psis_khat_by_row, with_groups
from .dims import label_group, label_site

__all__ = [
    "KHAT_THRESHOLD",
    "from_guide",
    "from_history",
    "from_mcmc",
    "psis_khat",
    "to_inference_data",
]

#: Above this PSIS k-hat the importance weights of a data point are unreliable (Vehtari et al.).
KHAT_THRESHOLD = 0.7

Draws = Mapping[str, "torch.Tensor | np.ndarray"]


# ---------------------------------------------------------------------------------------- MCMC


def from_mcmc(mcmc: Any, *, prior: Draws | None = None, prior_predictive: Draws | None = None,
              posterior_predictive: Draws | bool | None = None, log_likelihood: bool = True,
              coords: dict[str, Any] | None = None, dims: dict[str, list[str]] | None = None,
              data_plate: str = "data", obs_dim: str = "obs", seed: int | None = 0) -> Any:
    """ArviZ data of a finished ``pyro.infer.MCMC`` run (``InferenceData``, or a ``DataTree`` on
    ArviZ 1.x, which has no Pyro converter of its own).

    The groups are those ``arviz.from_pyro`` writes: ``posterior`` (each site in the dtype its
    kernel sampled it in, see :func:`ppdgm.inference.mcmc.typed_samples`), ``sample_stats``
    (``diverging``), ``log_likelihood`` of the observed sites (the model conditioned on every
    draw, see :func:`ppdgm.inference.sampling.run_on_draws`), ``observed_data``, and the given
    prior and predictive draws. ``posterior_predictive=True`` draws the posterior predictive from
    the same run of the model (one draw of each observed site per posterior draw, seeded by
    ``seed``); a dict passes draws of your own.

    Every dimension is named from the model's plates, as in every ppdgm group (see
    :mod:`ppdgm.diagnostics.dims`): the plate ``data_plate`` is ``obs_dim``, other plates keep
    their names, so prior, posterior, predictive, observed data and log-likelihood line up.
    When ``mcmc.kernel.vectorized_chains`` is an int C the kernel's chain axis is folded into
    ``chain`` first: ``num_chains * C`` chains, MCMC chain m's kernel chain c at index
    ``m * C + c``. ``posterior_predictive`` holds arrays of shape ``(chains, draws, ...)`` or
    ``(chains * draws, ...)`` in that chain order; ``prior``/``prior_predictive`` hold
    ``(draws, ...)`` arrays (one chain). A model that cannot be run on the draws loses its
    ``log_likelihood`` group with a warning that says why.

    Examples:
        >>> import pyro, pyro.distributions as dist, torch
        >>> from pyro.infer import MCMC, NUTS
        >>> def model(y):
        ...     mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        ...     with pyro.plate("data", len(y)):
        ...         pyro.sample("y", dist.Normal(mu, 1.0), obs=y)
        >>> mcmc = MCMC(NUTS(model), num_samples=20, warmup_steps=10, disable_progbar=True)
        >>> mcmc.run(torch.tensor([0.5, 1.5]))
        >>> idata = from_mcmc(mcmc, posterior_predictive=True)
        >>> dict(idata.posterior.sizes), dict(idata.log_likelihood.sizes)
        ({'chain': 1, 'draw': 20}, {'chain': 1, 'draw': 20, 'obs': 2})
        >>> dict(idata.posterior_predictive.sizes) == dict(idata.log_likelihood.sizes)
        True
    """
    _check_mcmc(mcmc)
    _check_labels(coords, dims)
    for name, value in (("data_plate", data_plate), ("obs_dim", obs_dim)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name}: expected a non-empty str, got {value!r}")
    if not isinstance(posterior_predictive, (bool, Mapping)) and posterior_predictive is not None:
        raise TypeError("posterior_predictive: expected True (draw it), a dict of draws or None, got "
                        f"{type(posterior_predictive).__name__}")
    chains = getattr(mcmc.kernel, "vectorized_chains", None)
    grouped = typed_samples(mcmc, group_by_chain=True)
    if chains is not None:
        check_positive_int("mcmc.kernel.vectorized_chains", chains)
        grouped = {k: _fold_chains(v, chains) for k, v in grouped.items()}
    first = next(iter(grouped.values()))
    n_chains, n_draws = int(first.shape[0]), int(first.shape[1])
    model = getattr(mcmc.kernel, "model", None)
    args = getattr(mcmc, "_args", None) or ()
    kwargs = getattr(mcmc, "_kwargs", None) or {}
    prototype = None if model is None else model_prototype(model, *args, **kwargs)

    def group(values: Mapping[str, np.ndarray], lead: int, *, log_lik: bool = False,
              **options: Any) -> Any:
        arrays, auto = label_group(values, prototype, lead=lead, data_plate=data_plate,
                                   obs_dim=obs_dim, log_likelihood=log_lik)
        return _dataset_of(arrays, coords, {**auto, **(dims or {})}, **options)

    def by_run(values: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().reshape(n_chains, n_draws, *v.shape[1:])
                for k, v in values.items() if v.numel()}

    groups: dict[str, Any] = {
        "posterior": group({k: v.detach().cpu().numpy() for k, v in grouped.items()}, 2),
        "sample_stats": dataset({"diverging": _diverging(mcmc, n_draws, chains)}),
    }
    observed = _observed(prototype)
    draw_it = posterior_predictive is True
    if observed and (log_likelihood or draw_it):
        flat = {k: v.reshape(n_chains * n_draws, *v.shape[2:]) for k, v in grouped.items()}
        with seeded(seed, first.device):
            run = _run_on_posterior(model, flat, args, kwargs)
        if run is not None:
            if log_likelihood:
                groups["log_likelihood"] = group(by_run(run.log_likelihood), 2, log_lik=True)
            if draw_it:  # a factor's empty draw is left out
                groups["posterior_predictive"] = group(by_run(run.predictive), 2)
    if isinstance(posterior_predictive, Mapping):
        values = _numpy_dict(posterior_predictive, "posterior_predictive")
        groups["posterior_predictive"] = group(
            {k: _by_run(v, n_chains, n_draws) for k, v in values.items()}, 2)
    # A factor (pyro.factor) is an observed site with an empty value: nothing to show as data.
    shown = {k: v for k, v in observed.items() if v.size}
    if shown:
        groups["observed_data"] = group(shown, 0, sample_dims=False)
    groups.update(_draw_groups(prior=prior, prior_predictive=prior_predictive, coords=coords,
                               dims=dims, prototype=prototype, data_plate=data_plate,
                               obs_dim=obs_dim))
    return container(groups)


def _check_mcmc(mcmc: Any) -> None:
    needed = ("get_samples", "kernel", "num_chains", "num_samples")
    if not all(hasattr(mcmc, name) for name in needed):
        raise TypeError(f"mcmc: expected a pyro.infer.MCMC, got {type(mcmc).__name__}")
    if getattr(mcmc, "_samples", True) is None:
        raise ValueError("mcmc: it has no draws yet; call mcmc.run(...) first")


def _fold_chains(value: torch.Tensor, chains: int) -> torch.Tensor:
    """(mcmc_chains, draws, C, ...) -> (mcmc_chains * C, draws, ...), chain m*C + c first."""
    if value.dim() < 3 or value.shape[2] != chains:
        raise ValueError(
            f"mcmc: a kernel with vectorized_chains={chains} should give draws of shape "
            f"(chains, draws, {chains}, ...), got {tuple(value.shape)}"
        )
    m, d = value.shape[:2]
    return value.transpose(1, 2).reshape(m * chains, d, *value.shape[3:])


def _diverging(mcmc: Any, n_draws: int, chains: int | None) -> np.ndarray:
    per_chain = getattr(mcmc, "_diagnostics", None)
    if not per_chain or any(d is None for d in per_chain):
        divergences = mcmc.diagnostics().get("divergences", {})
        per_chain = [{"divergences": divergences.get(f"chain {i}", [])}
                     for i in range(mcmc.num_chains)]
    flags = np.zeros((mcmc.num_chains, n_draws), dtype=bool)
    for m, diagnostics in enumerate(per_chain):
        indices = [int(i) for i in (diagnostics.get("divergences", []) or [])]
        outside = [i for i in indices if not 0 <= i < n_draws]
        if outside:
            # A kernel that is not reset between chains keeps counting past its own draws.
            raise ValueError(
                f"mcmc: chain {m} reports divergences at draws {outside[:5]}, outside its "
                f"{n_draws} draws; its kernel ({type(mcmc.kernel).__name__}) must start every "
                "chain afresh in cleanup()")
        flags[m, indices] = True
    # A divergence is a step of the whole batch: it marks all C chains of that MCMC chain.
    return flags if chains is None else np.repeat(flags, chains, axis=0)


def _observed(prototype: Any) -> dict[str, np.ndarray]:
    if prototype is None:
        return {}
    return {name: site["value"].detach().cpu().numpy() for name, site in prototype.nodes.items()
            if site["type"] == "sample" and site["is_observed"]}


def _run_on_posterior(model: Callable[..., Any], samples: dict[str, torch.Tensor], args: tuple,
                      kwargs: dict) -> PosteriorRun | None:
    try:
        return run_on_draws(model, samples, *args, **kwargs)
    except Exception as err:  # noqa: BLE001 - any failure of the user's model means "no group"
        warnings.warn(
            "log_likelihood: the model could not be run on the posterior draws, so the "
            f"log_likelihood group is left out ({type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}); pass "
            "log_likelihood=False to skip it", UserWarning, stacklevel=3)
        return None


def _by_run(value: np.ndarray, n_chains: int, n_draws: int) -> np.ndarray:
    if value.shape[:2] == (n_chains, n_draws):
        return value
    if value.shape[0] == n_chains * n_draws:
        return value.reshape(n_chains, n_draws, *value.shape[1:])
    raise ValueError(f"posterior_predictive: expected arrays of shape ({n_chains}, {n_draws}, ...) or "
                     f"({n_chains * n_draws}, ...), got {value.shape}")


def _check_labels(coords: object, dims: object) -> None:
    if coords is not None and not isinstance(coords, Mapping):
        raise TypeError(f"coords: expected a dict of dimension name -> labels, got {type(coords).__name__}")
    if dims is not None and (not isinstance(dims, Mapping) or not all(
            isinstance(v, (list, tuple)) and all(isinstance(d, str) for d in v) for v in dims.values())):
        raise TypeError(f"dims: expected a dict of site name -> list of dimension names, got {dims!r}")


def _dataset_of(values: dict[str, np.ndarray], coords: dict[str, Any] | None,
                dims: dict[str, list[str]] | None, **options: Any) -> Any:
    _check_labels(coords, dims)
    return dataset(values, coords=_used_coords(coords, dims or {}, values), dims=dims, **options)


# --------------------------------------------------------------------------------------- guide


@torch.no_grad()
def from_guide(model: Callable[..., Any], guide: Callable[..., Any], data: torch.Tensor,
               num_samples: int = 100, *, chains: int = 1, model_args: tuple = (),
               model_kwargs: dict[str, Any] | None = None, data_plate: str = "data",
               obs_dim: str = "obs", posterior_predictive: bool = True,
               coords: dict[str, Any] | None = None, dims: dict[str, list[str]] | None = None,
               seed: int | None = 0) -> Any:
    """``InferenceData`` of a guide q(z | x) on ``data``: its draws, their fit, their weights.

    Draws ``chains * num_samples`` independent z ~ q(z | x_i) for every data point at once (one
    vectorized pass; ``chains`` only groups them, so that R-hat and ESS are defined) and returns
    the groups

    * ``posterior``: each latent site of the guide, dims ``(chain, draw, obs, <site>_dim_0, ...)``;
    * ``posterior_predictive``: each observed site of the model drawn given those z;
    * ``log_likelihood``: log p(x_i | z) of each observed site, dims ``(chain, draw, obs)``;
    * ``sample_stats``: ``log_weight`` = log p(x_i, z) - log q(z | x_i), dims
      ``(chain, draw, obs)``, and, as the attribute ``pareto_k`` (an array in ``obs`` order; a
      value per data point is no draw, and ArviZ's ``summary`` and ``concat`` expect only draws
      in ``sample_stats``), its PSIS k-hat per data point: above :data:`KHAT_THRESHOLD` (0.7,
      the attribute ``pareto_k_threshold``) the guide's importance weights for that point are
      unreliable (an importance-sampled log p(x) of it cannot be trusted);
    * ``observed_data``: ``data`` under the observed sites' names.

    ``model(data, *model_args, **model_kwargs)`` and the guide must keep every sample site inside
    the vectorized plate ``data_plate`` (as :func:`ppdgm.inference.importance.log_weights`
    requires). ``seed`` fixes the draws and restores the global RNG afterwards (``None``: use it).

    Examples:
        >>> from ppdgm.models import LinearGaussian
        >>> m = LinearGaussian()
        >>> idata = from_guide(m.model, m.guide, m.sample(3), num_samples=50, chains=2)
        >>> dict(idata.posterior.sizes)
        {'chain': 2, 'draw': 50, 'obs': 3, 'z_dim_0': 1}
        >>> dict(idata.sample_stats.log_weight.sizes), idata.sample_stats.attrs["pareto_k"].shape
        ({'chain': 2, 'draw': 50, 'obs': 3}, (3,))
    """
    for name, fn in (("model", model), ("guide", guide)):
        if not callable(fn):
            raise TypeError(f"{name}: expected a callable Pyro program, got {type(fn).__name__}")
    check_tensor("data", data)
    if data.dim() == 0 or data.shape[0] == 0:
        raise ValueError(f"data: expected a batch of at least one data point, got shape "
                         f"{tuple(data.shape)}")
    check_positive_int("num_samples", num_samples)
    check_positive_int("chains", chains)
    for name, value in (("data_plate", data_plate), ("obs_dim", obs_dim)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name}: expected a non-empty str, got {value!r}")
    if not isinstance(model_args, tuple):
        raise TypeError(f"model_args: expected a tuple, got {type(model_args).__name__}")
    model_kwargs = dict(model_kwargs or {})
    args = (data, *model_args)
    total = chains * num_samples

    with module_params(model, guide), seeded(seed, data.device):
        one_guide, one_model = paired_traces(model, guide, *args, **model_kwargs)
        nesting = nesting_of(one_guide, one_model)
        # Every site's value and log-density, for each of the draws at once.
        each = 2 * sum(site["value"].numel() * site["value"].element_size()
                       for trace in (one_guide, one_model) for site in trace.nodes.values()
                       if site["type"] == "sample" and isinstance(site["value"], torch.Tensor))
        check_fits("num_samples", total, each, data.device, what="draws (chains x num_samples)")

        def vectorize(fn: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(*a: Any, **k: Any) -> Any:
                with pyro.plate(PARTICLE_PLATE, total, dim=-(nesting + 1)):
                    return fn(*a, **k)

            return wrapped

        guide_trace = poutine.trace(vectorize(guide)).get_trace(*args, **model_kwargs)
        model_trace = poutine.trace(
            poutine.replay(vectorize(model), trace=guide_trace)).get_trace(*args, **model_kwargs)
        # The weights of exactly these draws: the guide is replayed on its own trace.
        log_p, log_q, _ = particle_log_probs(
            model, poutine.replay(guide, trace=guide_trace), *args, num_particles=total,
            max_plate_nesting=nesting, data_plate=data_plate, **model_kwargs)
        guide_trace = prune_subsample_sites(guide_trace)
        model_trace = prune_subsample_sites(model_trace)

        groups: dict[str, dict[str, np.ndarray]] = {
            "posterior": {}, "posterior_predictive": {}, "log_likelihood": {}, "observed_data": {}}
        auto_dims: dict[str, dict[str, list[str]]] = {name: {} for name in groups}
        for name, site in guide_trace.nodes.items():
            if site["type"] != "sample" or site["is_observed"]:
                continue
            value, names = _label(site, site["value"], site["fn"].event_dim, 1,
                                  data_plate, obs_dim)
            groups["posterior"][name] = _by_chain(value, chains)
            auto_dims["posterior"][name] = names
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample" or not site["is_observed"]:
                continue
            fn, event_dim = site["fn"], site["fn"].event_dim
            log_lik = scale_and_mask(fn.log_prob(site["value"]), 1.0, site["mask"])
            log_lik = log_lik.expand(fn.batch_shape)
            value, names = _label(site, log_lik, 0, 1, data_plate, obs_dim)
            groups["log_likelihood"][name] = _by_chain(value, chains)
            auto_dims["log_likelihood"][name] = names
            if not site["value"].numel():
                continue  # a factor: a log-likelihood term with no data to show or redraw
            if posterior_predictive:
                value, names = _label(site, fn.sample(), event_dim, 1, data_plate, obs_dim)
                groups["posterior_predictive"][name] = _by_chain(value, chains)
                auto_dims["posterior_predictive"][name] = names
            value, names = _label(site, site["value"], event_dim, 0, data_plate, obs_dim)
            groups["observed_data"][name] = value
            auto_dims["observed_data"][name] = names
    if not groups["posterior"]:
        raise ValueError("guide: it has no latent sample site, so there is no posterior to draw")

    log_weight = (log_p - log_q).detach().cpu()
    groups["sample_stats"] = {"log_weight": _by_chain(log_weight.numpy(), chains)}
    auto_dims["sample_stats"] = {"log_weight": [obs_dim]}
    # One draw has no tail to fit: k-hat is then unknown.
    khat = psis_khat(log_weight) if total > 1 else np.full(log_weight.shape[1], np.nan)

    datasets = {}
    for group, values in groups.items():
        if not values:
            continue
        group_dims = {**auto_dims[group], **(dims or {})}
        datasets[group] = dataset(values, coords=_used_coords(coords, group_dims, values),
                                  dims=group_dims, sample_dims=group != "observed_data")
    # Per data point, not per draw: ArviZ's schema has no (chain, draw)-less variables in
    # sample_stats (summary and concat fail on them), so k-hat is an attribute, in obs order.
    stats = datasets["sample_stats"]
    stats.attrs["pareto_k"] = np.atleast_1d(khat).astype(np.float64)
    stats.attrs["pareto_k_threshold"] = KHAT_THRESHOLD
    stats.attrs["num_particles"] = total
    return container(datasets)


def _label(site: dict[str, Any], value: torch.Tensor, event_dim: int, lead: int,
           data_plate: str, obs_dim: str) -> tuple[np.ndarray, list[str]]:
    return label_site(site, value.detach().cpu().numpy(), lead=lead, event_dim=event_dim,
                      data_plate=data_plate, obs_dim=obs_dim)


def _by_chain(array: np.ndarray, chains: int) -> np.ndarray:
    return array.reshape(chains, array.shape[0] // chains, *array.shape[1:])


def _used_coords(coords: dict[str, Any] | None, dims: dict[str, list[str]],
                 values: Mapping[str, np.ndarray]) -> dict[str, Any] | None:
    if not coords:
        return None
    used = {d for name in values for d in dims.get(name, [])} | {"chain", "draw"}
    return {k: v for k, v in coords.items() if k in used} or None


# ----------------------------------------------------------------------------------- k-hat


def psis_khat(log_weights: Any, *,
              reff: float = 1.0) -> np.ndarray:
    """The Pareto-smoothed importance sampling k-hat of each data point's log weights.

    ``log_weights`` has the draws along its first axis: shape ``(draws,)`` (one point, returns a
    0-d array) or ``(draws, points)`` (returns ``(points,)``), or ArviZ data (``InferenceData``
    or ``DataTree``) whose ``sample_stats`` hold ``log_weight`` (as :func:`from_guide` writes).
    ``reff`` is the relative efficiency of the draws (1 for independent draws from a guide).
    Computed by ArviZ's PSIS (``arviz.psislw`` on 0.x, ``arviz_stats`` on 1.x): k-hat < 0.5 is
    good, 0.5 to 0.7 acceptable, above :data:`KHAT_THRESHOLD` (0.7) the weights are too
    heavy-tailed to trust. Weights that are
    constant up to rounding error (64 ulps of their dtype; the guide is the exact posterior)
    have k-hat ``-inf``, where ArviZ would find no tail and answer ``inf``. The tail fit needs
    about 25 draws or more; with fewer ArviZ answers ``inf`` (unreliable) too.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> light = 0.1 * torch.randn(1000, 2, generator=g)      # a near-exact guide
        >>> heavy = 3.0 * torch.randn(1000, 2, generator=g)      # a poor one
        >>> bool((psis_khat(light) < 0.5).all()), bool((psis_khat(heavy) > 0.7).all())
        (True, True)
        >>> psis_khat(torch.zeros(100, 3))
        array([-inf, -inf, -inf])
    """
    if is_container(log_weights):
        if "sample_stats" not in log_weights:
            raise ValueError("log_weights: the ArviZ data has no sample_stats group")
        stats = log_weights["sample_stats"]
        if "log_weight" not in stats:
            raise ValueError("log_weights: the ArviZ data has no sample_stats.log_weight")
        lw = stats["log_weight"]
        array = lw.stack(__sample__=("chain", "draw")).transpose("__sample__", ...).values
    elif isinstance(log_weights, torch.Tensor):
        array = log_weights.detach().cpu().numpy()
    elif isinstance(log_weights, np.ndarray):
        array = log_weights
    else:
        raise TypeError("log_weights: expected a tensor, an ndarray or ArviZ data, got "
                        f"{type(log_weights).__name__}")
    if array.ndim not in (1, 2) or array.shape[0] < 2:
        raise ValueError(f"log_weights: expected shape (draws,) or (draws, points) with at least "
                         f"2 draws, got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"log_weights: expected floating-point values, got {array.dtype}")
    if np.isnan(array).any() or np.isposinf(array).any():
        raise ValueError("log_weights: contains NaN or +inf values")
    check_number("reff", reff, above=0)
    eps = np.finfo(array.dtype).eps
    points = array.reshape(array.shape[0], -1).astype(np.float64)
    with np.errstate(invalid="ignore"):
        spread = points.max(0) - points.min(0)
    scale = np.maximum(1.0, np.abs(points).max(0))
    constant = np.isfinite(spread) & (spread <= 64 * eps * scale)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        khat = psis_khat_by_row(points.T.copy(), float(reff))
    khat = np.where(constant, -np.inf, np.asarray(khat, dtype=np.float64))
    return khat.reshape(array.shape[1:])


# --------------------------------------------------------------------------------- history


def from_history(history: History) -> Any:
    """``InferenceData`` of a training :class:`~ppdgm.inference.History`: its losses as draws.

    ``sample_stats`` holds, for each player (dimension ``player``), one chain whose draw k is the
    player's k-th optimizer update: ``loss`` (the objective as returned), ``loss_per_example``
    (``loss / batch_size``), and the update's ``step``, ``epoch`` and ``batch_size``. A player
    with fewer updates than another is padded with NaN. With one player updated once per step,
    draw k is step k. When epochs were closed, the group ``epoch_stats`` holds the epoch table
    the same way, draw k being the k-th closed epoch: ``epoch``, ``loss_per_example``,
    ``loss_mean``, ``steps`` and ``seconds`` (its own group because its draws count epochs, not
    updates; every variable has ``(chain, draw)``, as ArviZ's ``summary`` and ``concat`` expect).

    Examples:
        >>> h = History()
        >>> for s in range(6):
        ...     h.record_step(step=s, epoch=s // 3, player="svi", loss=10.0 - s, batch_size=2)
        >>> idata = from_history(h)
        >>> idata.sample_stats.loss.sel(player="svi").values[0].tolist()
        [10.0, 9.0, 8.0, 7.0, 6.0, 5.0]
    """
    if not isinstance(history, History):
        raise TypeError(f"history: expected a History, got {type(history).__name__}")
    if len(history) == 0:
        raise ValueError("history: no steps recorded, nothing to convert")

    frame = history.to_frame("steps")
    players = history.players()
    counts = frame.groupby("player", sort=False).size()
    draws = int(counts.max())
    fields = {"loss": "loss", "step": "step", "epoch": "epoch", "batch_size": "batch_size"}
    values = {name: np.full((1, draws, len(players)), np.nan) for name in fields}
    for j, player in enumerate(players):
        rows = frame[frame["player"] == player]
        for name, column in fields.items():
            values[name][0, : len(rows), j] = rows[column].to_numpy(dtype=np.float64)
    values["loss_per_example"] = values["loss"] / values["batch_size"]
    groups = {"sample_stats": dataset(values, coords={"player": players},
                                      dims={name: ["player"] for name in values})}
    if history.epochs:
        epochs = history.to_frame("epochs").drop_duplicates(["epoch", "player"], keep="last")
        table = {}
        for name in ("loss_per_example", "loss_mean", "steps", "seconds"):
            pivot = epochs.pivot(index="epoch", columns="player", values=name)
            table[name] = pivot.reindex(columns=players).astype(np.float64).to_numpy()[None]
        numbers = pivot.index.to_numpy(dtype=np.float64)[:, None]
        table = {"epoch": np.where(np.isnan(table["loss_mean"]), np.nan, numbers[None]), **table}
        groups["epoch_stats"] = dataset(table, coords={"player": players},
                                        dims={name: ["player"] for name in table})
    return container(groups)


# ------------------------------------------------------------------------------ entry point


def to_inference_data(source: Any = None, *, model: Callable[..., Any] | None = None,
                      guide: Callable[..., Any] | None = None, data: torch.Tensor | None = None,
                      num_samples: int = 100, chains: int = 1, prior: Draws | None = None,
                      prior_predictive: Draws | None = None,
                      posterior_predictive: Draws | bool | None = None,
                      log_likelihood: bool = True, coords: dict[str, Any] | None = None,
                      dims: dict[str, list[str]] | None = None, model_args: tuple = (),
                      model_kwargs: dict[str, Any] | None = None, seed: int | None = 0) -> Any:
    """``arviz.InferenceData`` from whatever ppdgm produced.

    * ``source`` a ``pyro.infer.MCMC`` run: :func:`from_mcmc` (vectorized chains folded into
      ``chain``);
    * ``source`` a :class:`~ppdgm.inference.History`: :func:`from_history`;
    * ``guide=``, ``model=`` and ``data=``: :func:`from_guide` with ``num_samples`` draws per
      chain;
    * ``prior=``/``prior_predictive=`` (and ``posterior_predictive=`` without a source): dicts of
      ``(draws, ...)`` arrays, e.g. from :func:`ppdgm.inference.sampling.ancestral_samples`, as
      one chain. With an MCMC run or a guide they are added to its groups, their dimensions named
      from the model's plates like the posterior's. Without either, ``model=`` (run once as
      ``model(*model_args, **model_kwargs)``) names them; with neither they get ArviZ's default
      names.

    ``posterior_predictive=True`` with an MCMC run draws it (see :func:`from_mcmc`).

    Examples:
        >>> import pyro.distributions as dist, pyro
        >>> from ppdgm.inference.sampling import ancestral_samples
        >>> def model():
        ...     z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        ...     pyro.sample("x", dist.Normal(z, 0.1).to_event(1))
        >>> draws = ancestral_samples(model, 30)
        >>> idata = to_inference_data(prior={"z": draws["z"]}, prior_predictive={"x": draws["x"]})
        >>> dict(idata.prior.sizes), list(idata.prior_predictive.data_vars)
        ({'chain': 1, 'draw': 30, 'z_dim_0': 2}, ['x'])

        Prior draws of a model with a data plate, named by it:

        >>> def model(n):
        ...     with pyro.plate("data", n):
        ...         pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        >>> draws = ancestral_samples(model, 30, 5)
        >>> dict(to_inference_data(prior=draws, model=model, model_args=(5,)).prior.z.sizes)
        {'chain': 1, 'draw': 30, 'obs': 5, 'z_dim_0': 2}
    """
    _check_labels(coords, dims)
    # Checked whatever the source, so that a bad value is never silently ignored.
    check_positive_int("num_samples", num_samples)
    check_positive_int("chains", chains)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise TypeError(f"seed: expected an int >= 0 or None, got {seed!r}")
    if source is not None and (guide is not None or data is not None or model is not None):
        raise ValueError("source: pass either a source (MCMC or History) or guide=/model=/data=, "
                         "not both")
    if not isinstance(model_args, tuple):
        raise TypeError(f"model_args: expected a tuple, got {type(model_args).__name__}")
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise TypeError(f"model_kwargs: expected a dict, got {type(model_kwargs).__name__}")
    model_kwargs = dict(model_kwargs or {})
    if isinstance(source, History):
        if any(v is not None for v in (prior, prior_predictive, posterior_predictive)):
            raise ValueError("source: a History has no draws to add prior/posterior draws to")
        return from_history(source)
    if source is not None:
        if not hasattr(source, "get_samples"):
            raise TypeError("source: expected a pyro.infer.MCMC or a History, got "
                            f"{type(source).__name__}")
        return from_mcmc(source, prior=prior, prior_predictive=prior_predictive,
                         posterior_predictive=posterior_predictive,
                         log_likelihood=log_likelihood, coords=coords, dims=dims, seed=seed)
    if posterior_predictive is True:
        raise ValueError("posterior_predictive: True draws it from an MCMC run; pass the run as source")
    if guide is not None or data is not None:
        missing = [n for n, v in (("model", model), ("guide", guide), ("data", data)) if v is None]
        if missing:
            raise ValueError(f"{missing[0]}: needed to draw from a guide (pass model=, guide= "
                             "and data=)")
        if posterior_predictive is not None:
            raise ValueError("posterior_predictive: from a guide it is drawn, not passed")
        idata = from_guide(model, guide, data, num_samples, chains=chains, coords=coords,
                           dims=dims, model_args=model_args, model_kwargs=model_kwargs, seed=seed)
        if prior is None and prior_predictive is None:
            return idata
        with module_params(model):
            prototype = model_prototype(model, data, *model_args, **model_kwargs)
        return with_groups(idata, _draw_groups(prior=prior, prior_predictive=prior_predictive,
                                               coords=coords, dims=dims, prototype=prototype))
    if all(v is None for v in (prior, prior_predictive, posterior_predictive)):
        raise ValueError("source: nothing to convert; pass an MCMC run, a History, "
                         "guide=/model=/data=, or prior=/prior_predictive= draws")
    prototype = None
    if model is not None:
        if not callable(model):
            raise TypeError(f"model: expected a callable Pyro program, got {type(model).__name__}")
        with module_params(model):
            prototype = model_prototype(model, *model_args, **model_kwargs)
    return container(_draw_groups(prior=prior, prior_predictive=prior_predictive,
                                  posterior_predictive=posterior_predictive, coords=coords,
                                  dims=dims, prototype=prototype))


def _numpy_dict(draws: Draws | None, name: str) -> dict[str, np.ndarray] | None:
    if draws is None:
        return None
    if not isinstance(draws, Mapping) or not draws:
        raise TypeError(f"{name}: expected a non-empty dict of site name -> array, got "
                        f"{type(draws).__name__}")
    out = {}
    for site, value in draws.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            raise TypeError(f"{name}: site {site!r} should be an array with a leading draw axis, "
                            f"got {type(value).__name__}")
        out[str(site)] = value
    sizes = {v.shape[0] for v in out.values()}
    if len(sizes) > 1:
        raise ValueError(f"{name}: every site needs the same number of draws (leading axis), got "
                         f"{sorted(sizes)}")
    return out


def _draw_groups(*, coords: dict[str, Any] | None, dims: dict[str, list[str]] | None,
                 prototype: Any = None, data_plate: str = "data", obs_dim: str = "obs",
                 **groups: Draws | None) -> dict[str, Any]:
    """Datasets of ``(draws, ...)`` arrays, one chain each, named by ``prototype``'s plates."""
    out = {}
    for group, draws in groups.items():
        values = _numpy_dict(draws, group)
        if values is not None:
            arrays, auto = label_group({k: v[None] for k, v in values.items()}, prototype, lead=2,
                                       data_plate=data_plate, obs_dim=obs_dim)
            out[group] = _dataset_of(arrays, coords, {**auto, **(dims or {})})
    return out
