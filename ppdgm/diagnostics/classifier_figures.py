"""Learning curves of classifiers: test error against the number of labelled examples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .figures import pyplot, save_figure

__all__ = ["plot_error_curves"]


def plot_error_curves(panels: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path) -> Path:
    """One panel per entry of ``panels``: mean test error (± one standard error) against the
    labelled-set size m, on a log axis, one line per model.

    Each panel is a list of rows ``{"model", "m", "error", "stderr"}`` as
    :func:`ppdgm.recipes.generative_discriminative.summarize` returns them.

    Examples:
        >>> import tempfile
        >>> rows = [{"model": "a", "m": m, "error": 1 / m, "stderr": 0.01} for m in (10, 100)]
        >>> plot_error_curves({"toy": rows}, Path(tempfile.mkdtemp()) / "curves.png").suffix
        '.png'
    """
    import seaborn as sns  # imported here: 0.8 s of every command's start

    if not isinstance(panels, Mapping) or not panels:
        raise ValueError(f"panels: expected a non-empty mapping of title -> rows, got {panels!r}")
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = pyplot().subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels.items()):
        models = list(dict.fromkeys(row["model"] for row in rows))
        for model, colour in zip(models, sns.color_palette(n_colors=len(models))):
            line = sorted((r for r in rows if r["model"] == model), key=lambda r: r["m"])
            m = [r["m"] for r in line]
            err = [r["error"] for r in line]
            se = [0.0 if r["stderr"] != r["stderr"] else r["stderr"] for r in line]  # NaN: 1 seed
            ax.errorbar(m, err, yerr=se, label=model, color=colour, marker="o", markersize=4,
                        capsize=3, linewidth=1.8)
        ax.set_xscale("log")
        ax.set_xlabel("labelled training examples m")
        ax.set_ylabel("test error")
        ax.set_title(title)
        ax.legend()
    return save_figure(fig, path, dpi=110)
