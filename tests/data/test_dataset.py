"""The Dataset container: its checks, its splits and the DataLoader it hands out."""

from __future__ import annotations

import pytest
import torch

from ppdgm.data import Dataset


def _toy(**kwargs: object) -> Dataset:
    base: dict[str, object] = {
        "name": "toy",
        "train": torch.arange(20.0).reshape(10, 2),
        "test": torch.zeros(3, 2),
        "train_labels": torch.arange(10) % 3,
    }
    base.update(kwargs)
    return Dataset(**base)  # type: ignore[arg-type]


def test_event_shape_splits_and_repr() -> None:
    ds = _toy(valid=torch.ones(4, 2))
    assert ds.event_shape == (2,)
    assert ds.splits == ("train", "valid", "test")
    assert torch.equal(ds.split("valid"), torch.ones(4, 2))
    assert "train=(10, 2)+labels" in repr(ds) and "valid=(4, 2)" in repr(ds)


def test_missing_split_and_labels_are_named() -> None:
    ds = _toy()
    with pytest.raises(
        ValueError, match=r"which: dataset 'toy' has no 'valid' split.*'train', 'test'"
    ):
        ds.split("valid")
    with pytest.raises(ValueError, match=r"which: expected one of 'train', 'valid', 'test'"):
        ds.split("training")
    with pytest.raises(ValueError, match=r"which: dataset 'toy' has no labels for the 'test'"):
        ds.labels("test")
    with pytest.raises(ValueError, match="which: dataset 'toy' has no labels"):
        ds.loader("test", with_labels=True)


def test_loader_batches_labels_and_default_shuffle() -> None:
    ds = _toy()
    batches = list(ds.loader(batch_size=4, shuffle=False))
    assert [len(b) for b in batches] == [1, 1, 1]
    assert [b[0].shape for b in batches] == [torch.Size([4, 2])] * 2 + [torch.Size([2, 2])]
    assert torch.equal(torch.cat([b[0] for b in batches]), ds.train)

    x, y = next(iter(ds.loader(batch_size=10, with_labels=True)))
    # Shuffled, but rows and labels stay paired.
    assert torch.equal(y, (x[:, 0] / 2).long() % 3)
    assert not torch.equal(x, ds.train)
    assert ds.loader("train").generator is not None
    assert ds.loader("test").generator is None
    # The default generator is seeded: two loaders give the same order.
    first = [next(iter(ds.loader(batch_size=10)))[0] for _ in range(2)]
    assert torch.equal(first[0], first[1])
    assert len(list(ds.loader(batch_size=4, drop_last=True))) == 2


def test_loader_uses_the_given_generator() -> None:
    ds = _toy()
    orders = [
        next(iter(ds.loader(batch_size=10, generator=torch.Generator().manual_seed(s))))[0]
        for s in (1, 1, 2)
    ]
    assert torch.equal(orders[0], orders[1]) and not torch.equal(orders[0], orders[2])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size: expected an int >= 1, got 0"),
        ({"batch_size": 2.0}, TypeError, "batch_size: expected an int, got float"),
        ({"shuffle": 1}, TypeError, "shuffle: expected a bool or None, got int"),
        ({"generator": 0}, TypeError, "generator: expected a torch.Generator or None, got int"),
        ({"with_labels": "yes"}, TypeError, "with_labels: expected a bool, got str"),
    ],
)
def test_loader_rejects_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        _toy().loader(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": ""}, TypeError, "name: expected a non-empty str"),
        ({"support": "int"}, ValueError, r"support: expected one of 'binary', 'unit', 'real'"),
        ({"train": [[0.0]]}, TypeError, "train: expected a torch.Tensor, got list"),
        ({"train": torch.zeros(3, 2, dtype=torch.long)}, TypeError, "train: expected a floating"),
        ({"train": torch.zeros(3)}, ValueError, r"train: expected shape \(N, \*event_shape\)"),
        ({"train": torch.full((3, 2), float("nan"))}, ValueError, "train: contains NaN"),
        (
            {"test": torch.zeros(3, 3)},
            ValueError,
            r"test: expected shape \(batch, 2\), got \(3, 3\)",
        ),
        ({"support": "unit"}, ValueError, r"train: expected values in \[0, 1\]"),
        (
            {"support": "binary"},
            ValueError,
            r"train: a Bernoulli likelihood needs values in \{0, 1\}",
        ),
        (
            {"train_labels": torch.zeros(9, dtype=torch.long)},
            ValueError,
            "train_labels: expected 10 labels",
        ),
        ({"train_labels": torch.zeros(10)}, TypeError, "train_labels: expected dtype torch.int64"),
        (
            {"valid_labels": torch.zeros(1, dtype=torch.long)},
            ValueError,
            "valid_labels: expected None because its split is None",
        ),
        ({"centres": torch.zeros(4, 3)}, ValueError, r"centres: expected shape \(batch, 2\)"),
        ({"scale": 0.0}, ValueError, "scale: expected a finite float > 0, got 0.0"),
        ({"scale": "1"}, TypeError, "scale: expected a float, got str"),
    ],
)
def test_constructor_rejects_bad_fields(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        _toy(**kwargs)


def test_datasets_compare_by_identity() -> None:
    ds = _toy()
    assert ds == ds and ds != _toy()
    with pytest.raises(AttributeError):
        ds.name = "other"  # type: ignore[misc]
