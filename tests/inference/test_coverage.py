"""Mode coverage on constructed samples whose answers are known by hand."""

import math

import pytest
import torch

from ppdgm.data.synthetic import MIXTURES, mixture_centres
from ppdgm.inference import evaluate
from ppdgm.inference.coverage import (
    ModeCoverage,
    coverage_for_dataset,
    mode_coverage,
    summarize_coverage,
)

GRID = mixture_centres("grid25")
GRID_STD = MIXTURES["grid25"]


def test_reexported_from_evaluate():
    for name in ("ModeCoverage", "coverage_for_dataset", "mode_coverage", "summarize_coverage"):
        assert name in evaluate.__all__
    assert evaluate.mode_coverage is mode_coverage


def test_one_sample_per_grid_centre_covers_everything(device):
    c = mode_coverage(GRID.to(device), GRID, GRID_STD)
    assert c == ModeCoverage(modes_captured=25, num_modes=25, high_quality=1.0,
                             counts=(1,) * 25, reverse_kl=0.0, num_samples=25)
    assert coverage_for_dataset(GRID.to(device), "grid25") == c


def test_ring8_centres_through_dataset_helper(device):
    ring = mixture_centres("ring8").to(device)
    c = coverage_for_dataset(ring.repeat(3, 1), "ring8")
    assert (c.modes_captured, c.num_modes, c.high_quality, c.reverse_kl) == (8, 8, 1.0, 0.0)
    assert c.counts == (3,) * 8


def test_all_samples_on_one_centre_give_log_k(device):
    samples = GRID[7].expand(40, 2).to(device)
    c = mode_coverage(samples, GRID, GRID_STD)
    assert c.modes_captured == 1 and c.high_quality == 1.0
    assert c.counts[7] == 40 and sum(c.counts) == 40
    assert c.reverse_kl == pytest.approx(math.log(25), abs=1e-12)


def test_samples_far_from_every_centre_capture_nothing():
    samples = torch.tensor([[100.0, 100.0], [-1.0, -1.0], [1.0, 3.0]])  # between grid points
    c = mode_coverage(samples, GRID, GRID_STD)
    assert (c.modes_captured, c.high_quality, c.counts) == (0, 0.0, (0,) * 25)
    assert math.isnan(c.reverse_kl)  # q is undefined without a high-quality sample


def test_threshold_boundary_is_inclusive():
    # float64 samples: the offset 3 * std is then exactly the radius threshold * std.
    centres = GRID.double()
    on = centres[12] + torch.tensor([3 * GRID_STD, 0.0], dtype=torch.float64)
    beyond = centres[12] + torch.tensor([0.0, math.nextafter(3 * GRID_STD, 1.0)],
                                        dtype=torch.float64)
    assert mode_coverage(on[None], centres, GRID_STD).high_quality == 1.0
    assert mode_coverage(beyond[None], centres, GRID_STD).high_quality == 0.0
    # A power-of-two std is exact in float32 too.
    on32 = torch.tensor([[2.75, 0.0]])  # 3 * 0.25 from the centre (2, 0)
    assert mode_coverage(on32, GRID, 0.25).modes_captured == 1
    assert mode_coverage(on32 + torch.tensor([[1e-3, 0.0]]), GRID, 0.25).modes_captured == 0
    # The threshold scales the radius.
    assert mode_coverage(on32, GRID, 0.25, threshold=2.0).high_quality == 0.0


def test_uneven_counts_give_hand_computed_kl():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    # counts (3, 1, 0, 0) high quality, plus one far sample that counts only in the denominator.
    samples = torch.cat([centres[[0, 0, 0, 1]] + 0.05, torch.tensor([[5.0, 5.0]])])
    c = mode_coverage(samples, centres, 0.1)
    assert c.counts == (3, 1, 0, 0) and c.modes_captured == 2
    assert c.high_quality == pytest.approx(4 / 5)
    expected = 0.75 * math.log(0.75 / 0.25) + 0.25 * math.log(0.25 / 0.25)
    assert c.reverse_kl == pytest.approx(expected, abs=1e-12)


def test_weights_enter_the_kl():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = centres[[0, 0, 0, 1]]
    expected = 0.75 * math.log(0.75 / 0.6) + 0.25 * math.log(0.25 / 0.4)
    for weights in ([0.6, 0.4], torch.tensor([3.0, 2.0]), (6, 4)):  # normalized internally
        assert mode_coverage(samples, centres, 0.1, weights=weights).reverse_kl == pytest.approx(
            expected, abs=1e-12)
    assert mode_coverage(samples, centres, 0.1, weights=[0.75, 0.25]).reverse_kl == 0.0
    # A high-quality sample on a mode of weight 0 is infinitely unlikely under p.
    assert mode_coverage(samples, centres, 0.1, weights=[1.0, 0.0]).reverse_kl == math.inf
    # A zero-weight mode that no sample visits contributes 0 log 0 = 0.
    assert mode_coverage(samples[:3], centres, 0.1, weights=[1.0, 0.0]).reverse_kl == 0.0


def test_higher_dimensional_samples_and_chunks(monkeypatch):
    import ppdgm.inference.coverage as coverage

    monkeypatch.setattr(coverage, "_CHUNK", 3)  # several chunks must add up
    centres = torch.eye(3) * 5
    samples = torch.cat([centres.repeat(2, 1), torch.full((1, 3), 50.0)])
    c = mode_coverage(samples, centres, 1.0)
    assert c.counts == (2, 2, 2) and c.num_samples == 7 and c.high_quality == pytest.approx(6 / 7)


def test_summarize_over_seeds_is_hand_computed():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    far = torch.tensor([[5.0, 5.0]])
    runs = [
        mode_coverage(centres, centres, 0.1),  # 2 modes, 100 %, KL 0
        mode_coverage(torch.cat([centres[:1], far]), centres, 0.1),  # 1 mode, 50 %, KL log 2
        mode_coverage(torch.cat([centres, far, far]), centres, 0.1),  # 2 modes, 50 %, KL 0
    ]
    s = summarize_coverage(runs)
    assert set(s) == {"modes_captured", "high_quality_percent", "reverse_kl"}
    assert isinstance(s["modes_captured"], evaluate.Estimate)
    # modes (2, 1, 2): mean 5/3, sample variance 1/3, stderr sqrt(1/3) / sqrt(3) = 1/3.
    assert s["modes_captured"].mean == pytest.approx(5 / 3)
    assert s["modes_captured"].stderr == pytest.approx(1 / 3)
    assert s["modes_captured"].n == 3
    # percent (100, 50, 50): mean 200/3, sample variance 2500/3, stderr 50/3.
    assert s["high_quality_percent"].mean == pytest.approx(200 / 3)
    assert s["high_quality_percent"].stderr == pytest.approx(50 / 3)
    # KL (0, log 2, 0): mean log2 / 3, stderr log2 / 3 (same shape as the modes column).
    assert s["reverse_kl"].mean == pytest.approx(math.log(2) / 3)
    assert s["reverse_kl"].stderr == pytest.approx(math.log(2) / 3)


def test_summarize_single_seed_and_nan_kl():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    one = summarize_coverage([mode_coverage(centres, centres, 0.1)])
    assert one["modes_captured"].mean == 2.0 and math.isnan(one["modes_captured"].stderr)
    dropped = mode_coverage(torch.tensor([[5.0, 5.0]]), centres, 0.1)
    s = summarize_coverage([mode_coverage(centres, centres, 0.1), dropped])
    assert s["modes_captured"].mean == 1.0 and math.isnan(s["reverse_kl"].mean)


def test_as_dict_is_plain_numbers():
    d = mode_coverage(GRID[:2], GRID, GRID_STD).as_dict()
    assert d["modes_captured"] == 2 and d["high_quality_percent"] == 100.0
    assert d["counts"][:3] == [1, 1, 0] and d["num_modes"] == 25


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"samples": [[0.0, 0.0]]}, TypeError, "samples: expected a torch.Tensor"),
        ({"samples": torch.zeros(4)}, ValueError, "samples: expected 2 dimensions"),
        ({"samples": torch.zeros(0, 2)}, ValueError, r"samples: expected shape \(N, D\)"),
        ({"samples": torch.zeros(3, 2, dtype=torch.long)}, TypeError, "samples: .*floating"),
        ({"samples": torch.tensor([[0.0, math.nan]])}, ValueError, "samples: contains NaN"),
        ({"samples": torch.zeros(3, 3)}, ValueError, r"centres: expected shape \(K, 3\)"),
        ({"centres": torch.zeros(0, 2)}, ValueError, "centres: expected shape"),
        ({"centres": torch.tensor([[math.inf, 0.0]])}, ValueError, "centres: contains NaN"),
        ({"std": 0.0}, ValueError, "std: expected a finite float > 0, got 0.0"),
        ({"std": -1.0}, ValueError, "std: expected a finite float > 0"),
        ({"std": math.nan}, ValueError, "std: expected a finite float > 0"),
        ({"std": torch.tensor(0.1)}, TypeError, "std: expected a float"),
        ({"std": True}, TypeError, "std: expected a float, got bool"),
        ({"threshold": 0}, ValueError, "threshold: expected a finite float > 0"),
        ({"weights": [1.0]}, ValueError, r"weights: expected shape \(2,\)"),
        ({"weights": torch.ones(2, 1)}, ValueError, r"weights: expected shape \(2,\)"),
        ({"weights": [1.0, -1.0]}, ValueError, "weights: expected finite values >= 0"),
        ({"weights": [0.0, 0.0]}, ValueError, "weights: .*positive sum"),
        ({"weights": "ab"}, TypeError, "weights: expected a tensor or sequence"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, error, match):
    args = {"samples": torch.zeros(3, 2), "centres": torch.tensor([[0.0, 0.0], [1.0, 1.0]]),
            "std": 0.1}
    args.update(kwargs)
    std = args.pop("std")
    with pytest.raises(error, match=match):
        mode_coverage(args.pop("samples"), args.pop("centres"), std, **args)


def test_bad_dataset_and_summary_inputs():
    with pytest.raises(ValueError, match="name: expected one of 'ring8', 'grid25'"):
        coverage_for_dataset(GRID, "mnist")
    with pytest.raises(ValueError, match="results: expected a non-empty sequence"):
        summarize_coverage([])
    c = mode_coverage(GRID, GRID, GRID_STD)
    with pytest.raises(ValueError, match="results: expected a non-empty sequence"):
        summarize_coverage(c)
    with pytest.raises(TypeError, match=r"results\[1\]: expected a ModeCoverage"):
        summarize_coverage([c, {"modes_captured": 3}])
    with pytest.raises(ValueError, match=r"results: expected the same number of modes.*\[8, 25\]"):
        summarize_coverage([c, coverage_for_dataset(mixture_centres("ring8"), "ring8")])
