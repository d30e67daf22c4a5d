"""MNIST and Fashion-MNIST through torchvision, also from a plain folder of idx files.

torchvision reads only *uncompressed* idx files laid out as ``root/<Class>/raw/``. Distributions
ship the four official files as they are published, gzipped, in one folder (Debian's
``dataset-fashion-mnist`` puts them in ``/usr/share/datasets/fashion-mnist``). Such a folder is
accepted too: its files are decompressed into ``<cache>/<Class>/raw/`` (``<cache>`` is
``$PPDGM_DATA`` or ``~/.cache/ppdgm/data``) and loaded from there; the given folder is only read.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import tempfile
from pathlib import Path

import torch

from .base import Dataset, head_rows, to_binary

__all__ = ["DATA_ENV", "DEBIAN_FASHION_MNIST", "default_data_root", "load_mnist"]

DATA_ENV: str = "PPDGM_DATA"
DEBIAN_FASHION_MNIST: Path = Path("/usr/share/datasets/fashion-mnist")

_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def default_data_root() -> Path:
    """Where downloaded and staged data lives: ``$PPDGM_DATA``, else ``~/.cache/ppdgm/data``.

    Examples:
        >>> isinstance(default_data_root(), Path)
        True
    """
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ppdgm" / "data"


def _has_torchvision_layout(root: Path, class_name: str) -> bool:
    raw = root / class_name / "raw"
    return all((raw / f).is_file() for f in _IDX_FILES)


def _flat_sources(folder: Path) -> dict[str, Path] | None:
    """The four idx files directly in ``folder`` (plain or ``.gz``), or None when any is missing."""
    sources = {}
    for name in _IDX_FILES:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                sources[name] = candidate
                break
        else:
            return None
    return sources


def _uncompressed_size(src: Path) -> int:
    if src.suffix != ".gz":
        return src.stat().st_size
    # gzip's trailer stores the uncompressed size mod 2**32; idx files are far smaller.
    with open(src, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def _stage(sources: dict[str, Path], raw_dir: Path) -> None:
    """Decompress/copy idx files into ``raw_dir``; reuse copies whose size already matches."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():
        dest = raw_dir / name
        if dest.is_file() and dest.stat().st_size == _uncompressed_size(src):
            continue
        # Write to a temporary name and rename, so that an interrupted copy is never mistaken
        # for a complete file by the next run (or by torchvision, which only checks existence).
        fd, tmp = tempfile.mkstemp(dir=raw_dir, prefix=f".{name}.", suffix=".part")
        try:
            opener = gzip.open if src.suffix == ".gz" else open
            with os.fdopen(fd, "wb") as out, opener(src, "rb") as inp:
                shutil.copyfileobj(inp, out, length=1 << 20)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _torchvision_root(name: str, root: str | os.PathLike[str] | None, download: bool) -> Path:
    """The torchvision root to read ``name`` from, staging a flat idx folder when needed."""
    class_name = _CLASSES[name]
    cache = default_data_root()
    given = Path(root).expanduser() if root is not None else None
    if given is not None and _has_torchvision_layout(given, class_name):
        return given
    if given is None and _has_torchvision_layout(cache, class_name):
        return cache
    flat = given
    if flat is None and name == "fashion-mnist" and DEBIAN_FASHION_MNIST.is_dir():
        flat = DEBIAN_FASHION_MNIST
    sources = _flat_sources(flat) if flat is not None else None
    if sources is not None:
        _stage(sources, cache / class_name / "raw")
        return cache
    if download:
        return given if given is not None else cache
    where = given if given is not None else cache
    raise FileNotFoundError(
        f"root: no {class_name} idx files found in {where} (looked for {class_name}/raw/"
        f"{_IDX_FILES[0]} and for the four idx files, plain or .gz, directly in the folder); "
        f"pass download=True (needs internet) or point root at a folder that has "
        f"{class_name}/raw/ files or the four {', '.join(_IDX_FILES)}(.gz) files"
    )


def load_mnist(
    name: str,
    *,
    root: str | os.PathLike[str] | None,
    download: bool,
    num_train: int | None,
    num_test: int | None,
    binarize: bool,
) -> Dataset:
    """``name`` in {"mnist", "fashion-mnist"} as (N, 1, 28, 28) in [0, 1] (or {0, 1})."""
    torch_root = _torchvision_root(name, root, download)
    # Imported here so that `import ppdgm` does not pay for torchvision.
    from torchvision import datasets

    cls = getattr(datasets, _CLASSES[name])
    parts = {}
    for which, n in (("train", num_train), ("test", num_test)):
        try:
            raw = cls(str(torch_root), train=which == "train", download=download)
        except (RuntimeError, OSError) as err:
            if not download:
                raise
            raise FileNotFoundError(
                f"download: could not download {_CLASSES[name]} into {str(torch_root)!r} (is the "
                f"internet reachable?); or point root at a folder with its idx files ({err})"
            ) from err
        # Truncate the uint8 data before converting, so small runs stay cheap.
        data = head_rows(raw.data, n, f"num_{which}")
        x = data.to(torch.float32).div_(255.0).unsqueeze(1)
        parts[which] = to_binary(x) if binarize else x
        parts[f"{which}_labels"] = head_rows(raw.targets, n, f"num_{which}").to(torch.int64)
    return Dataset(name=name, support="binary" if binarize else "unit", **parts)
