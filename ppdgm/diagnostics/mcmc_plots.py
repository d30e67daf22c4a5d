"""Trace, rank and pair plots of ArviZ data (``InferenceData`` or ``DataTree``), written to PNG files.

A deep generative model has thousands of latent coordinates, so each figure shows a few scalar
elements only: ``max_elements`` of them, taken round-robin from the chosen variables (element 0 of
each, then element 1, ...), each named like ``z[0, 1]``, and only the first ``max_chains`` chains
(vectorized samplers run hundreds; ``None`` plots all). Elements whose draws are all whole numbers
(binary or categorical latents) are plotted as discrete values (histograms, not KDEs).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._files import make_folder
from .._validation import check_positive_int
from .arviz_api import container, dataset, group_names, is_container, plot_to_file
from .arviz_api import group as group_of

__all__ = ["save_mcmc_plots", "save_pair_plot", "save_rank_plot", "save_trace_plot", "select_elements"]


def save_trace_plot(idata: Any, path: str | Path, *, group: str = "posterior",
                    var_names: Sequence[str] | None = None, max_elements: int = 4,
                    max_chains: int | None = 4) -> Path:
    """Write ``arviz.plot_trace`` (density and trace per chain) of a few elements to ``path``.

    Examples:
        >>> import tempfile
        >>> from ppdgm.diagnostics import to_inference_data
        >>> idata = to_inference_data(prior={"z": np.random.default_rng(0).normal(size=(50, 3))})
        >>> save_trace_plot(idata, Path(tempfile.mkdtemp()) / "trace.png", group="prior").name
        'trace.png'
    """
    selected = select_elements(idata, group, var_names, max_elements, max_chains)
    return plot_to_file("trace", selected, path, rows=len(selected.posterior.data_vars))


def save_rank_plot(idata: Any, path: str | Path, *, group: str = "posterior",
                   var_names: Sequence[str] | None = None, max_elements: int = 4,
                   max_chains: int | None = 4) -> Path:
    """Write ``arviz.plot_rank`` (rank histograms per chain; flat when chains mix) to ``path``.

    Examples:
        >>> import tempfile
        >>> from ppdgm.diagnostics import to_inference_data
        >>> idata = to_inference_data(prior={"z": np.random.default_rng(0).normal(size=(50, 3))})
        >>> save_rank_plot(idata, Path(tempfile.mkdtemp()) / "rank.png", group="prior").name
        'rank.png'
    """
    # ArviZ ranks integer draws by interpolation, which fails on a constant categorical draw.
    selected = select_elements(idata, group, var_names, max_elements, max_chains, discrete=False)
    return plot_to_file("rank", selected, path)


def save_pair_plot(idata: Any, path: str | Path, *, group: str = "posterior",
                   var_names: Sequence[str] | None = None, max_elements: int = 4,
                   max_chains: int | None = 4) -> Path:
    """Write ``arviz.plot_pair`` (scatter of every pair of the chosen elements) to ``path``.

    Needs at least two scalar elements (``ValueError`` otherwise).

    Examples:
        >>> import tempfile
        >>> from ppdgm.diagnostics import to_inference_data
        >>> idata = to_inference_data(prior={"z": np.random.default_rng(0).normal(size=(50, 3))})
        >>> save_pair_plot(idata, Path(tempfile.mkdtemp()) / "pair.png", group="prior").name
        'pair.png'
    """
    selected = select_elements(idata, group, var_names, max_elements, max_chains)
    if len(selected.posterior.data_vars) < 2:
        raise ValueError(f"max_elements: a pair plot needs at least two scalar elements, the "
                         f"selection has {len(selected.posterior.data_vars)}")
    return plot_to_file("pair", selected, path)


def save_mcmc_plots(idata: Any, out_dir: str | Path, *, group: str = "posterior",
                    var_names: Sequence[str] | None = None, max_elements: int = 4,
                    max_chains: int | None = 4, prefix: str = "") -> dict[str, Path]:
    """Write ``{prefix}trace.png``, ``{prefix}rank.png`` and ``{prefix}pair.png`` into ``out_dir``.

    Returns ``{"trace": path, "rank": path, "pair": path}``; the pair plot is left out when the
    selection has a single scalar element.

    Examples:
        >>> import tempfile
        >>> from ppdgm.diagnostics import to_inference_data
        >>> idata = to_inference_data(prior={"z": np.random.default_rng(0).normal(size=(50, 2))})
        >>> sorted(save_mcmc_plots(idata, tempfile.mkdtemp(), group="prior"))
        ['pair', 'rank', 'trace']
    """
    out = make_folder("out_dir", out_dir)
    options = {"group": group, "var_names": var_names, "max_elements": max_elements,
               "max_chains": max_chains}
    files = {"trace": save_trace_plot(idata, out / f"{prefix}trace.png", **options),
             "rank": save_rank_plot(idata, out / f"{prefix}rank.png", **options)}
    if len(select_elements(idata, group, var_names, max_elements, max_chains).posterior.data_vars) >= 2:
        files["pair"] = save_pair_plot(idata, out / f"{prefix}pair.png", **options)
    return files


def select_elements(idata: Any, group: str, var_names: Sequence[str] | None, max_elements: int,
                    max_chains: int | None = None, *, discrete: bool = True) -> Any:
    """A posterior-only container of at most ``max_elements`` scalar elements of ``group``
    (and its first ``max_chains`` chains).

    With ``discrete`` whole-numbered elements become integers (histograms in trace plots);
    without, every element is a float (rank plots rank ties among discrete draws as floats).
    """
    if not is_container(idata):
        raise TypeError("idata: expected an arviz.InferenceData or an xarray.DataTree, got "
                        f"{type(idata).__name__}")
    check_positive_int("max_elements", max_elements)
    if max_chains is not None:
        check_positive_int("max_chains", max_chains)
    if not isinstance(group, str) or group not in group_names(idata):
        raise ValueError(f"group: expected one of {group_names(idata)}, got {group!r}")
    chosen_group = group_of(idata, group)
    available = [name for name, v in chosen_group.data_vars.items()
                 if v.dims[:2] == ("chain", "draw")]
    if var_names is None:
        names = available
    else:
        if isinstance(var_names, str):
            raise TypeError(f"var_names: expected a sequence of names, got the str {var_names!r}")
        names = list(var_names)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(f"var_names: {unknown} not among the {group} variables {available}")
    if not names:
        raise ValueError(f"group: {group!r} has no variable with (chain, draw) dimensions")
    columns = []
    for name in names:
        array = chosen_group[name]
        shape = array.shape[2:]
        indices = itertools.product(*(range(n) for n in shape))
        columns.append([(name, index, array) for index in indices])
    chosen = [item for row in itertools.zip_longest(*columns) for item in row if item is not None]
    values = {}
    for name, index, array in chosen[:max_elements]:
        label = f"{name}[{', '.join(map(str, index))}]" if index else name
        data = np.asarray(array.values[(slice(None, max_chains), slice(None), *index)])
        whole = np.all(np.isfinite(data)) and np.array_equal(data, np.round(data))
        if discrete and whole:
            data = data.astype(np.int64)  # binary or categorical: plot as discrete
        elif not discrete:
            data = data.astype(np.float64)
        values[label] = data
    return container({"posterior": dataset(values)})
