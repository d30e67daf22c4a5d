"""Data whose distribution is known exactly: 2-D Gaussian mixtures and 4x4 bars-and-stripes.

ring8 and grid25 are the mode-collapse benchmarks of VEEGAN (Srivastava et al., 2017) and PacGAN
(Lin et al., 2018): equal-weight isotropic components whose centres are returned with the data,
so mode coverage can be counted. Bars-and-stripes is uniform over 30 patterns, so a model's
likelihood and samples can be compared with the truth.
"""

from __future__ import annotations

import itertools
import math

import torch

from .base import Dataset

__all__ = ["MIXTURES", "mixture_centres", "bars_and_stripes_patterns", "load_bars_and_stripes",
           "load_mixture"]

# name -> per-component standard deviation.
MIXTURES: dict[str, float] = {"ring8": 0.02, "grid25": 0.05}

_MIXTURE_NUM_TRAIN = 50_000
_MIXTURE_NUM_TEST = 10_000


def mixture_centres(name: str) -> torch.Tensor:
    """The (K, 2) component centres of ``"ring8"`` (radius 2) or ``"grid25"`` ({-4..4 step 2}^2).

    Examples:
        >>> mixture_centres("ring8").shape, mixture_centres("grid25")[0].tolist()
        (torch.Size([8, 2]), [-4.0, -4.0])
    """
    if name == "ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return (2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)).to(torch.float32)
    if name == "grid25":
        ticks = [-4.0, -2.0, 0.0, 2.0, 4.0]
        return torch.tensor(list(itertools.product(ticks, ticks)), dtype=torch.float32)
    raise ValueError(f"name: expected one of {', '.join(map(repr, MIXTURES))}, got {name!r}")


def bars_and_stripes_patterns(size: int = 4) -> torch.Tensor:
    """All distinct ``size`` x ``size`` bars-and-stripes images, (2 * 2**size - 2, 1, size, size).

    The first 2**size have every row all-on or all-off (in binary-count order); then come the
    column patterns without the two (all-off, all-on) already listed.

    Examples:
        >>> bars_and_stripes_patterns().shape
        torch.Size([30, 1, 4, 4])
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 8:
        raise ValueError(f"size: expected an int in [1, 8], got {size!r}")
    bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=size)))  # (2**size, size)
    rows = bits[:, :, None].expand(-1, size, size)
    columns = bits[:, None, :].expand(-1, size, size)
    # Blank and full images are both a row and a column pattern: keep them once.
    mixed = (bits.sum(1) > 0) & (bits.sum(1) < size)
    return torch.cat([rows, columns[mixed]]).unsqueeze(1).contiguous()


def _sample_mixture(
    centres: torch.Tensor, scale: float, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(centres.shape[0], (n,), generator=generator)
    noise = torch.randn(n, centres.shape[1], generator=generator)
    return centres[labels] + scale * noise, labels


def load_mixture(name: str, *, seed: int, num_train: int | None, num_test: int | None) -> Dataset:
    centres, scale = mixture_centres(name), MIXTURES[name]
    generator = torch.Generator().manual_seed(seed)
    # Train first, then test from the same stream: the train set does not depend on num_test.
    train, train_labels = _sample_mixture(
        centres, scale, num_train or _MIXTURE_NUM_TRAIN, generator
    )
    test, test_labels = _sample_mixture(centres, scale, num_test or _MIXTURE_NUM_TEST, generator)
    return Dataset(
        name=name,
        train=train,
        test=test,
        train_labels=train_labels,
        test_labels=test_labels,
        support="real",
        centres=centres,
        scale=scale,
    )


def load_bars_and_stripes(*, seed: int, num_train: int | None, num_test: int | None) -> Dataset:
    patterns = bars_and_stripes_patterns(4)
    k = patterns.shape[0]
    generator = torch.Generator().manual_seed(seed)
    parts = {}
    for which, n in (("train", num_train), ("test", num_test)):
        # Labels are pattern indices, so empirical pattern frequencies are one bincount away.
        labels = torch.arange(k) if n is None else torch.randint(k, (n,), generator=generator)
        parts[which], parts[f"{which}_labels"] = patterns[labels], labels
    return Dataset(name="bars-and-stripes", support="binary", **parts)
