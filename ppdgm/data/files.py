"""The user's own data: an array file, a folder of images, or any torchvision dataset by name.

Each becomes a :class:`~ppdgm.data.base.Dataset` like the registered ones, so every model and
command takes it:

- an ``.npy`` file holding one array ``(N, ...)``, or an ``.npz`` file holding ``train`` and
  ``test`` (and optionally ``valid``) arrays, or a single array under any name;
- a folder of PNG/JPEG images, directly inside it or in one sub-folder per class (torchvision's
  ``ImageFolder`` layout, whose folder names become labels);
- ``torchvision:NAME``, a dataset class of ``torchvision.datasets`` with ``train=True/False``
  splits (``CIFAR10``, ``KMNIST``, ...), under ``root`` and fetched with ``download=True``.

Data without its own test split is split at random (``seed``): a tenth, at least one example,
is held out. Values decide the support: all 0/1 is ``"binary"``, within [0, 1] ``"unit"``,
anything else ``"real"``; ``uint8`` arrays and images are divided by 255 first. Arrays of shape
``(N, H, W)`` gain a channel axis; ``(N, C, H, W)`` is kept, and ``(N, H, W, C)`` (C in {1, 3, 4}
and smaller than H and W) loads as ``(N, C, H, W)``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import Dataset, head_rows

__all__ = ["TORCHVISION_PREFIX", "IMAGE_SUFFIXES", "load_array_file", "load_image_folder",
           "load_torchvision", "looks_like_a_path"]

TORCHVISION_PREFIX = "torchvision:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_TEST_FRACTION = 0.1


def looks_like_a_path(name: str) -> bool:
    """Whether ``--data NAME`` names a file or folder rather than a registered dataset."""
    return os.sep in name or name.endswith((".npz", ".npy")) or Path(name).exists()


def load_array_file(path: str | os.PathLike[str], *, seed: int = 0, num_train: int | None = None,
                    num_test: int | None = None) -> Dataset:
    """A :class:`Dataset` from an ``.npy`` or ``.npz`` file (see the module docstring).

    Examples:
        >>> import tempfile
        >>> file = Path(tempfile.mkdtemp()) / "points.npy"
        >>> np.save(file, np.random.default_rng(0).normal(size=(50, 2)))
        >>> ds = load_array_file(file)
        >>> ds.train.shape, ds.test.shape, ds.support
        (torch.Size([45, 2]), torch.Size([5, 2]), 'real')
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data: no file at {str(path)!r}")
    splits = _read_arrays(path)
    if "train" not in splits:
        splits = _split(splits["all"], seed)
    tensors = {name: _as_examples(f"{path.name}[{name}]", array) for name, array in splits.items()}
    return _dataset(str(path.resolve()), tensors, num_train=num_train, num_test=num_test)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.suffix == ".npy":
            return {"all": np.load(path, allow_pickle=False)}
        with open(path, "rb") as handle:  # closed even when numpy finds the archive corrupt
            with np.load(handle, allow_pickle=False) as content:
                names = list(content.files)
                if "train" in names:
                    unknown = sorted(set(names) - {"train", "valid", "test"})
                    if "test" not in names or unknown:
                        raise ValueError(f"data: {path.name} has keys {names}; expected train and "
                                         "test (and optionally valid), or a single array")
                    return {name: content[name] for name in names}
                if len(names) != 1:
                    raise ValueError(f"data: {path.name} has keys {names}; expected train and "
                                     "test (and optionally valid), or a single array")
                return {"all": content[names[0]]}
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise ValueError(f"data: {str(path)!r} is not a readable .npy/.npz file ({err})") from err


def _as_examples(name: str, array: np.ndarray) -> torch.Tensor:
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected numbers, got dtype {array.dtype}")
    if array.ndim < 2 or array.shape[0] == 0:
        raise ValueError(f"{name}: expected shape (N, ...) with N >= 1 examples, got {array.shape}")
    values = array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0)
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    if values.ndim == 3:  # (N, H, W): one channel
        values = values[:, None]
    elif values.ndim == 4 and values.shape[-1] in (1, 3, 4) and \
            values.shape[-1] < values.shape[1] and values.shape[-1] <= values.shape[2]:
        values = values.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    return torch.from_numpy(np.ascontiguousarray(values))


def _split(array: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    n = array.shape[0]
    if n < 2:
        raise ValueError(f"data: expected at least 2 examples to hold one out for testing, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    held = max(1, int(round(_TEST_FRACTION * n)))
    return {"train": array[order[held:]], "test": array[order[:held]]}


def _support(tensors: dict[str, torch.Tensor]) -> str:
    values = torch.cat([t.flatten() for t in tensors.values()])
    if bool(((values == 0) | (values == 1)).all()):
        return "binary"
    if bool(((values >= 0) & (values <= 1)).all()):
        return "unit"
    return "real"


def _dataset(name: str, tensors: dict[str, torch.Tensor], *, num_train: int | None,
             num_test: int | None, labels: dict[str, torch.Tensor] | None = None) -> Dataset:
    shapes = {split: tuple(t.shape[1:]) for split, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"data: the splits of {name!r} have different example shapes {shapes}")
    labels = labels or {}
    return Dataset(
        name=name,
        train=head_rows(tensors["train"], num_train, "num_train"),
        test=head_rows(tensors["test"], num_test, "num_test"),
        valid=tensors.get("valid"),
        train_labels=head_rows(labels["train"], num_train, "num_train") if "train" in labels else None,
        test_labels=head_rows(labels["test"], num_test, "num_test") if "test" in labels else None,
        support=_support(tensors),
    )


def load_image_folder(path: str | os.PathLike[str], *, seed: int = 0, num_train: int | None = None,
                      num_test: int | None = None) -> Dataset:
    """A :class:`Dataset` from a folder of PNG/JPEG images of one size (see the module docstring).

    Grayscale images give one channel, any colour image makes them all RGB.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> for i in range(5):
        ...     Image.fromarray(np.full((4, 4), 255 * (i % 2), np.uint8)).save(folder / f"{i}.png")
        >>> ds = load_image_folder(folder)
        >>> ds.train.shape, ds.support
        (torch.Size([4, 1, 4, 4]), 'binary')
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"data: no folder at {str(folder)!r}")
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    labelled = not files and classes
    if labelled:
        files = [f for c in classes for f in sorted((folder / c).iterdir())
                 if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ValueError(f"data: {str(folder)!r} holds no {'/'.join(IMAGE_SUFFIXES)} images, "
                         "directly or in one sub-folder per class")
    images = []
    for file in files:
        try:
            with Image.open(file) as image:
                images.append(image.copy())
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"data: {str(file)!r} is not a readable image ({err})") from err
    mode = "L" if all(im.mode in ("1", "L", "LA", "I;16") for im in images) else "RGB"
    arrays = [np.asarray(im.convert(mode), dtype=np.uint8) for im in images]
    sizes = {a.shape for a in arrays}
    if len(sizes) > 1:
        first = next(f for f, a in zip(files, arrays) if a.shape != arrays[0].shape)
        raise ValueError(f"data: images must share one size; {files[0].name} is "
                         f"{arrays[0].shape[:2]} but {first.name} is {arrays[files.index(first)].shape[:2]}")
    stacked = np.stack(arrays)
    labels = (np.array([classes.index(f.parent.name) for f in files], dtype=np.int64)
              if labelled else np.zeros(len(files), dtype=np.int64))
    order = np.random.default_rng(seed).permutation(len(files))
    held = max(1, int(round(_TEST_FRACTION * len(files))))
    if len(files) < 2:
        raise ValueError(f"data: expected at least 2 images to hold one out for testing, got {len(files)}")
    tensors = {"train": _as_examples(folder.name, stacked[order[held:]]),
               "test": _as_examples(folder.name, stacked[order[:held]])}
    split_labels = ({"train": torch.from_numpy(labels[order[held:]]),
                     "test": torch.from_numpy(labels[order[:held]])} if labelled else None)
    return _dataset(str(folder.resolve()), tensors, num_train=num_train, num_test=num_test,
                    labels=split_labels)


def load_torchvision(name: str, *, root: str | os.PathLike[str] | None = None,
                     download: bool = False, num_train: int | None = None,
                     num_test: int | None = None) -> Dataset:
    """``torchvision:NAME``: the train and test splits of ``torchvision.datasets.NAME``."""
    import torchvision.datasets as tv

    from .mnist import default_data_root

    cls_name = name[len(TORCHVISION_PREFIX):] if name.startswith(TORCHVISION_PREFIX) else name
    cls = getattr(tv, cls_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"data: torchvision has no dataset {cls_name!r} (e.g. torchvision:CIFAR10)")
    where = Path(root) if root is not None else default_data_root()
    tensors, labels = {}, {}
    for split, train in (("train", True), ("test", False)):
        try:
            data = cls(str(where), train=train, download=download)
        except TypeError as err:
            raise ValueError(f"data: torchvision.datasets.{cls_name} has no train/test split "
                             f"argument ({err})") from err
        except (RuntimeError, OSError) as err:
            if download:  # allowed to download, and the download failed (offline, say)
                raise FileNotFoundError(
                    f"data: could not download {cls_name} into {str(where)!r} (is the internet "
                    f"reachable?); or put its files under --data-root ({err})") from err
            raise FileNotFoundError(f"data: {cls_name} is not under {str(where)!r}; pass "
                                    f"--download (or --data-root) ({err})") from err
        tensors[split], labels[split] = _torchvision_arrays(cls_name, data)
    return _dataset(f"{TORCHVISION_PREFIX}{cls_name}", tensors, num_train=num_train,
                    num_test=num_test, labels=labels)


def _torchvision_arrays(name: str, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    raw = getattr(data, "data", None)
    if raw is None:
        raise ValueError(f"data: torchvision.datasets.{name} keeps no array of its images (.data)")
    array = raw.numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw)
    targets = getattr(data, "targets", None)
    labels = (torch.as_tensor(np.asarray(targets), dtype=torch.int64) if targets is not None
              else torch.zeros(array.shape[0], dtype=torch.int64))
    return _as_examples(f"torchvision:{name}", array), labels
