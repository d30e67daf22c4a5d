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
  ``log_weight``) with their PSIS k-hat (``sample_stats`` ``pareto_k``, :func:`psis_khat`).
* :func:`from_history`: the engine's per-step losses, one chain with one draw per update.
* :func:`to_inference_data`: one entry point for all of the above and for prior draws
  (``prior=``/``prior_predictive=`` dicts such as :func:`ppdgm.inference.sampling.ancestral_samples`
  returns: one chain, the draws along ``draw``).

In :func:`from_guide` the data-point axis is named ``"obs"`` (``obs_dim=``), any other plate by its
name, and a site's event dimensions ``<site>_dim_0, <site>_dim_1, ...``; ``dims=``/``coords=``
override them as in ArviZ. ArviZ is imported on first use, so importing ppdgm stays fast.
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
from pyro.infer import Predictive
from pyro.poutine.util import prune_subsample_sites

from .._random import seeded
from .._validation import check_positive_int, check_tensor
from ..inference.history import History
from ..inference.importance import PARTICLE_PLATE, particle_log_probs, plate_nesting
from ..inference.mcmc.base import typed_samples
from ..inference.sampling.ancestral import module_params
from .arviz_api import container, dataset, is_container, psis_khat_by_row, with_groups

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
              posterior_predictive: Draws | None = None, log_likelihood: bool = True,
              coords: dict[str, Any] | None = None,
              dims: dict[str, list[str]] | None = None) -> Any:
    """ArviZ data of a finished ``pyro.infer.MCMC`` run (``InferenceData``, or a ``DataTree`` on
    ArviZ 1.x, which has no Pyro converter of its own).

    The groups are those ``arviz.from_pyro`` writes: ``posterior`` (each site in the dtype its
    kernel sampled it in, see :func:`ppdgm.inference.mcmc.typed_samples`), ``sample_stats``
    (``diverging``), ``log_likelihood`` of the observed sites (one vectorized run of the model
    conditioned on every draw), ``observed_data``, and the given prior and predictive draws.
    When ``mcmc.kernel.vectorized_chains`` is an int C the kernel's chain axis is folded into
    ``chain`` first: ``num_chains * C`` chains, MCMC chain m's kernel chain c at index
    ``m * C + c``. ``posterior_predictive`` holds arrays of shape ``(chains, draws, ...)`` or
    ``(chains * draws, ...)`` in that chain order; ``prior``/``prior_predictive`` hold
    ``(draws, ...)`` arrays (one chain). A model that cannot be run on all draws at once loses
    its ``log_likelihood`` group with a warning that says why.

    Examples:
        >>> import pyro, pyro.distributions as dist, torch
        >>> from pyro.infer import MCMC, NUTS
        >>> def model(y):
        ...     mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        ...     with pyro.plate("data", len(y)):
        ...         pyro.sample("y", dist.Normal(mu, 1.0), obs=y)
        >>> mcmc = MCMC(NUTS(model), num_samples=20, warmup_steps=10, disable_progbar=True)
        >>> mcmc.run(torch.tensor([0.5, 1.5]))
        >>> idata = from_mcmc(mcmc)
        >>> dict(idata.posterior.sizes), dict(idata.log_likelihood.sizes)
        ({'chain': 1, 'draw': 20}, {'chain': 1, 'draw': 20, 'y_dim_0': 2})
    """
    _check_mcmc(mcmc)
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

    groups: dict[str, Any] = {
        "posterior": _dataset_of({k: v.detach().cpu().numpy() for k, v in grouped.items()},
                                 coords, dims),
        "sample_stats": dataset({"diverging": _diverging(mcmc, n_draws, chains)}),
    }
    observed = _observed(model, args, kwargs)
    if log_likelihood and observed:
        flat = {k: v.reshape(n_chains * n_draws, *v.shape[2:]) for k, v in grouped.items()}
        values = _pointwise_log_likelihood(model, flat, observed, args, kwargs, n_chains, n_draws)
        if values is not None:
            groups["log_likelihood"] = _dataset_of(values, coords, dims, skip_event_dims=True)
    if posterior_predictive is not None:
        values = _numpy_dict(posterior_predictive, "posterior_predictive")
        groups["posterior_predictive"] = _dataset_of(
            {k: _by_run(v, n_chains, n_draws) for k, v in values.items()}, coords, dims)
    if observed:
        groups["observed_data"] = _dataset_of(observed, coords, dims, sample_dims=False)
    groups.update(_draw_groups(prior=prior, prior_predictive=prior_predictive, coords=coords,
                               dims=dims))
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
        flags[m, list(diagnostics.get("divergences", []) or [])] = True
    # A divergence is a step of the whole batch: it marks all C chains of that MCMC chain.
    return flags if chains is None else np.repeat(flags, chains, axis=0)


def _observed(model: Callable[..., Any] | None, args: tuple, kwargs: dict) -> dict[str, np.ndarray]:
    if model is None:
        return {}
    with torch.no_grad():
        trace = poutine.trace(model).get_trace(*args, **kwargs)
    return {name: site["value"].detach().cpu().numpy() for name, site in trace.nodes.items()
            if site["type"] == "sample" and site["is_observed"]}


def _pointwise_log_likelihood(model: Callable[..., Any], samples: dict[str, torch.Tensor],
                              observed: dict[str, np.ndarray], args: tuple, kwargs: dict,
                              n_chains: int, n_draws: int) -> dict[str, np.ndarray] | None:
    try:
        with torch.no_grad():
            trace = Predictive(model, posterior_samples=samples).get_vectorized_trace(*args, **kwargs)
        values = {}
        for name in observed:
            site = trace.nodes[name]
            log_lik = site["fn"].log_prob(site["value"]).detach().cpu().numpy()
            values[name] = log_lik.reshape(n_chains, n_draws, *log_lik.shape[1:])
        return values
    except Exception as err:  # noqa: BLE001 - any failure of the user's model means "no group"
        warnings.warn(
            "log_likelihood: the model could not be run on all draws at once, so the "
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
      ``(chain, draw, obs)``, and ``pareto_k``, its PSIS k-hat per data point (dims ``(obs,)``):
      above :data:`KHAT_THRESHOLD` (0.7) the guide's importance weights for that point are
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
        >>> dict(idata.sample_stats.log_weight.sizes), dict(idata.sample_stats.pareto_k.sizes)
        ({'chain': 2, 'draw': 50, 'obs': 3}, {'obs': 3})
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
        nesting = plate_nesting(model, guide, *args, **model_kwargs)

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
            value, names = _label(site, site["value"], site["fn"].event_dim, nesting,
                                  data_plate, obs_dim)
            groups["posterior"][name] = _by_chain(value, chains)
            auto_dims["posterior"][name] = names
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample" or not site["is_observed"]:
                continue
            fn, event_dim = site["fn"], site["fn"].event_dim
            log_lik = scale_and_mask(fn.log_prob(site["value"]), 1.0, site["mask"])
            log_lik = log_lik.expand(fn.batch_shape)
            value, names = _label(site, log_lik, 0, nesting, data_plate, obs_dim)
            groups["log_likelihood"][name] = _by_chain(value, chains)
            auto_dims["log_likelihood"][name] = names
            if posterior_predictive:
                value, names = _label(site, fn.sample(), event_dim, nesting, data_plate, obs_dim)
                groups["posterior_predictive"][name] = _by_chain(value, chains)
                auto_dims["posterior_predictive"][name] = names
            value, names = _label(site, site["value"], event_dim, None, data_plate, obs_dim)
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
    import xarray as xr

    stats = datasets["sample_stats"]
    stats["pareto_k"] = xr.DataArray(np.atleast_1d(khat), dims=[obs_dim],
                                     coords={obs_dim: stats[obs_dim].values})
    stats.attrs["pareto_k_threshold"] = KHAT_THRESHOLD
    stats.attrs["num_particles"] = total
    return container(datasets)


def _label(site: dict[str, Any], value: torch.Tensor, event_dim: int, nesting: int | None,
           data_plate: str, obs_dim: str) -> tuple[np.ndarray, list[str]]:
    """Name a site value's dimensions by its plates; drop broadcast (size-1, plate-less) ones.

    With ``nesting`` the value's leftmost dimension is the particle plate at ``-(nesting + 1)``
    and is kept, unnamed, in front; with ``None`` (observed data) there is none.
    """
    names_by_dim = {f.dim: (obs_dim if f.name == data_plate else f.name)
                    for f in site["cond_indep_stack"]
                    if f.vectorized and f.dim is not None and f.name != PARTICLE_PLATE}
    array = value.detach().cpu().numpy()
    batch = array.ndim - event_dim
    lead = 0 if nesting is None else 1
    batch -= lead
    keep, names = [], []
    for pos in range(batch):
        axis = lead + pos
        plate_dim = pos - batch
        if plate_dim in names_by_dim:
            keep.append(axis)
            names.append(names_by_dim[plate_dim])
        elif array.shape[axis] == 1:
            continue
        else:
            keep.append(axis)
            names.append(f"{site['name']}_batch_{pos}")
    squeeze = tuple(lead + pos for pos in range(batch) if lead + pos not in keep)
    array = array.squeeze(axis=squeeze) if squeeze else array
    names += [f"{site['name']}_dim_{k}" for k in range(event_dim)]
    return array, names


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
    if isinstance(reff, bool) or not isinstance(reff, (int, float)) or not reff > 0:
        raise ValueError(f"reff: expected a positive number, got {reff!r}")
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
    draw k is step k. The epoch table, when epochs were closed, is there too, on dimensions
    ``(epoch_id, player)``: ``epoch_loss_per_example``, ``epoch_loss_mean``, ``epoch_steps`` and
    ``epoch_seconds``.

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
    import xarray as xr

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
    stats = dataset(values, coords={"player": players}, dims={name: ["player"] for name in values})
    if history.epochs:
        epochs = history.to_frame("epochs").drop_duplicates(["epoch", "player"], keep="last")
        table = {}
        for name in ("loss_per_example", "loss_mean", "steps", "seconds"):
            pivot = epochs.pivot(index="epoch", columns="player", values=name)
            pivot = pivot.reindex(columns=players).astype(np.float64)
            table[f"epoch_{name}"] = xr.DataArray(
                pivot.to_numpy(), dims=["epoch_id", "player"],
                coords={"epoch_id": pivot.index.to_numpy(), "player": players})
        stats = stats.assign(table)
    return container({"sample_stats": stats})


# ------------------------------------------------------------------------------ entry point


def to_inference_data(source: Any = None, *, model: Callable[..., Any] | None = None,
                      guide: Callable[..., Any] | None = None, data: torch.Tensor | None = None,
                      num_samples: int = 100, chains: int = 1, prior: Draws | None = None,
                      prior_predictive: Draws | None = None,
                      posterior_predictive: Draws | None = None, log_likelihood: bool = True,
                      coords: dict[str, Any] | None = None,
                      dims: dict[str, list[str]] | None = None,
                      seed: int | None = 0) -> Any:
    """``arviz.InferenceData`` from whatever ppdgm produced.

    * ``source`` a ``pyro.infer.MCMC`` run: :func:`from_mcmc` (vectorized chains folded into
      ``chain``);
    * ``source`` a :class:`~ppdgm.inference.History`: :func:`from_history`;
    * ``guide=``, ``model=`` and ``data=``: :func:`from_guide` with ``num_samples`` draws per
      chain;
    * ``prior=``/``prior_predictive=`` (and ``posterior_predictive=`` without a source): dicts of
      ``(draws, ...)`` arrays, e.g. from :func:`ppdgm.inference.sampling.ancestral_samples`, as
      one chain. With an MCMC run or a guide they are added to its groups.

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
    """
    _check_labels(coords, dims)
    # Checked whatever the source, so that a bad value is never silently ignored.
    check_positive_int("num_samples", num_samples)
    check_positive_int("chains", chains)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise TypeError(f"seed: expected an int >= 0 or None, got {seed!r}")
    if source is not None and (guide is not None or data is not None):
        raise ValueError("source: pass either a source (MCMC or History) or guide=/model=/data=, "
                         "not both")
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
                         log_likelihood=log_likelihood, coords=coords, dims=dims)
    if guide is not None or model is not None or data is not None:
        missing = [n for n, v in (("model", model), ("guide", guide), ("data", data)) if v is None]
        if missing:
            raise ValueError(f"{missing[0]}: needed to draw from a guide (pass model=, guide= "
                             "and data=)")
        if posterior_predictive is not None:
            raise ValueError("posterior_predictive: from a guide it is drawn, not passed")
        idata = from_guide(model, guide, data, num_samples, chains=chains, coords=coords,
                           dims=dims, seed=seed)
        return with_groups(idata, _draw_groups(prior=prior, prior_predictive=prior_predictive,
                                               coords=coords, dims=dims))
    if all(v is None for v in (prior, prior_predictive, posterior_predictive)):
        raise ValueError("source: nothing to convert; pass an MCMC run, a History, "
                         "guide=/model=/data=, or prior=/prior_predictive= draws")
    return container(_draw_groups(prior=prior, prior_predictive=prior_predictive,
                                  posterior_predictive=posterior_predictive, coords=coords,
                                  dims=dims))


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
                 **groups: Draws | None) -> dict[str, Any]:
    """Datasets of ``(draws, ...)`` arrays, one chain each."""
    out = {}
    for group, draws in groups.items():
        values = _numpy_dict(draws, group)
        if values is not None:
            out[group] = _dataset_of({k: v[None] for k, v in values.items()}, coords, dims)
    return out
