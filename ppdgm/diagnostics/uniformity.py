"""Are these ranks uniform? The ECDF test with simultaneous bands (Säilynoja, Bürkner and Vehtari,
2022), the decision rule of simulation-based calibration.

Under calibration the rank of a true value among ``L`` posterior draws is uniform on
``{0, ..., L}``. With ``N`` ranks, the count of ranks below each point ``z = 1, ..., L`` is
Binomial(N, z / (L + 1)). For every ``z`` the count's two-sided tail probability is computed, and
the smallest of them is the statistic: small when the ECDF strays from the diagonal anywhere.
Its distribution under uniformity is simulated once per (N, L), which gives both the p-value
(the fraction of uniform samples whose statistic is at least as small) and the adjusted pointwise
level ``gamma`` whose binomial intervals form a band that a uniform ECDF leaves anywhere with
probability ``alpha``. The test looks at the whole ECDF at once, so it has no bins to choose and
no multiplicity to correct along ``z``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .._validation import check_positive_int

__all__ = ["MAX_DRAWS", "UniformityTest", "check_level", "ecdf_uniformity_test"]

#: The most draws a rank may be taken among (and the most null simulations), which keeps the
#: test's tables of counts small.
MAX_DRAWS = 100_000


def check_level(name: str, value: object) -> float:
    """A test's level: a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name}: expected a level in (0, 1), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class UniformityTest:
    """The verdict on one set of ranks.

    Attributes:
        statistic: the smallest pointwise two-sided binomial tail probability of the ECDF.
        p_value: the probability, for uniform ranks, of a statistic this small or smaller.
        gamma: the pointwise level whose intervals make a simultaneous ``1 - alpha`` band.
        alpha: the level of the test.
        calibrated: ``p_value > alpha``, i.e. the ECDF stays inside the band.
        lower, upper: the band as counts of ranks below ``z = 1, ..., L`` (divide by N for the
            ECDF); ``counts`` are the observed ones.
    """

    statistic: float
    p_value: float
    gamma: float
    alpha: float
    calibrated: bool
    lower: np.ndarray
    upper: np.ndarray
    counts: np.ndarray


def _statistic(counts: np.ndarray, n: int, probs: np.ndarray) -> np.ndarray:
    """Smallest two-sided binomial tail probability over the points (last axis)."""
    below = stats.binom.cdf(counts, n, probs)
    above = stats.binom.sf(counts - 1, n, probs)
    return np.minimum(1.0, 2 * np.minimum(below, above)).min(axis=-1)


def _counts(ranks: np.ndarray, num_draws: int) -> np.ndarray:
    """Ranks below each z = 1..L, for ranks of shape (B, N): shape (B, L)."""
    rows, width = ranks.shape[0], num_draws + 1
    flat = (ranks + width * np.arange(rows)[:, None]).ravel()
    histogram = np.bincount(flat, minlength=rows * width).reshape(rows, width)
    return np.cumsum(histogram, axis=1)[:, :num_draws]


def ecdf_uniformity_test(ranks: np.ndarray, num_draws: int, *, alpha: float = 0.05,
                         simulations: int = 2000, seed: int = 0) -> UniformityTest:
    """Test whether ``ranks`` (integers in ``[0, num_draws]``) are uniform.

    Args:
        ranks: one-dimensional array of N ranks, each among ``num_draws`` draws.
        num_draws: L, the number of posterior draws each rank was taken among.
        alpha: the test's level (the band's simultaneous non-coverage).
        simulations: uniform samples simulated for the null distribution of the statistic.
        seed: seeds that simulation, so a verdict repeats.

    Examples:
        >>> rng = np.random.default_rng(1)
        >>> ecdf_uniformity_test(rng.integers(0, 100, size=200), 99).calibrated
        True
        >>> ecdf_uniformity_test(rng.integers(40, 60, size=200), 99).calibrated  # too narrow
        False
    """
    ranks = np.asarray(ranks)
    check_positive_int("num_draws", num_draws, maximum=MAX_DRAWS)
    check_positive_int("simulations", simulations, maximum=MAX_DRAWS)
    check_level("alpha", alpha)
    if ranks.ndim != 1 or not 0 < ranks.size <= 10 * MAX_DRAWS:
        raise ValueError(f"ranks: expected a 1-D array of 1 to {10 * MAX_DRAWS} ranks, got shape "
                         f"{ranks.shape}")
    if not np.issubdtype(ranks.dtype, np.integer) or ranks.min() < 0 or ranks.max() > num_draws:
        raise ValueError(f"ranks: expected integers in [0, {num_draws}] (num_draws), got values "
                         f"in [{ranks.min()}, {ranks.max()}] of dtype {ranks.dtype}")
    n = ranks.size
    probs = np.arange(1, num_draws + 1) / (num_draws + 1)
    counts = _counts(ranks[None].astype(np.int64), num_draws)[0]
    observed = float(_statistic(counts, n, probs))
    null = _null_statistics(n, num_draws, simulations, seed)
    p_value = float((np.count_nonzero(null <= observed) + 1) / (simulations + 1))
    gamma = float(np.quantile(null, alpha, method="lower"))
    lower = stats.binom.ppf(gamma / 2, n, probs)
    upper = stats.binom.isf(gamma / 2, n, probs)
    return UniformityTest(statistic=observed, p_value=p_value, gamma=gamma, alpha=float(alpha),
                          calibrated=p_value > alpha, lower=lower.astype(int),
                          upper=upper.astype(int), counts=counts)


@functools.lru_cache(maxsize=32)  # every coordinate of a site shares N and L
def _null_statistics(n: int, num_draws: int, simulations: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    probs = np.arange(1, num_draws + 1) / (num_draws + 1)
    out = np.empty(simulations)
    chunk = max(1, 4_000_000 // max(n + num_draws, 1))  # keep each batch of counts small
    for start in range(0, simulations, chunk):
        stop = min(start + chunk, simulations)
        ranks = rng.integers(0, num_draws + 1, size=(stop - start, n))
        out[start:stop] = _statistic(_counts(ranks, num_draws), n, probs)
    out.flags.writeable = False
    return out
