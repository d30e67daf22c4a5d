"""load_dataset's registry and its argument checks."""

from __future__ import annotations

from pathlib import Path

import pytest

import ppdgm.data
from ppdgm.data import DATASETS, Dataset, load_dataset


def test_registry_names_and_exports() -> None:
    assert DATASETS == (
        "digits",
        "digits-binarized",
        "binarized-mnist",
        "mnist",
        "fashion-mnist",
        "ring8",
        "grid25",
        "bars-and-stripes",
    )
    assert set(ppdgm.data.__all__) == {"DATASETS", "Dataset", "load_dataset"}
    assert isinstance(load_dataset("bars-and-stripes"), Dataset)


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "match"),
    [
        (
            "mnist8",
            {},
            ValueError,
            r"name: expected one of 'digits', .*'bars-and-stripes', got 'mnist8'",
        ),
        (3, {}, ValueError, "name: expected one of .* got 3"),
        ("digits", {"num_train": -1}, ValueError, "num_train: expected an int >= 1, got -1"),
        ("digits", {"num_test": 0}, ValueError, "num_test: expected an int >= 1, got 0"),
        ("digits", {"num_train": 10.0}, TypeError, "num_train: expected an int, got float"),
        ("digits", {"seed": -1}, ValueError, "seed: expected an int >= 0, got -1"),
        ("digits", {"seed": 2**32}, ValueError, r"seed: expected an int in \[0, 2\*\*32 - 1\]"),
        ("digits", {"seed": True}, TypeError, "seed: expected an int, got bool"),
        ("mnist", {"download": "yes"}, TypeError, "download: expected a bool, got str"),
        ("digits", {"binarize": 1}, TypeError, "binarize: expected a bool, got int"),
        ("binarized-mnist", {"path": 5}, TypeError, "path: expected a str or os.PathLike"),
        ("mnist", {"root": 5}, TypeError, "root: expected a str or os.PathLike"),
        (
            "digits",
            {"download": True},
            ValueError,
            "download: only used by 'mnist', 'fashion-mnist', got download=True for 'digits'",
        ),
        ("binarized-mnist", {"download": True}, ValueError, "download: only used by"),
        ("ring8", {"root": "/tmp"}, ValueError, "root: only used by 'mnist', 'fashion-mnist'"),
        ("mnist", {"path": "/tmp"}, ValueError, "path: only used by 'binarized-mnist'"),
        (
            "grid25",
            {"binarize": True},
            ValueError,
            "binarize: only used by .*got binarize=True for 'grid25'",
        ),
    ],
)
def test_bad_arguments_are_named(name, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_dataset(name, **kwargs)


def test_binarize_is_a_no_op_on_binary_data() -> None:
    plain = load_dataset("bars-and-stripes")
    assert load_dataset("bars-and-stripes", binarize=True).train.equal(plain.train)


def test_path_objects_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="binarized_mnist_train.amat"):
        load_dataset("binarized-mnist", path=tmp_path)
