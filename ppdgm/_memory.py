"""What a request for n things would take in memory, checked before anything is allocated.

Asking for 10^10 samples used to reach torch's allocator and end in "can't allocate memory: you
tried to allocate 80000000000 bytes". :func:`check_fits` estimates the bytes a call's result
needs from its arguments and refuses, naming the argument, what does not fit in half the
device's memory (the result and a working copy); :func:`chunks` splits what fits into pieces
of bounded size, so that the networks' activations of a large request stay small too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["MAX_CHUNK", "check_draws", "check_fits", "chunks", "device_memory", "drawn_in_chunks"]

#: The most items drawn in one piece (a training batch's order of size, times a few).
MAX_CHUNK = 2**16


def device_memory(device: torch.device | str) -> int:
    """The memory of ``device`` in bytes: the GPU's total, or the machine's physical memory."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): assume a large machine
        return 2**40


def _size(n_bytes: float) -> str:
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    power = min(int(math.log(max(n_bytes, 1), 1024)), len(units) - 1)
    return f"{n_bytes / 1024 ** power:.3g} {units[power]}"


def check_fits(name: str, count: int, bytes_each: int, device: torch.device | str,
               what: str = "samples") -> None:
    """Refuse ``count`` items of ``bytes_each`` bytes when they need more than half of
    ``device``'s memory; the error names argument ``name`` and the memory it would take.

    Examples:
        >>> check_fits("n", 10, 16, "cpu")
        >>> try:
        ...     check_fits("n", 10**10, 16, "cpu")
        ... except ValueError as err:
        ...     print(str(err)[:44])
        n: 10000000000 samples would take 149 GiB of
    """
    need = count * bytes_each
    have = device_memory(device)
    if need > have // 2:
        raise ValueError(f"{name}: {count} {what} would take {_size(need)} of memory, more than "
                         f"half of the {_size(have)} on {torch.device(device)}")


def chunks(count: int, size: int = MAX_CHUNK) -> Iterator[int]:
    """``count`` split into pieces of at most ``size``.

    Examples:
        >>> list(chunks(5, 2))
        [2, 2, 1]
    """
    done = 0
    while done < count:
        yield min(size, count - done)
        done += size


def drawn_in_chunks(draw: Callable[[int], Any], n: int, size: int = MAX_CHUNK) -> Any:
    """``draw(n)``, or for ``n > size`` the pieces ``draw(k)`` joined along the first dimension
    (tensors, or tuples of tensors). A request no larger than ``size`` is one call, as before."""
    if n <= size:
        return draw(n)
    parts = [draw(k) for k in chunks(n, size)]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(column) for column in zip(*parts))
    return torch.cat(parts)


def check_draws(name: str, n: int, model: Any, copies: int = 2) -> None:
    """Refuse ``n`` draws of ``model``'s data points (``copies`` tensors of them alive at once:
    a draw and its latents, a sampler's state and its prediction) that would not fit in the
    memory of the device its weights are on."""
    each = copies * _event_numel(model) * torch.empty((), dtype=torch.get_default_dtype()).element_size()
    check_fits(name, n, each, _device(model))


def _event_numel(model: Any) -> int:
    config = getattr(model, "config", None)
    shape = getattr(config, "x_shape", None)
    if shape is None:
        shape = (getattr(config, "x_dim", None) or getattr(model, "visible", 1),)
    return math.prod(shape)


def _device(model: Any) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")
