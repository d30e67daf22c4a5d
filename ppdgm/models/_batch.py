"""The batch size a model/guide call works on, and latents decoded in one batch, the same way in
every model."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from .._memory import check_draws, drawn_in_chunks
from .._pyro import local_params
from .._validation import check_positive_int, check_tensor

__all__ = ["batch_size", "decode_latents", "sized_sample"]


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


def sized_sample(chunked: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a model's ``sample(self, n, ...)``: ``n`` is checked as a count, a request whose
    draws would not fit in memory is refused naming ``n`` (``ppdgm._memory.check_fits``), and
    with ``chunked`` a large one is drawn in pieces of ``MAX_CHUNK`` joined at the end, so the
    networks' activations stay small. Requests up to ``MAX_CHUNK`` draw as one call."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def sample(self: Any, n: int, *args: Any, **kwargs: Any) -> Any:
            check_positive_int("n", n)
            check_draws("n", n, self)
            if not chunked:
                return method(self, n, *args, **kwargs)
            return drawn_in_chunks(lambda k: method(self, k, *args, **kwargs), n)

        return sample

    return decorate


def decode_latents(z: torch.Tensor, z_dim: int, x_shape: tuple[int, ...],
                   network: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``network`` on latents ``z`` of shape ``(..., z_dim)``: the leading dimensions flattened
    into one batch (convolutional networks take exactly one), the result ``(..., *x_shape)``,
    run with the model's own weights (see ppdgm._pyro)."""
    check_tensor("z", z, floating=True)
    if z.dim() < 1 or z.shape[-1] != z_dim:
        raise ValueError(f"z: expected shape (..., {z_dim}), got {tuple(z.shape)}")
    with local_params():
        points = network(z.reshape(-1, z_dim))
    return points.reshape(*z.shape[:-1], *x_shape)
