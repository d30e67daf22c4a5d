"""scikit-learn's 8x8 digits, scaled and binarized."""

from __future__ import annotations

import pytest
import torch

from ppdgm.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_shapes_range_labels_and_support(digits) -> None:
    assert digits.name == "digits" and digits.support == "unit"
    assert digits.train.shape == (1500, 1, 8, 8) and digits.test.shape == (297, 1, 8, 8)
    assert digits.valid is None and digits.event_shape == (1, 8, 8)
    assert digits.train.dtype == torch.float32
    both = torch.cat([digits.train, digits.test])
    assert both.min() == 0.0 and both.max() == 1.0
    # The raw pixels are integers 0..16.
    assert torch.equal(both * 16, (both * 16).round())
    assert digits.train_labels.dtype == torch.int64
    assert set(digits.train_labels.tolist()) == set(range(10))


def test_split_is_stratified_and_seeded(digits) -> None:
    # Stratification keeps each class's share of the test set close to its share overall.
    shares = torch.bincount(digits.test_labels, minlength=10) / 297
    overall = torch.bincount(torch.cat([digits.train_labels, digits.test_labels])) / 1797
    assert (shares - overall).abs().max() < 0.01
    again = load_dataset("digits", seed=0)
    assert torch.equal(again.train, digits.train) and torch.equal(
        again.test_labels, digits.test_labels
    )
    other = load_dataset("digits", seed=1)
    assert not torch.equal(other.train, digits.train)


def test_binarized_variant_thresholds_the_same_split(digits) -> None:
    binary = load_dataset("digits-binarized")
    assert binary.name == "digits-binarized" and binary.support == "binary"
    assert set(binary.train.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(binary.train, (digits.train > 0.5).float())
    assert torch.equal(binary.test_labels, digits.test_labels)
    # binarize=True on "digits" is the same thing.
    assert torch.equal(load_dataset("digits", binarize=True).test, binary.test)


def test_num_train_and_num_test_keep_the_first_rows(digits) -> None:
    small = load_dataset("digits", num_train=100, num_test=7)
    assert torch.equal(small.train, digits.train[:100]) and small.test_labels.shape == (7,)
    with pytest.raises(ValueError, match="num_train: expected at most 1500 .*, got 1501"):
        load_dataset("digits", num_train=1501)


def test_loader_batches(digits) -> None:
    x, y = next(iter(digits.loader(batch_size=64, with_labels=True)))
    assert x.shape == (64, 1, 8, 8) and y.shape == (64,)
