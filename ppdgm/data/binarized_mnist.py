"""The static binarization of MNIST (Larochelle & Murray, 2011) from files the user provides.

This is the split of the VAE/IWAE/SBN likelihood tables: 50000 train, 10000 valid, 10000 test
images of 784 pixels in {0, 1}. Two forms are read: one ``.npz`` with keys train/valid/test,
or a directory with the published ``binarized_mnist_{train,valid,test}.amat`` files, each either
whitespace-separated text (784 values a line) or MATLAB v5 (variable ``X``).
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from .base import Dataset

__all__ = ["BINARIZED_MNIST_ENV", "BINARIZED_MNIST_URL", "load_binarized_mnist"]

BINARIZED_MNIST_ENV: str = "PPDGM_BINARIZED_MNIST"
BINARIZED_MNIST_URL: str = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"

_SPLITS = ("train", "valid", "test")
_PIXELS = 784


def _resolve_path(path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        env = os.environ.get(BINARIZED_MNIST_ENV)
        if not env:
            raise ValueError(
                "path: binarized-mnist is not bundled; expected path=... (an .npz with keys "
                "train/valid/test, or a directory with binarized_mnist_{train,valid,test}.amat "
                f"as published at {BINARIZED_MNIST_URL}) or the environment variable "
                f"{BINARIZED_MNIST_ENV}, got neither"
            )
        path = env
    return Path(path).expanduser()


def _read_amat(file: Path) -> np.ndarray:
    with open(file, "rb") as f:
        magic = f.read(6)
    if magic == b"MATLAB":
        from scipy.io import loadmat

        try:
            content = loadmat(file)
        except NotImplementedError as err:  # v7.3 files are HDF5, which loadmat does not read
            raise ValueError(
                f"{file}: expected a MATLAB v5 file, got another version ({err})"
            ) from err
        if "X" not in content:
            raise ValueError(f"{file}: expected a MATLAB variable 'X', got {sorted(content)}")
        return np.asarray(content["X"])
    fast = _read_digit_text(file)
    if fast is not None:
        return fast
    try:
        with warnings.catch_warnings():
            # An empty file warns and returns no rows; the shape check then says what is wrong.
            warnings.filterwarnings("ignore", message="loadtxt: input contained no data")
            return np.loadtxt(file, dtype=np.float32, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{file}: expected rows of {_PIXELS} numbers 0/1 ({err})") from err


def _read_digit_text(file: Path) -> np.ndarray | None:
    """Parse lines of single-digit values laid out identically, or None when it is not that.

    The published files are exactly this, and viewing the bytes as a (lines, width) matrix is
    ~30x faster than np.loadtxt (8 s for the training file); anything else goes to loadtxt.
    """
    newline = ord("\n")
    buf = np.fromfile(file, dtype=np.uint8)
    if buf.size == 0:
        return None
    if buf[-1] != newline:
        buf = np.append(buf, np.uint8(newline))
    ends = np.flatnonzero(buf == newline)
    width = int(ends[0]) + 1
    if buf.size != ends.size * width or not bool((np.diff(ends) == width).all()):
        return None
    rows = buf.reshape(ends.size, width)
    first = rows[0]
    is_digit = (first >= ord("0")) & (first <= ord("9"))
    digits, gaps = np.flatnonzero(is_digit), np.flatnonzero(~is_digit)
    if digits.size == 0 or bool((np.diff(digits) == 1).any()):  # none, or multi-digit numbers
        return None
    if not bool(np.isin(first[gaps], np.frombuffer(b" \t\r\n", dtype=np.uint8)).all()):
        return None
    if not bool((rows[:, gaps] == first[gaps]).all()):
        return None
    values = rows[:, digits]
    if not bool(((values >= ord("0")) & (values <= ord("9"))).all()):
        return None
    return values - ord("0")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise FileNotFoundError(f"path: no such file or directory: {path}")
    if path.is_dir():
        arrays = {}
        for key in _SPLITS:
            file = path / f"binarized_mnist_{key}.amat"
            if not file.is_file():
                raise FileNotFoundError(
                    f"path: expected {file.name} in {path}, got no such file ({file})"
                )
            arrays[key] = _read_amat(file)
        return arrays
    with open(path, "rb") as f:
        is_zip = f.read(2) == b"PK"
    if not is_zip:
        raise ValueError(
            f"path: expected an .npz file or a directory with the .amat files, got {path}"
        )
    # The file is opened here so that it is closed even when numpy finds the archive corrupt.
    with open(path, "rb") as handle:
        try:
            content = np.load(handle, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise ValueError(f"path: {path} is not a readable .npz archive ({err})") from err
        with content:
            missing = [k for k in _SPLITS if k not in content.files]
            if missing:
                raise ValueError(
                    f"path: expected keys {list(_SPLITS)} in {path}, got {sorted(content.files)}"
                )
            try:
                return {key: content[key] for key in _SPLITS}
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
                raise ValueError(f"path: {path} holds a corrupt array ({err})") from err


def _check_shape(key: str, array: np.ndarray) -> None:
    if array.ndim != 2 or array.shape[1] != _PIXELS or array.shape[0] == 0:
        raise ValueError(f"{key}: expected shape (N, {_PIXELS}), got {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{key}: expected a numeric array of 0/1, got dtype {array.dtype}")


def _first_rows(array: np.ndarray, n: int | None, name: str) -> np.ndarray:
    # Truncate before converting, so that a small test run does not pay for the full float copy.
    if n is None:
        return array
    if n > array.shape[0]:
        raise ValueError(f"{name}: expected at most {array.shape[0]} (the split's size), got {n}")
    return array[:n]


def _to_images(key: str, array: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(array)).to(torch.float32)
    if not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(
            f"{key}: expected values in {{0, 1}}, got values in "
            f"[{x.min().item():g}, {x.max().item():g}]"
        )
    return x.reshape(-1, 1, 28, 28)


def load_binarized_mnist(
    *, path: str | os.PathLike[str] | None, num_train: int | None, num_test: int | None
) -> Dataset:
    """Read the three splits from ``path`` (or ``$PPDGM_BINARIZED_MNIST``) as (N, 1, 28, 28)."""
    arrays = _read_arrays(_resolve_path(path))
    for key in _SPLITS:
        _check_shape(key, arrays[key])
    arrays["train"] = _first_rows(arrays["train"], num_train, "num_train")
    arrays["test"] = _first_rows(arrays["test"], num_test, "num_test")
    x = {key: _to_images(key, arrays[key]) for key in _SPLITS}
    return Dataset(
        name="binarized-mnist",
        train=x["train"],
        valid=x["valid"],
        test=x["test"],
        support="binary",
    )
