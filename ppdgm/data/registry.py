"""``load_dataset``: every dataset by name, behind one set of checked arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._validation import check_positive_int
from .base import Dataset
from .binarized_mnist import load_binarized_mnist
from .digits import load_digits
from .files import (
    TORCHVISION_PREFIX,
    load_array_file,
    load_image_folder,
    load_torchvision,
    looks_like_a_path,
)
from .mnist import load_mnist
from .synthetic import load_bars_and_stripes, load_mixture

__all__ = ["DATASETS", "load_dataset"]

DATASETS: tuple[str, ...] = (
    "digits",
    "digits-binarized",
    "binarized-mnist",
    "mnist",
    "fashion-mnist",
    "ring8",
    "grid25",
    "bars-and-stripes",
)

# The options each dataset reads besides seed/num_train/num_test. Giving one to a dataset that
# would ignore it is an error, so that a typo'd name never silently loads the wrong data.
_OPTIONS: dict[str, frozenset[str]] = {
    "digits": frozenset({"binarize"}),
    "digits-binarized": frozenset({"binarize"}),
    "binarized-mnist": frozenset({"path", "binarize"}),
    "mnist": frozenset({"root", "download", "binarize"}),
    "fashion-mnist": frozenset({"root", "download", "binarize"}),
    "ring8": frozenset(),
    "grid25": frozenset(),
    "bars-and-stripes": frozenset({"binarize"}),
}


def _check_path_like(name: str, value: object) -> None:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"{name}: expected a str or os.PathLike or None, got {type(value).__name__}"
        )


#: The most points a generated split may have (``num_train``/``num_test``).
MAX_POINTS = 10**7


def load_dataset(
    name: str,
    *,
    path: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
    binarize: bool = False,
) -> Dataset:
    """Load a registered dataset (see ``DATASETS``) as a :class:`Dataset` of float32 tensors.

    - ``"digits"``: scikit-learn's 1797 8x8 digits in [0, 1], (N, 1, 8, 8), stratified
      1500/297 split drawn with ``seed``, labels kept. Offline; the library's default.
      ``"digits-binarized"``: the same split with pixels > 0.5 set to 1.
    - ``"binarized-mnist"``: the static binarization (Larochelle & Murray, 2011),
      train/valid/test 50000/10000/10000 of (1, 28, 28) in {0, 1}, read from ``path`` (or
      ``$PPDGM_BINARIZED_MNIST``): an ``.npz`` with keys train/valid/test, or a directory of
      the published ``.amat`` files (text or MATLAB v5).
    - ``"mnist"``, ``"fashion-mnist"``: torchvision's datasets under ``root`` (default
      ``$PPDGM_DATA`` or ``~/.cache/ppdgm/data``); ``download=True`` fetches them. ``root`` may
      also be a plain folder holding the four idx files (``.gz`` or not): they are decompressed
      into ``<default root>/<Class>/raw/`` and read from there, never written into ``root``. With
      ``root=None``, Fashion-MNIST falls back on Debian's ``/usr/share/datasets/fashion-mnist``.
    - ``"ring8"``, ``"grid25"``: 2-D mixtures of 8 (circle of radius 2, std 0.02) and 25
      ({-4, -2, 0, 2, 4}^2, std 0.05) equal-weight Gaussians; ``centres``/``scale`` filled, labels
      are component indices, 50000/10000 points unless ``num_train``/``num_test`` say otherwise.
    - ``"bars-and-stripes"``: the 30 distinct 4x4 patterns, each once in train and in test, or
      ``num_train``/``num_test`` uniform draws; labels are pattern indices.

    ``num_train``/``num_test`` keep the first rows of fixed datasets (the valid split is kept
    whole) and set the sample size of generated ones. ``seed`` drives splits and sampling and is
    unused by datasets with a published split. ``binarize`` thresholds [0, 1] data at 0.5.
    ``path``, ``root``, ``download`` and ``binarize`` raise a ValueError on datasets that have
    no use for them.

    ``name`` may also be the user's own data (:mod:`ppdgm.data.files`): a path to an ``.npz`` or
    ``.npy`` array file or to a folder of PNG/JPEG images (the dataset is then named by the
    absolute path, which checkpoints record), or ``"torchvision:NAME"`` for any torchvision
    dataset class with train/test splits, under ``root`` and fetched with ``download=True``.

    Examples:
        >>> ds = load_dataset("digits")
        >>> ds.train.shape, ds.test.shape, ds.support
        (torch.Size([1500, 1, 8, 8]), torch.Size([297, 1, 8, 8]), 'unit')
        >>> load_dataset("ring8", num_train=100).centres.shape
        torch.Size([8, 2])
    """
    if not isinstance(name, str) or not name:
        raise ValueError(_unknown(name))
    if name not in DATASETS:
        return _load_users_data(name, path=path, root=root, download=download, seed=seed,
                                num_train=num_train, num_test=num_test, binarize=binarize)
    _check_path_like("path", path)
    _check_path_like("root", root)
    for flag, value in (("download", download), ("binarize", binarize)):
        if not isinstance(value, bool):
            raise TypeError(f"{flag}: expected a bool, got {type(value).__name__}")
    check_positive_int("seed", seed, minimum=0)
    for count, value in (("num_train", num_train), ("num_test", num_test)):
        if value is not None:
            # Generated sets are drawn whole; 10^7 points is past any use and fits in memory.
            check_positive_int(count, value, maximum=MAX_POINTS)
    if seed >= 2**32:
        # scikit-learn's random_state (the digits split) takes at most 32 bits.
        raise ValueError(f"seed: expected an int in [0, 2**32 - 1], got {seed}")
    values = {"path": path, "root": root, "download": download, "binarize": binarize}
    defaults = {"path": None, "root": None, "download": False, "binarize": False}
    for option, value in values.items():
        if value is not defaults[option] and option not in _OPTIONS[name]:
            users = [n for n in DATASETS if option in _OPTIONS[n]]
            raise ValueError(
                f"{option}: only used by {', '.join(map(repr, users))}, "
                f"got {option}={value!r} for {name!r}"
            )
    if name in ("digits", "digits-binarized"):
        binarize = binarize or name == "digits-binarized"
        return load_digits(seed=seed, num_train=num_train, num_test=num_test, binarize=binarize)
    if name == "binarized-mnist":
        return load_binarized_mnist(path=path, num_train=num_train, num_test=num_test)
    if name in ("mnist", "fashion-mnist"):
        return load_mnist(
            name,
            root=root,
            download=download,
            num_train=num_train,
            num_test=num_test,
            binarize=binarize,
        )
    if name in ("ring8", "grid25"):
        return load_mixture(name, seed=seed, num_train=num_train, num_test=num_test)
    return load_bars_and_stripes(seed=seed, num_train=num_train, num_test=num_test)


def _load_users_data(name: str, *, path: object, root: object, download: bool, seed: int,
                     num_train: int | None, num_test: int | None, binarize: bool) -> Any:
    check_positive_int("seed", seed, minimum=0)
    if binarize or path is not None:
        option = "binarize" if binarize else "path"
        raise ValueError(f"{option}: not used with the user's own data ({name!r})")
    if name.startswith(TORCHVISION_PREFIX):
        return load_torchvision(name, root=root, download=download, num_train=num_train,
                                num_test=num_test)
    if root is not None or download:
        raise ValueError(f"root: --data-root and --download are for torchvision datasets, not "
                         f"{name!r}")
    if not looks_like_a_path(name):
        raise ValueError(_unknown(name))
    where = Path(name).expanduser()
    if where.is_dir():
        return load_image_folder(where, seed=seed, num_train=num_train, num_test=num_test)
    return load_array_file(where, seed=seed, num_train=num_train, num_test=num_test)


def _unknown(name: object) -> str:
    return (f"name: expected one of {', '.join(map(repr, DATASETS))}, got {name!r} (or a path to "
            "an .npz/.npy file or a folder of images, or torchvision:NAME)")
