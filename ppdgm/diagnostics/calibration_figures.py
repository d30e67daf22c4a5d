"""Simulation-based calibration in ArviZ: its ranks as a group, and ArviZ's own ECDF figure.

The group is named ``prior_sbc``, as ArviZ's SBC tooling (``simuk``) names it and as
``arviz_plots.plot_ecdf_pit`` reads it by default. It holds PIT values, the ranks mapped to the
middle of their cells, (rank + 1/2) / (L + 1) for L draws, one chain and one draw per simulation;
``sbc_ranks`` holds the integer ranks themselves, laid out alike.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._files import file_in_folder
from . import arviz_api
from .calibration import SBCResult
from .figures import pyplot, shown

__all__ = ["plot_sbc", "sbc_inference_data"]


def sbc_inference_data(result: SBCResult) -> Any:
    """An ``InferenceData`` (ArviZ 0.x) or ``DataTree`` (1.x) with ``prior_sbc`` (PIT values) and
    ``sbc_ranks`` (integer ranks), each site of shape (chain 1, draw = simulation, coordinate).

    Examples:
        >>> import numpy as np
        >>> ranks = {"mu": np.array([[0], [4], [2]])}
        >>> data = sbc_inference_data(SBCResult(ranks=ranks, num_draws=4, alpha=0.05))
        >>> arviz_api.group(data, "prior_sbc")["mu"].values.ravel().tolist()
        [0.1, 0.9, 0.5]
    """
    if not isinstance(result, SBCResult):
        raise TypeError(f"result: expected an SBCResult (from sbc), got {type(result).__name__}")
    pit = {name: ((ranks + 0.5) / (result.num_draws + 1))[None] for name, ranks in result.ranks.items()}
    ranks = {name: table[None] for name, table in result.ranks.items()}
    dims = {name: [f"{name}_dim_0"] for name in result.ranks}
    with warnings.catch_warnings():
        # ArviZ 0.x accepts groups outside its schema and says so; these two are meant.
        warnings.filterwarnings("ignore", message=r".*not (defined|in) .*InferenceData scheme",
                                category=UserWarning)
        return arviz_api.container({"prior_sbc": arviz_api.dataset(pit, dims=dims),
                                    "sbc_ranks": arviz_api.dataset(ranks, dims=dims)})


def plot_sbc(result: SBCResult, path: str | Path) -> Path:
    """ArviZ's ECDF figure of the PIT values (the ECDF minus the uniform CDF, inside its
    simultaneous band) for every site and coordinate, written to ``path``.

    ArviZ 1.x: ``arviz_plots.plot_ecdf_pit`` of the ``prior_sbc`` group (its default test, which
    prints a p-value in each panel and marks the points that stray most). ArviZ 0.x:
    ``arviz.plot_ecdf`` with ``difference=True`` and ``confidence_bands=True`` against the
    uniform CDF, one panel per coordinate.
    """
    data = sbc_inference_data(result)
    path = file_in_folder("path", path)
    plt = pyplot()
    if arviz_api.arviz_major() >= 1:
        import arviz_plots

        collection = arviz_plots.plot_ecdf_pit(data, group="prior_sbc",
                                               backend="matplotlib")
        collection.savefig(path, dpi=80, bbox_inches="tight")
        plt.close("all")
        return shown(path)
    from scipy import stats

    panels = [(name, j) for name, table in result.ranks.items() for j in range(table.shape[1])]
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    pit = arviz_api.group(data, "prior_sbc")
    for ax, (name, j) in zip(axes.ravel(), panels):
        values = pit[name].values[0, :, j]
        with warnings.catch_warnings():
            # 0.x's plot_ecdf announces its own coming changes; nothing a caller can act on.
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            # Evaluated at the cells' edges, k / (L + 1): where a rank's ECDF can change.
            edges = np.linspace(0.0, 1.0, result.num_draws + 2)
            arviz_api.arviz().plot_ecdf(values, eval_points=edges, cdf=stats.uniform(0, 1).cdf,
                                        difference=True, confidence_bands=True, ax=ax)
        ax.set_title(name if result.ranks[name].shape[1] == 1 else f"{name}[{j}]", fontsize=9)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return shown(path)

