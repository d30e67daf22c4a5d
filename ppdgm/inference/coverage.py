"""Mode coverage of samples from a mixture with known centres: mode covering versus mode dropping.

The protocol of VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al., 2018) for the ``ring8``
and ``grid25`` mixtures:

* a sample is *high quality* when its Euclidean distance to its nearest centre is at most
  ``threshold * std`` (three standard deviations by default; the boundary counts as inside);
* a mode is *captured* when at least one high-quality sample has it as its nearest centre;
* the *reverse KL* is KL(q || p) = sum_k q_k log(q_k / p_k) in nats, where q is the histogram of
  high-quality samples over the modes (``counts / counts.sum()``) and p the true mixture weights
  (uniform by default), with 0 log 0 = 0. It is 0 when the high-quality samples are spread over
  the modes exactly as the weights say, log K when they all sit on one of K equal-weight modes,
  ``inf`` when a sample sits on a mode of weight 0, and ``nan`` when there is no high-quality
  sample at all (q is then undefined).

:func:`summarize_coverage` reports the mean and standard error of these numbers over seeds.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .._validation import check_choice, check_tensor
from ..data.synthetic import MIXTURES, mixture_centres

if TYPE_CHECKING:  # evaluate.py re-exports this module: import it lazily to avoid a cycle.
    from .estimate import Estimate

__all__ = ["ModeCoverage", "coverage_for_dataset", "dataset_coverage", "mode_coverage",
           "summarize_coverage"]

# Rows of samples compared with all centres at once: bounds the (rows, K, D) difference tensor.
_CHUNK = 65_536


@dataclass(frozen=True)
class ModeCoverage:
    """How a set of samples covers the K modes of a mixture (see the module docstring).

    ``modes_captured`` of ``num_modes`` modes have at least one high-quality sample;
    ``high_quality`` is the fraction of all ``num_samples`` samples that are high quality;
    ``counts[k]`` is the number of high-quality samples nearest to centre k; ``reverse_kl`` is
    KL(q || p) in nats (``nan`` when no sample is high quality).
    """

    modes_captured: int
    num_modes: int
    high_quality: float
    counts: tuple[int, ...]
    reverse_kl: float
    num_samples: int

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for JSON (``high_quality`` as a fraction and as a percentage).

        Examples:
            >>> c = mode_coverage(torch.zeros(2, 2), torch.zeros(1, 2), 1.0)
            >>> c.as_dict()["high_quality_percent"]
            100.0
        """
        return {
            "modes_captured": self.modes_captured,
            "num_modes": self.num_modes,
            "high_quality": self.high_quality,
            "high_quality_percent": 100.0 * self.high_quality,
            "counts": list(self.counts),
            "reverse_kl": self.reverse_kl,
            "num_samples": self.num_samples,
        }

    def as_json(self) -> dict[str, Any]:
        """:meth:`as_dict` with an undefined reverse KL (no high-quality sample) as ``None``.

        Examples:
            >>> mode_coverage(torch.full((2, 2), 9.0), torch.zeros(1, 2), 1.0).as_json()["reverse_kl"]
        """
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in self.as_dict().items()}


def mode_coverage(
    samples: torch.Tensor,
    centres: torch.Tensor,
    std: float,
    *,
    threshold: float = 3.0,
    weights: torch.Tensor | Sequence[float] | None = None,
) -> ModeCoverage:
    """Count the modes that ``samples`` (N, D) capture among ``centres`` (K, D) of std ``std``.

    Each sample is assigned to its nearest centre (the first one on an exact tie) and is high
    quality when that distance is <= ``threshold * std``. ``weights`` (K,) are the true mixture
    weights for the reverse KL: non-negative with a positive sum, normalized here; ``None`` means
    uniform. Distances are computed in float64 on the samples' device (float32 on MPS, which has
    no float64); ``centres`` are brought to that device.

    Examples:
        >>> centres = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
        >>> samples = torch.tensor([[0.1, 0.0], [0.0, -0.2], [9.0, 9.0]])
        >>> c = mode_coverage(samples, centres, std=0.1)
        >>> c.modes_captured, c.counts, round(c.high_quality, 3), round(c.reverse_kl, 4)
        (1, (2, 0), 0.667, 0.6931)
    """
    check_tensor("samples", samples, ndim=2, floating=True, finite=True)
    check_tensor("centres", centres, ndim=2, floating=True, finite=True)
    n, d = samples.shape
    k = centres.shape[0]
    if n == 0 or d == 0:
        raise ValueError(f"samples: expected shape (N, D) with N >= 1 and D >= 1, "
                         f"got {tuple(samples.shape)}")
    if k == 0 or centres.shape[1] != d:
        raise ValueError(f"centres: expected shape (K, {d}) with K >= 1 to match samples "
                         f"{tuple(samples.shape)}, got {tuple(centres.shape)}")
    std = _positive_real("std", std)
    threshold = _positive_real("threshold", threshold)
    p = _mixture_weights(weights, k)

    device = samples.device
    dtype = torch.float32 if device.type == "mps" else torch.float64
    c = centres.detach().to(device=device, dtype=dtype)
    radius = threshold * std
    counts = torch.zeros(k, dtype=torch.long, device=device)
    for chunk in samples.detach().split(_CHUNK):
        # Differences, not torch.cdist: cdist's matrix-product path is inexact, and a sample
        # placed exactly at threshold * std must count as high quality.
        sq = (chunk.to(dtype)[:, None, :] - c[None, :, :]).square().sum(-1)  # (rows, K)
        nearest_sq, nearest = sq.min(dim=1)
        good = nearest_sq.sqrt() <= radius
        counts += torch.bincount(nearest[good], minlength=k)

    count_list = [int(v) for v in counts.tolist()]
    total = sum(count_list)
    return ModeCoverage(
        modes_captured=sum(1 for v in count_list if v > 0),
        num_modes=k,
        high_quality=total / n,
        counts=tuple(count_list),
        reverse_kl=_reverse_kl(count_list, p),
        num_samples=n,
    )


def coverage_for_dataset(samples: torch.Tensor, name: str, *, threshold: float = 3.0) -> ModeCoverage:
    """:func:`mode_coverage` against the centres and std of the ``"ring8"`` or ``"grid25"``
    mixture of :mod:`ppdgm.data.synthetic` (equal weights).

    Examples:
        >>> from ppdgm.data.synthetic import mixture_centres
        >>> c = coverage_for_dataset(mixture_centres("grid25"), "grid25")
        >>> c.modes_captured, c.high_quality, c.reverse_kl
        (25, 1.0, 0.0)
    """
    check_choice("name", name, list(MIXTURES))
    return mode_coverage(samples, mixture_centres(name), MIXTURES[name], threshold=threshold)


def summarize_coverage(results: Sequence[ModeCoverage]) -> dict[str, Estimate]:
    """Mean and standard error over seeds (one :class:`ModeCoverage` each) of the modes
    captured, the percentage of high-quality samples and the reverse KL.

    Returns ``{"modes_captured", "high_quality_percent", "reverse_kl"}`` as
    :class:`ppdgm.inference.evaluate.Estimate` (``stderr`` = sample std / sqrt(n), ``nan`` for a
    single seed). A seed with no high-quality sample has ``reverse_kl = nan``, which makes the
    mean ``nan`` too: it is reported, not dropped.

    Examples:
        >>> centres = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
        >>> runs = [mode_coverage(centres, centres, 0.1), mode_coverage(centres[:1], centres, 0.1)]
        >>> s = summarize_coverage(runs)
        >>> s["modes_captured"].mean, s["modes_captured"].stderr, s["high_quality_percent"].mean
        (1.5, 0.5, 100.0)
    """
    from .estimate import Estimate

    if isinstance(results, ModeCoverage) or not isinstance(results, Sequence) or not results:
        raise ValueError(f"results: expected a non-empty sequence of ModeCoverage, "
                         f"got {type(results).__name__}")
    for i, r in enumerate(results):
        if not isinstance(r, ModeCoverage):
            raise TypeError(f"results[{i}]: expected a ModeCoverage, got {type(r).__name__}")
    modes = {r.num_modes for r in results}
    if len(modes) > 1:
        raise ValueError(f"results: expected the same number of modes in every result, "
                         f"got {sorted(modes)}")

    def column(values: list[float]) -> Estimate:
        return Estimate.of(torch.tensor(values, dtype=torch.float64))

    return {
        "modes_captured": column([float(r.modes_captured) for r in results]),
        "high_quality_percent": column([100.0 * r.high_quality for r in results]),
        "reverse_kl": column([r.reverse_kl for r in results]),
    }


def _positive_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite float > 0, got {value}")
    return value


def _mixture_weights(weights: object, k: int) -> list[float]:
    if weights is None:
        return [1.0 / k] * k
    if isinstance(weights, torch.Tensor):
        values = weights.detach().cpu().double().flatten().tolist() if weights.dim() == 1 else None
    elif isinstance(weights, Sequence) and not isinstance(weights, str):
        try:
            values = [float(w) for w in weights]
        except (TypeError, ValueError):
            raise TypeError(f"weights: expected a sequence of numbers, got {weights!r}") from None
    else:
        raise TypeError(f"weights: expected a tensor or sequence of {k} floats, "
                        f"got {type(weights).__name__}")
    if values is None or len(values) != k:
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else (len(weights),)
        raise ValueError(f"weights: expected shape ({k},), one per centre, got {shape}")
    if not all(math.isfinite(w) and w >= 0 for w in values) or sum(values) <= 0:
        raise ValueError(f"weights: expected finite values >= 0 with a positive sum, got {values}")
    total = math.fsum(values)
    return [w / total for w in values]


def _reverse_kl(counts: list[int], p: list[float]) -> float:
    total = sum(counts)
    if total == 0:
        return math.nan
    terms = []
    for c, pk in zip(counts, p):
        if c == 0:
            continue  # 0 log 0 = 0
        if pk == 0:
            return math.inf
        q = c / total
        terms.append(q * math.log(q / pk))
    # KL >= 0; fsum of rounded terms can land a few ulps below it when q is close to p.
    return max(math.fsum(terms), 0.0)


def dataset_coverage(samples: torch.Tensor, dataset: Any) -> ModeCoverage | None:
    """The mode coverage of ``samples`` on a dataset with known centres, else ``None``.

    ``dataset`` is a :class:`ppdgm.data.Dataset`; one without ``centres`` and ``scale`` (anything
    but the 2-D mixtures) or with images has no modes to count.

    Examples:
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("ring8", num_train=16, num_test=8)
        >>> dataset_coverage(ds.centres, ds).modes_captured
        8
    """
    centres, scale = getattr(dataset, "centres", None), getattr(dataset, "scale", None)
    if centres is None or scale is None or samples.dim() != 2:
        return None
    return mode_coverage(samples, centres.to(samples.device), scale)
