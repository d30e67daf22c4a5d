"""A mean over data points with its standard error: what every estimator here reports."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Estimate"]


@dataclass(frozen=True)
class Estimate:
    """A mean over data points with its standard error (both in nats per data point).

    Examples:
        >>> Estimate.of(torch.tensor([1.0, 3.0]))
        Estimate(mean=2.0, stderr=1.0, n=2)
    """

    mean: float
    stderr: float
    n: int

    @classmethod
    def of(cls, per_point: torch.Tensor) -> Estimate:
        values = per_point.detach().double().flatten()
        n = values.numel()
        stderr = values.std().item() / math.sqrt(n) if n > 1 else float("nan")
        return cls(values.mean().item(), stderr, n)
