"""The batch size a model/guide call works on, the same way in every model."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._validation import check_positive_int

__all__: list[str] = []


def batch_size(x: torch.Tensor | None, num_samples: int | None,
               check_x: Callable[[torch.Tensor], None]) -> int:
    """``x.shape[0]`` for data (checked with ``check_x``), ``num_samples`` when generating."""
    if x is None:
        if num_samples is None:
            raise ValueError("num_samples: needed when x is None (how many points to draw)")
        return check_positive_int("num_samples", num_samples)
    check_x(x)
    if x.shape[0] == 0:
        raise ValueError(f"x: expected at least one data point, got an empty batch of shape "
                         f"{tuple(x.shape)}")
    if num_samples is not None and num_samples != x.shape[0]:
        raise ValueError(
            f"num_samples: expected None or x's batch size {x.shape[0]}, got {num_samples!r}"
        )
    return x.shape[0]
