"""2-D mixtures with known modes and bars-and-stripes: data whose distribution is known."""

from __future__ import annotations

import math

import pytest
import torch

from ppdgm.data import load_dataset
from ppdgm.data.synthetic import bars_and_stripes_patterns, mixture_centres


@pytest.mark.parametrize(("name", "k", "scale"), [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_mixture_components_have_the_stated_centres_and_scale(name: str, k: int, scale: float):
    ds = load_dataset(name, num_train=20000, num_test=500)
    assert ds.support == "real" and ds.event_shape == (2,) and ds.scale == scale
    assert ds.train.shape == (20000, 2) and ds.test.shape == (500, 2)
    assert ds.centres.shape == (k, 2) and torch.equal(ds.centres, mixture_centres(name))
    counts = torch.bincount(ds.train_labels, minlength=k)
    # Equal weights: each count is Binomial(20000, 1/k); 5 standard deviations of slack.
    expected = 20000 / k
    assert (counts - expected).abs().max() < 5 * math.sqrt(expected)
    for j in range(k):
        points = ds.train[ds.train_labels == j]
        # The mean's standard error is scale / sqrt(n) < 0.02 / 25: 0.01 is generous.
        assert torch.allclose(points.mean(0), ds.centres[j], atol=0.01)
        assert points.std(0) == pytest.approx([scale, scale], rel=0.15)
    # Labels name the nearest centre: the components are separated by far more than their scale.
    nearest = torch.cdist(ds.test, ds.centres).argmin(1)
    assert torch.equal(nearest, ds.test_labels)


def test_mixture_geometry() -> None:
    ring = mixture_centres("ring8")
    assert torch.allclose(ring.norm(dim=1), torch.full((8,), 2.0))
    assert torch.allclose(ring[2], torch.tensor([0.0, 2.0]), atol=1e-6)
    grid = mixture_centres("grid25")
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(c) for c in grid.tolist()}) == 25
    with pytest.raises(ValueError, match="name: expected one of 'ring8', 'grid25', got 'ring9'"):
        mixture_centres("ring9")


def test_mixture_defaults_and_seeding() -> None:
    ds = load_dataset("ring8")
    assert ds.train.shape == (50000, 2) and ds.test.shape == (10000, 2)
    assert torch.equal(load_dataset("ring8", num_test=10).train, ds.train)
    assert not torch.equal(load_dataset("ring8", seed=1).train, ds.train)


def _is_bar_or_stripe(image: torch.Tensor) -> bool:
    rows_constant = bool((image == image[:, :1]).all())
    columns_constant = bool((image == image[:1, :]).all())
    return rows_constant or columns_constant


def test_bars_and_stripes_are_the_30_distinct_patterns() -> None:
    ds = load_dataset("bars-and-stripes")
    assert ds.support == "binary" and ds.train.shape == (30, 1, 4, 4)
    assert torch.equal(ds.train, ds.test) and torch.equal(ds.train_labels, torch.arange(30))
    assert len({tuple(x.flatten().tolist()) for x in ds.train}) == 30
    assert all(_is_bar_or_stripe(x[0]) for x in ds.train)
    # Brute force over all 2^16 binary images: exactly 30 are bars or stripes.
    codes = torch.arange(2**16)
    images = ((codes[:, None] >> torch.arange(16)) & 1).reshape(-1, 4, 4).float()
    assert sum(_is_bar_or_stripe(x) for x in images) == 30
    assert bars_and_stripes_patterns(2).shape == (6, 1, 2, 2)
    with pytest.raises(ValueError, match="size: expected an int in"):
        bars_and_stripes_patterns(0)


def test_bars_and_stripes_sampling_is_uniform_and_seeded() -> None:
    ds = load_dataset("bars-and-stripes", num_train=30000, num_test=12, seed=3)
    assert ds.train.shape == (30000, 1, 4, 4) and ds.test.shape == (12, 1, 4, 4)
    assert torch.equal(ds.train, bars_and_stripes_patterns()[ds.train_labels])
    counts = torch.bincount(ds.train_labels, minlength=30)
    assert (counts - 1000).abs().max() < 5 * math.sqrt(1000)
    again = load_dataset("bars-and-stripes", num_train=30000, num_test=12, seed=3)
    assert torch.equal(again.train, ds.train)
    # num_train alone leaves the test split as the 30 patterns.
    assert load_dataset("bars-and-stripes", num_train=5).test.shape == (30, 1, 4, 4)
