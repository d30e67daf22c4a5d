"""Figures a person looks at after a run: loss curves (seaborn) and image grids.

matplotlib loads on the first figure, not with the module: every command imports this one, and
pyplot is a third of a second of its start."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from .._files import file_in_folder
from .._images import image_grid
from .._jupyter import in_notebook
from .._validation import check_tensor
from ..inference.coverage import ModeCoverage
from ..inference.history import History

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

__all__ = ["plot_history", "plot_latents", "plot_samples_over_density",
           "plot_series", "pyplot", "save_figure", "save_image_grid", "shown"]


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend: figures are written to files, no display is assumed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def shown(path: Path) -> Path:
    """``path``, a PNG just written, after showing it inline when this runs in a Jupyter kernel
    (every figure function of ppdgm ends here: in a notebook its figure appears below the cell,
    and the caller still gets the file's path).

    Examples:
        >>> shown(Path("f.png"))  # outside a notebook: just the path
        PosixPath('f.png')
    """
    if in_notebook():
        from IPython.display import Image, display

        display(Image(filename=str(path)))
    return path


def save_figure(fig: plt.Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Lay out ``fig``, write it to ``path`` (creating its folder) and close it; returns the path.

    Examples:
        >>> import tempfile
        >>> fig, ax = pyplot().subplots()
        >>> save_figure(fig, Path(tempfile.mkdtemp()) / "sub" / "f.png").name
        'f.png'
    """
    path = file_in_folder("path", path)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return shown(path)


def plot_history(history: History, path: str | Path, *, title: str = "Training loss",
                 smooth: int = 20) -> Path:
    """Write a seaborn line plot of each player's loss per example against the step.

    Thin lines are the raw per-step values, thick ones a running mean over ``smooth`` steps;
    dots mark each epoch's mean. For an ELBO the y-axis is the negative ELBO in nats per example.

    Examples:
        >>> import tempfile
        >>> h = History()
        >>> for s in range(30):
        ...     h.record_step(step=s, epoch=s // 10, player="svi", loss=100 - s, batch_size=10)
        >>> plot_history(h, Path(tempfile.mkdtemp()) / "loss.png").suffix
        '.png'
    """
    import seaborn as sns  # imported here: 0.8 s of every command's start

    if not isinstance(history, History):
        raise TypeError(f"history: expected a History, got {type(history).__name__}")
    if len(history) == 0:
        raise ValueError("history: no steps recorded, nothing to plot")
    steps = history.to_frame("steps")
    steps["loss per example"] = steps["loss"] / steps["batch_size"]
    steps["smoothed"] = steps.groupby("player")["loss per example"].transform(
        lambda s: s.rolling(max(1, smooth), min_periods=1).mean()
    )
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = pyplot().subplots(figsize=(7, 4))
    palette = dict(zip(history.players(), sns.color_palette(n_colors=len(history.players()))))
    sns.lineplot(data=steps, x="step", y="loss per example", hue="player", palette=palette,
                 alpha=0.25, linewidth=0.8, legend=False, ax=ax)
    sns.lineplot(data=steps, x="step", y="smoothed", hue="player", palette=palette,
                 linewidth=2.0, ax=ax)
    if history.epochs:
        last_step = steps.groupby("epoch")["step"].max()
        epochs = history.to_frame("epochs")
        epochs["step"] = epochs["epoch"].map(last_step)
        sns.scatterplot(data=epochs, x="step", y="loss_per_example", hue="player",
                        palette=palette, legend=False, s=18, ax=ax, zorder=3)
    ax.set(title=title, xlabel="step", ylabel="loss per example")
    return save_figure(fig, path)


def plot_latents(z: torch.Tensor, path: str | Path, *, labels: torch.Tensor | None = None,
                 title: str = "Latent space") -> Path:
    """Scatter the rows of ``z`` (N, D) in two dimensions, coloured by ``labels`` when given.

    A 2-D latent is drawn as it is; a wider one is projected on its first two principal
    components (scikit-learn's PCA), and the axes say so with the share of variance they keep.

    Examples:
        >>> import tempfile
        >>> plot_latents(torch.randn(50, 5), Path(tempfile.mkdtemp()) / "z.png",
        ...              labels=torch.arange(50) % 3).suffix
        '.png'
    """
    import seaborn as sns  # imported here: 0.8 s of every command's start

    check_tensor("z", z, ndim=2, floating=True, finite=True)
    if z.shape[1] < 1 or z.shape[0] < 2:
        raise ValueError(f"z: expected at least 2 rows and 1 column, got {tuple(z.shape)}")
    if labels is not None:
        if not isinstance(labels, torch.Tensor) or labels.shape != (z.shape[0],):
            raise ValueError(f"labels: expected a tensor of shape ({z.shape[0]},), got "
                             f"{getattr(labels, 'shape', type(labels).__name__)}")
    points = z.detach().cpu().double().numpy()
    axes = ("z1", "z2")
    if points.shape[1] == 1:
        points = np.concatenate([points, np.zeros_like(points)], axis=1)
        axes = ("z1", "")
    elif points.shape[1] > 2:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(points)
        points = pca.transform(points)
        share = pca.explained_variance_ratio_
        axes = (f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%})")
    sns.set_theme(style="white", context="notebook")
    fig, ax = pyplot().subplots(figsize=(6, 5))
    hue = None if labels is None else labels.detach().cpu().numpy()
    palette = None if hue is None else sns.color_palette("tab10", n_colors=len(np.unique(hue)))
    sns.scatterplot(x=points[:, 0], y=points[:, 1], hue=hue, palette=palette, s=10,
                    alpha=0.7, linewidth=0, ax=ax, legend="full" if hue is not None else False)
    if hue is not None:
        ax.legend(title="class", bbox_to_anchor=(1.02, 1), loc="upper left", frameon=False,
                  markerscale=1.5)
    ax.set(title=title, xlabel=axes[0], ylabel=axes[1])
    return save_figure(fig, path)


def save_image_grid(images: torch.Tensor, path: str | Path, *, nrow: int = 8,
                    min_size: int = 32) -> Path:
    """Save a batch of images (N, C, H, W) with values in [0, 1] as one PNG grid.

    Images smaller than ``min_size`` pixels are enlarged by an integer factor with
    nearest-neighbour interpolation, so an 8x8 digit stays crisp instead of becoming a speck.

    Examples:
        >>> import tempfile
        >>> save_image_grid(torch.rand(4, 1, 8, 8), Path(tempfile.mkdtemp()) / "g.png").name
        'g.png'
    """
    check_tensor("images", images, ndim=4, floating=True, support="unit")
    images = images.detach().cpu()
    factor = max(1, -(-min_size // max(images.shape[-2:])))
    if factor > 1:
        images = F.interpolate(images, scale_factor=factor, mode="nearest")
    path = file_in_folder("path", path)
    grid = image_grid(images, nrow=nrow, padding=2, pad_value=1.0)
    pixels = grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    from PIL import Image

    Image.fromarray(pixels).save(path, format="PNG")
    return shown(path)


def plot_series(values: list[float], path: str | Path, *, xlabel: str, ylabel: str,
                title: str) -> Path:
    """A line with markers of ``values`` against their index (e.g. EM's log-likelihood by iteration).

    Examples:
        >>> import tempfile
        >>> plot_series([1.0, 2.0, 2.5], Path(tempfile.mkdtemp()) / "s.png", xlabel="i", ylabel="v",
        ...             title="t").suffix
        '.png'
    """
    import seaborn as sns  # imported here: 0.8 s of every command's start

    if not values:
        raise ValueError("values: nothing to plot")
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = pyplot().subplots(figsize=(6, 3.5))
    ax.plot(range(len(values)), values, marker="o", markersize=3, linewidth=1.8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return save_figure(fig, path, dpi=110)


def plot_samples_over_density(
    samples_by_model: Mapping[str, torch.Tensor],
    centres: torch.Tensor,
    std: float,
    path: str | Path,
    *,
    title: str | None = None,
    coverage: Mapping[str, ModeCoverage] | None = None,
) -> Path:
    """One panel per model: its samples (N, 2) scattered over the true mixture density.

    The density is the equal-weight isotropic Gaussian mixture at ``centres`` (K, 2) with
    standard deviation ``std``, drawn as filled contours at 3, 2.5, 2, 1.5, 1 and 0.5 standard
    deviations from a centre, so the outermost band is the high-quality region of
    :func:`ppdgm.inference.coverage.mode_coverage`; centres are ringed in black.
    Every panel shows the same window, the centres' bounding box with a margin; a panel says
    how many samples fall outside it. With ``coverage`` (model name -> ModeCoverage, one per
    model) each panel's title gives the modes captured and the percentage of high-quality samples.

    Examples:
        >>> import tempfile
        >>> from ppdgm.data.synthetic import mixture_centres
        >>> c = mixture_centres("ring8")
        >>> plot_samples_over_density({"data": c.repeat(10, 1) + 0.01}, c, 0.02,
        ...                           Path(tempfile.mkdtemp()) / "ring8.png").suffix
        '.png'
    """
    import seaborn as sns  # imported here: 0.8 s of every command's start

    if not isinstance(samples_by_model, Mapping):
        raise TypeError("samples_by_model: expected a mapping of model name -> samples (N, 2), "
                        f"got {type(samples_by_model).__name__}")
    if not samples_by_model:
        raise ValueError("samples_by_model: expected at least one model, got an empty mapping")
    check_tensor("centres", centres, ndim=2, floating=True, finite=True)
    if centres.shape[0] < 1 or centres.shape[1] != 2:
        raise ValueError(f"centres: expected shape (K, 2) with K >= 1, got {tuple(centres.shape)}")
    if isinstance(std, bool) or not isinstance(std, (int, float)):
        raise TypeError(f"std: expected a float, got {type(std).__name__}")
    if not np.isfinite(std) or std <= 0:
        raise ValueError(f"std: expected a finite float > 0, got {std}")
    points = {}
    for name, x in samples_by_model.items():
        check_tensor(f"samples_by_model[{name!r}]", x, ndim=2, floating=True, finite=True)
        if x.shape[0] < 1 or x.shape[1] != 2:
            raise ValueError(f"samples_by_model[{name!r}]: expected shape (N, 2) with N >= 1, "
                             f"got {tuple(x.shape)}")
        points[name] = x.detach().cpu().double().numpy()
    if coverage is not None:
        if not isinstance(coverage, Mapping):
            raise TypeError(f"coverage: expected a mapping of model name -> ModeCoverage, "
                            f"got {type(coverage).__name__}")
        if set(coverage) != set(points):
            raise ValueError(f"coverage: expected one entry per model {sorted(points)}, "
                             f"got {sorted(coverage)}")
        for name, c in coverage.items():
            if not isinstance(c, ModeCoverage):
                raise TypeError(f"coverage[{name!r}]: expected a ModeCoverage, "
                                f"got {type(c).__name__}")

    mu = centres.detach().cpu().double().numpy()
    lo, hi = mu.min(0), mu.max(0)
    margin = max(0.25 * float((hi - lo).max()), 8.0 * std)
    lo, hi = lo - margin, hi + margin
    # About two grid cells per std (capped), so the narrow components are resolved but the
    # (cells x K) density stays cheap; it is computed once and shared by the panels.
    cells = int(min(600, max(100, np.ceil((hi - lo).max() / (std / 2)))))
    gx, gy = np.linspace(lo[0], hi[0], cells), np.linspace(lo[1], hi[1], cells)
    xx, yy = np.meshgrid(gx, gy)
    sq = (xx[..., None] - mu[:, 0]) ** 2 + (yy[..., None] - mu[:, 1]) ** 2  # (cells, cells, K)
    density = np.exp(-0.5 * sq / std**2).sum(-1) / (len(mu) * 2 * np.pi * std**2)
    peak = 1.0 / (len(mu) * 2 * np.pi * std**2)
    levels = [peak * np.exp(-0.5 * r**2) for r in (3.0, 2.5, 2.0, 1.5, 1.0, 0.5)]
    levels.append(max(levels[-1], float(density.max())) * 1.01)

    sns.set_theme(style="white", context="notebook")
    n = len(points)
    ncols = min(n, 4)
    nrows = -(-n // ncols)
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(4 * ncols, 4 * nrows + (0.4 if title else 0)),
                             squeeze=False)
    colours = sns.color_palette(n_colors=n)
    for ax, (name, x), colour in zip(axes.flat, points.items(), colours):
        ax.contourf(xx, yy, density, levels=levels, cmap="Blues", zorder=1)
        ax.scatter(x[:, 0], x[:, 1], s=4, alpha=0.5, color=colour, linewidths=0, rasterized=True,
                   zorder=2)
        # Hollow rings: a centre stays marked without hiding the (often tiny) density under it.
        ax.scatter(mu[:, 0], mu[:, 1], marker="o", s=90, facecolors="none", edgecolors="black",
                   linewidths=0.8, zorder=3)
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), aspect="equal")
        label = name
        if coverage is not None:
            c = coverage[name]
            label += f"\n{c.modes_captured}/{c.num_modes} modes, {100 * c.high_quality:.1f}% HQ"
        ax.set_title(label, fontsize=10)
        outside = int(((x < lo) | (x > hi)).any(1).sum())
        if outside:
            ax.text(0.02, 0.02, f"{outside} of {len(x)} outside view", transform=ax.transAxes,
                    fontsize=8, color="0.3")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    if title:
        # Wrapped to the figure's width: a one-panel figure would cut a long title off.
        fig.suptitle(textwrap.fill(title, width=max(30, int(7.5 * fig.get_figwidth()))))
    return save_figure(fig, path)
