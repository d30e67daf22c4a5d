"""Checkpoints that survive crashes and never execute code when read.

A checkpoint is written to a temporary file in the same directory, flushed to disk and renamed
over the previous one, so a crash or a kill mid-write leaves the last complete checkpoint in
place. Reading uses ``torch.load(weights_only=True)``: only tensors and plain containers load.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CheckpointError",
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
]

CHECKPOINT_FORMAT = "ppdgm.checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, foreign, or does not fit the model it is loaded into."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Atomically write ``state`` (tensors and plain containers only) to ``path``.

    Example:
        >>> import tempfile
        >>> p = save_checkpoint({"w": torch.ones(2)}, Path(tempfile.mkdtemp()) / "c.pt")
        >>> load_checkpoint(p)["w"]
        tensor([1., 1.])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk; not every OS allows this.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` without executing code from it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated, corrupt, holds code objects, or is not a ppdgm
            checkpoint.

    Example:
        >>> import tempfile
        >>> p = save_checkpoint({"step": 3}, Path(tempfile.mkdtemp()) / "c.pt")
        >>> load_checkpoint(p)["step"]
        3
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint file at {str(path)!r}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"path: {str(path)!r} holds objects that loading would have to execute code for, or is "
            f"corrupt; refusing to load it ({_first_line(err)})"
        ) from err
    except Exception as err:  # a damaged file fails deep inside torch's unpickler in many ways
        raise CheckpointError(
            f"path: {str(path)!r} is not a readable checkpoint (truncated or corrupt?): "
            f"{_first_line(err)}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"path: {str(path)!r} is not a ppdgm checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"path: {str(path)!r} has checkpoint version {state.get('version')!r}, "
            f"this ppdgm reads version {CHECKPOINT_VERSION}"
        )
    return state


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def capture_rng_state() -> dict[str, Any]:
    """Every random state a training step reads: torch (CPU and CUDA), Python and NumPy."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng_state` (tensors may come back on any device)."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].cpu().numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
