"""A figure of a diffusion model's reverse process: the same draws at several steps from noise."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from .._files import file_in_folder
from .figures import pyplot, save_figure, save_image_grid

__all__ = ["plot_reverse_process"]


def plot_reverse_process(snapshots: Mapping[int, torch.Tensor], path: str | Path, *,
                         title: str | None = None, rows: int = 8) -> Path:
    """x_t at several t (``{t: draws}``, largest t first) as one figure.

    Images (N, C, H, W): a grid whose columns are the steps and whose ``rows`` rows follow the
    same draws from noise to data (values clamped into [0, 1] for display). Points (N, 2): one
    scatter panel per step, on shared axes.

    Examples:
        >>> import tempfile
        >>> snaps = {10: torch.randn(50, 2), 0: torch.randn(50, 2) * 0.1}
        >>> plot_reverse_process(snaps, Path(tempfile.mkdtemp()) / "r.png").suffix
        '.png'
    """
    import seaborn as sns  # imported here: 0.8 s of every command's start

    if not isinstance(snapshots, Mapping) or not snapshots:
        raise ValueError("snapshots: expected a non-empty mapping of t -> draws")
    steps = sorted(snapshots, reverse=True)
    first = snapshots[steps[0]]
    path = file_in_folder("path", path)
    if first.dim() == 4:
        k = min(rows, first.shape[0])
        # Column-major: row i is draw i, column j is step j.
        stacked = torch.stack([snapshots[t][:k].clamp(0, 1) for t in steps], 1)
        save_image_grid(stacked.reshape(-1, *first.shape[1:]).float(), path, nrow=len(steps))
        return path
    if first.dim() != 2 or first.shape[1] != 2:
        raise ValueError("snapshots: expected images (N, C, H, W) or points (N, 2), "
                         f"got {tuple(first.shape)}")
    fig, axes = pyplot().subplots(1, len(steps), figsize=(2.6 * len(steps), 2.8), sharex=True, sharey=True)
    axes = [axes] if len(steps) == 1 else list(axes)
    for ax, t in zip(axes, steps):
        pts = snapshots[t].detach().cpu().numpy()
        sns.scatterplot(x=pts[:, 0], y=pts[:, 1], s=4, alpha=0.5, linewidth=0, ax=ax)
        ax.set_title(f"t = {t}")
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
