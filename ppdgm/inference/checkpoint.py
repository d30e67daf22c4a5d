"""Checkpoints that survive crashes, detect corruption, and never execute code when read.

A checkpoint file is an 8-byte tag, the SHA-256 of what follows, and ``torch.save``'s archive of
the state. It is written to a temporary file in the same directory, flushed to disk and renamed
over the previous one (:func:`ppdgm._files.atomic_write`), so a crash, a kill or a full disk
mid-write leaves the last complete checkpoint in place. Reading checks the digest before
anything is unpacked, so a flipped byte anywhere is refused, and unpacks with
``torch.load(weights_only=True)``: only tensors and plain containers load. Files of the first
format (a bare ``torch.save`` archive, no digest) still load.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._files import atomic_write

__all__ = [
    "CheckpointError",
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "capture_rng_state",
    "check_weights",
    "restore_rng_state",
]

CHECKPOINT_FORMAT = "ppdgm.checkpoint"
CHECKPOINT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_TAG = b"PPDGMCK2"  # the file's first bytes; then the SHA-256 of the archive, then the archive
_DIGEST = hashlib.sha256().digest_size
_ZIP = b"PK\x03\x04"  # version 1 files are torch's zip archive as it is


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, foreign, or does not fit the model it is loaded into."""


def check_weights(saved: Any, module: torch.nn.Module, where: str) -> None:
    """Refuse saved weights that would load into ``module`` unsoundly: a tensor whose dtype is
    not the module's (``load_state_dict`` would cast it silently) or a parameter holding NaN or
    Inf. The file's digest proves it is the file written, not that what was written is sound.
    ``where`` starts the message (``"checkpoint: 'run/checkpoint.pt'"``).

    Examples:
        >>> net = torch.nn.Linear(2, 1)
        >>> check_weights(net.state_dict(), net, "checkpoint")
        >>> bad = {**net.state_dict(), "bias": torch.tensor([float("nan")])}
        >>> try:
        ...     check_weights(bad, net, "checkpoint")
        ... except CheckpointError as err:
        ...     print(err)
        checkpoint: weight 'bias' holds NaN or Inf; the run that wrote it had diverged
    """
    if not isinstance(saved, dict):
        raise CheckpointError(f"{where}: its weights are a {type(saved).__name__}, not a dict")
    expected = module.state_dict()
    parameters = {name for name, _ in module.named_parameters()}
    for name, value in saved.items():
        mine = expected.get(name)
        if not isinstance(value, torch.Tensor) or mine is None:
            continue  # missing and unexpected entries are load_state_dict's to name
        if value.dtype != mine.dtype:
            raise CheckpointError(f"{where}: weight {name!r} is {value.dtype} but the model's is "
                                  f"{mine.dtype}")
        if name in parameters and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{where}: weight {name!r} holds NaN or Inf; the run that wrote "
                                  "it had diverged")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Atomically write ``state`` (tensors and plain containers only) to ``path``, with a digest.

    Examples:
        >>> import tempfile
        >>> p = save_checkpoint({"w": torch.ones(2)}, Path(tempfile.mkdtemp()) / "c.pt")
        >>> load_checkpoint(p)["w"]
        tensor([1., 1.])
    """
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    archive = buffer.getbuffer()

    def write(handle: Any) -> None:
        handle.write(_TAG)
        handle.write(hashlib.sha256(archive).digest())
        handle.write(archive)

    return atomic_write(path, write)


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` without executing code from it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated, corrupt (its digest does not match), holds code
            objects, or is not a ppdgm checkpoint.

    Examples:
        >>> import tempfile
        >>> p = save_checkpoint({"step": 3}, Path(tempfile.mkdtemp()) / "c.pt")
        >>> load_checkpoint(p)["step"]
        3
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path: expected a checkpoint path, got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint file at {str(path)!r}")
    data = path.read_bytes()
    if data.startswith(_TAG):
        digest, archive = data[len(_TAG):len(_TAG) + _DIGEST], memoryview(data)[len(_TAG) + _DIGEST:]
        if hashlib.sha256(archive).digest() != digest:
            raise CheckpointError(f"path: {str(path)!r} is truncated or corrupt: its contents do not "
                                  "match the checksum written with them")
        version_expected = CHECKPOINT_VERSION
    elif data.startswith(_ZIP):
        archive, version_expected = memoryview(data), 1
    else:
        raise CheckpointError(f"path: {str(path)!r} is not a ppdgm checkpoint (unknown file header)")
    try:
        state = torch.load(io.BytesIO(archive), map_location=map_location, weights_only=True)
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
    if state.get("version") not in _READABLE_VERSIONS or state.get("version") != version_expected:
        raise CheckpointError(
            f"path: {str(path)!r} has checkpoint version {state.get('version')!r}, "
            f"this ppdgm reads versions {', '.join(map(str, _READABLE_VERSIONS))}"
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
