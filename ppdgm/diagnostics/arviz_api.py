"""One door to ArviZ for both of its lines.

ArviZ 0.x (Python 3.10 and 3.11 here) keeps groups in an ``arviz.InferenceData``; ArviZ 1.x (the
release Python 3.12+ resolves: ``arviz-base``, ``arviz-stats``, ``arviz-plots``) keeps them in an
``xarray.DataTree`` and no longer converts Pyro runs. ppdgm builds every group itself as an
``xarray.Dataset`` with ArviZ's conventions (``chain`` and ``draw`` first, ``<var>_dim_k`` for
unnamed dimensions) and this module puts them in the container of the installed line:
``InferenceData`` on 0.x, ``DataTree`` on 1.x. Both answer ``data.posterior.sizes`` and
``data["posterior"]``; :func:`group` and :func:`group_names` read either.

ArviZ is imported on first use, so importing ppdgm stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from .._files import file_in_folder

__all__ = [
    "arviz",
    "arviz_major",
    "container",
    "dataset",
    "group",
    "group_names",
    "is_container",
    "plot_to_file",
    "psis_khat_by_row",
    "summary",
    "with_groups",
]


@functools.lru_cache(maxsize=1)
def arviz_major() -> int:
    """The installed ArviZ's major version (0 or 1), read without importing it.

    Examples:
        >>> arviz_major() in (0, 1)
        True
    """
    try:
        return int(version("arviz").split(".")[0])
    except PackageNotFoundError:  # arviz-base alone is the 1.x line too
        return 1


def arviz() -> Any:
    """The ``arviz`` module, imported without its announcement of the 1.0 refactor on 0.x."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor",
                                category=FutureWarning)
        import arviz as az

    return az


def dataset(values: Mapping[str, np.ndarray], *, coords: Mapping[str, Any] | None = None,
            dims: Mapping[str, list[str]] | None = None, sample_dims: bool = True,
            skip_event_dims: bool = False) -> Any:
    """An ``xarray.Dataset`` of ``values`` with ArviZ's conventions and Pyro as its library.

    With ``sample_dims`` the arrays' first two axes are ``(chain, draw)``; without (observed
    data) they have none.

    Examples:
        >>> ds = dataset({"z": np.zeros((2, 5, 3))}, dims={"z": ["obs"]})
        >>> dict(ds.sizes)
        {'chain': 2, 'draw': 5, 'obs': 3}
    """
    import pyro

    values = dict(values)
    with warnings.catch_warnings():
        # ArviZ guesses a transposed array when chains outnumber draws; ppdgm's arrays are laid
        # out right by construction (vectorized samplers run hundreds of short chains).
        warnings.filterwarnings("ignore", message=r"More chains \(\d+\) than draws",
                                category=UserWarning)
        warnings.filterwarnings("ignore", message="Found chain dimension to be longer than draw",
                                category=UserWarning)
        if arviz_major() >= 1:
            from arviz_base import dict_to_dataset

            return dict_to_dataset(values, inference_library=pyro, coords=coords, dims=dims,
                                   sample_dims=None if sample_dims else [],
                                   skip_event_dims=skip_event_dims)
        return arviz().dict_to_dataset(values, library=pyro, coords=coords, dims=dims,
                                       default_dims=None if sample_dims else [],
                                       skip_event_dims=skip_event_dims)


def container(groups: Mapping[str, Any]) -> Any:
    """``InferenceData`` (ArviZ 0.x) or ``xarray.DataTree`` (ArviZ 1.x) of named datasets."""
    groups = {name: ds for name, ds in groups.items() if ds is not None}
    if arviz_major() >= 1:
        import xarray as xr

        return xr.DataTree.from_dict({f"/{name}": ds for name, ds in groups.items()})
    return arviz().InferenceData(**groups)


def is_container(data: Any) -> bool:
    """Whether ``data`` is the installed ArviZ line's container (or either of them)."""
    if type(data).__name__ == "DataTree":
        return True
    return type(data).__name__ == "InferenceData" and hasattr(data, "groups")


def group_names(data: Any) -> list[str]:
    """The groups a container holds, in order."""
    if type(data).__name__ == "DataTree":
        return list(data.children)
    return list(data.groups())


def group(data: Any, name: str) -> Any:
    """Group ``name`` of a container as an ``xarray.Dataset``."""
    if name not in group_names(data):
        raise ValueError(f"group: expected one of {group_names(data)}, got {name!r}")
    node = data[name]
    return node.to_dataset() if type(node).__name__ == "DataTree" else node


def with_groups(data: Any, groups: Mapping[str, Any]) -> Any:
    """``data`` with the datasets ``groups`` added as groups (replacing any of the same name)."""
    groups = {name: ds for name, ds in groups.items() if ds is not None}
    if not groups:
        return data
    if type(data).__name__ == "DataTree":
        for name, ds in groups.items():
            data[name] = type(data)(ds)
        return data
    data.extend(arviz().InferenceData(**groups), join="right")
    return data


def psis_khat_by_row(log_weights: np.ndarray, reff: float) -> np.ndarray:
    """PSIS k-hat of each row of ``log_weights`` (shape ``(points, draws)``), by ArviZ.

    ArviZ 0.x: ``arviz.psislw``. ArviZ 1.x: ``arviz_stats``' Pareto k of the right tail of the
    importance ratios, which gives the same estimate; a row whose tail cannot be fitted (too few
    draws, a flat tail) gets ``inf``, as 0.x answers there.
    """
    if arviz_major() == 0:
        _, khat = arviz().psislw(log_weights, reff=reff)
        return np.asarray(khat, dtype=np.float64)
    from arviz_stats.base import array_stats

    khat = np.full(log_weights.shape[0], np.inf)
    for i, row in enumerate(log_weights):
        ratios = np.exp(row - np.max(row))[None, :]  # one chain of draws
        try:
            khat[i] = float(array_stats.pareto_khat(ratios, chain_axis=-2, draw_axis=-1, r_eff=reff,
                                                    tail="right", log_weights=False))
        except ValueError:
            continue
    return khat


def summary(data: Any, **kwargs: Any) -> Any:
    """``arviz.summary`` of a container or dataset (a ``pandas.DataFrame``)."""
    return arviz().summary(data, **kwargs)


@contextlib.contextmanager
def _quiet_plotting() -> Iterator[None]:
    # ArviZ 0.23's matplotlib backend calls an API that matplotlib 3.11 deprecates; the notice is
    # about ArviZ's code, nothing a caller can act on, so only that one is silenced.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Passing a dict or None as alias_mapping",
                                category=DeprecationWarning)
        yield


_PLOTS_1 = {"trace": "plot_trace_dist", "rank": "plot_rank", "pair": "plot_pair"}


def plot_to_file(kind: str, data: Any, path: str | Path, *, rows: int = 1) -> Path:
    """Draw ArviZ's ``kind`` plot (``"trace"``, ``"rank"`` or ``"pair"``) of ``data`` into ``path``.

    ``rows`` (the number of variables) sizes the trace plot on 0.x.
    On ArviZ 0.x these are ``plot_trace``/``plot_rank``/``plot_pair`` on matplotlib axes; on
    1.x ``arviz_plots``' ``plot_trace_dist``/``plot_rank``/``plot_pair`` with the matplotlib
    backend.
    """
    import matplotlib

    matplotlib.use("Agg")  # figures are written to files; no display is assumed
    import matplotlib.pyplot as plt

    from .figures import shown  # here: figures imports torch, which this module does not need

    if kind not in _PLOTS_1:
        raise ValueError(f"kind: expected one of {sorted(_PLOTS_1)}, got {kind!r}")
    path = file_in_folder("path", path)
    with _quiet_plotting():
        if arviz_major() >= 1:
            import arviz_plots

            plot = getattr(arviz_plots, _PLOTS_1[kind])
            options: dict[str, Any] = {}
            if kind == "rank" and data["posterior"].sizes["chain"] < 2:
                options["method"] = "envelope"  # the multi-chain test needs two chains
            try:
                collection = plot(data, backend="matplotlib", **options)
            except ValueError:
                if kind == "rank":
                    raise
                # arviz-plots' density estimate fails on some degenerate draws (a chain that
                # never moved next to discrete sites); the empirical CDF draws any data.
                plt.close("all")
                fallback = {"kind": "ecdf"} if kind == "trace" else {"marginal_kind": "ecdf"}
                collection = plot(data, backend="matplotlib", **fallback)
            collection.savefig(path, dpi=80, bbox_inches="tight")
            plt.close("all")
            return shown(path)
        az = arviz()
        if kind == "trace":
            axes = az.plot_trace(data, compact=False, figsize=(10, 2.4 * rows))
            np.ravel(axes)[0].figure.tight_layout()  # titles clear of the tick labels above them
        elif kind == "rank":
            axes = az.plot_rank(data)
        else:
            axes = az.plot_pair(data, kind="scatter", marginals=True,
                                scatter_kwargs={"alpha": 0.4, "s": 6})
    fig = np.ravel(axes)[0].figure
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return shown(path)
