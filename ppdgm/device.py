"""The one place that decides where tensors live.

Everything else in ppdgm receives a resolved :class:`torch.device` (or reads it off a tensor):
models, objectives and kernels never call ``.to(device)`` themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["resolve_device", "move_to_device", "loader_kwargs"]

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda)(:(\d+))?$")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N" | "mps"`` (or a device) into a checked device.

    ``"auto"`` (or ``None``) picks the first CUDA device when one is visible, else Apple's MPS
    when available, else the CPU. Asking for a device that is absent raises instead of silently
    falling back, so a run never lands on a different machine than the one requested.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        spec = str(device)
    elif device is None:
        spec = "auto"
    elif isinstance(device, str):
        spec = device.strip().lower()
    else:
        raise TypeError(
            f"device: expected a str like 'auto', 'cpu', 'cuda' or 'cuda:N' or a torch.device, "
            f"got {type(device).__name__}"
        )
    match = _DEVICE_PATTERN.match(spec)
    if match is None:
        raise ValueError(
            f"device: expected 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N', got {device!r}"
        )
    kind, index = match.group(1), match.group(3)
    if kind == "auto":
        if index is not None:
            raise ValueError(f"device: 'auto' takes no index, got {device!r}")
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not _mps_available():
            raise ValueError(f"device: {device!r} requested but MPS is not available here")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device: {device!r} requested but CUDA is not available "
            f"(torch {torch.__version__}); use 'cpu' or 'auto'"
        )
    count = torch.cuda.device_count()
    idx = torch.cuda.current_device() if index is None else int(index)
    if idx >= count:
        raise ValueError(f"device: {device!r} requested but only {count} CUDA device(s) exist")
    return torch.device("cuda", idx)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move a tensor, or the tensors inside a batch structure, to ``device``.

    Tensors and objects with a ``.to(device)`` method of their own (a ``PackedSequence``) move as
    they are; tuples, lists, namedtuples and mappings are rebuilt as the same type around their
    moved contents; anything else (strings, numbers, ``None``) is returned unchanged. Copies to
    CUDA are ``non_blocking`` so that pinned host memory overlaps with compute.

    Examples:
        >>> from collections import namedtuple
        >>> Batch = namedtuple("Batch", "x y")
        >>> move_to_device(Batch(torch.zeros(2), {"y": torch.ones(1)}), torch.device("cpu")).y["y"]
        tensor([1.])
    """
    non_blocking = device.type == "cuda"
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if _moves_itself(batch):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        moved = {k: move_to_device(v, device) for k, v in batch.items()}
        return moved if type(batch) is dict else _rebuild(batch, moved)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple: fields by position
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)):
        return _rebuild(batch, [move_to_device(v, device) for v in batch])
    return batch


def _moves_itself(value: Any) -> bool:
    # PackedSequence and similar torch structures are tuples that know how to move as a whole.
    return callable(getattr(value, "to", None)) and hasattr(value, "is_cuda")


def _rebuild(original: Any, contents: Any) -> Any:
    try:
        return type(original)(contents)
    except TypeError:  # a container type whose constructor takes other arguments
        return contents


def loader_kwargs(device: torch.device) -> dict[str, Any]:
    """DataLoader keyword arguments suited to ``device`` (pinned memory when feeding CUDA).

    Examples:
        >>> loader_kwargs(torch.device("cpu"))
        {'pin_memory': False}
    """
    return {"pin_memory": device.type == "cuda"}
