"""plot_samples_over_density: one PNG with a panel per model over the true mixture density."""

import pytest
import torch

from ppdgm.data.synthetic import MIXTURES, mixture_centres
from ppdgm.diagnostics import plot_samples_over_density
from ppdgm.inference.coverage import coverage_for_dataset

PNG = b"\x89PNG\r\n\x1a\n"


def _models(device=None):
    centres = mixture_centres("ring8")
    g = torch.Generator().manual_seed(0)
    good = centres[torch.randint(8, (400,), generator=g)] + 0.02 * torch.randn(400, 2, generator=g)
    collapsed = centres[:2].repeat(100, 1) + 0.05 * torch.randn(200, 2, generator=g)
    collapsed[0] = torch.tensor([40.0, 0.0])  # one sample far outside the view
    models = {"VAE": good, "GAN": collapsed}
    return {k: v.to(device) for k, v in models.items()} if device else models


def test_two_models_write_a_png(tmp_path, device):
    models = _models(device)
    coverage = {name: coverage_for_dataset(x, "ring8") for name, x in models.items()}
    path = plot_samples_over_density(models, mixture_centres("ring8"), MIXTURES["ring8"],
                                     tmp_path / "sub" / "ring8.png", title="ring8",
                                     coverage=coverage)
    assert path == tmp_path / "sub" / "ring8.png"
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5_000


def test_without_coverage_and_many_panels(tmp_path):
    centres = mixture_centres("grid25")
    models = {f"m{i}": centres + 0.01 * i for i in range(5)}  # two rows, one empty panel
    path = plot_samples_over_density(models, centres, MIXTURES["grid25"], str(tmp_path / "g.png"))
    assert path.read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"samples_by_model": {}}, ValueError, "samples_by_model: expected at least one model"),
        ({"samples_by_model": [torch.zeros(3, 2)]}, TypeError,
         "samples_by_model: expected a mapping"),
        ({"samples_by_model": {"a": torch.zeros(3, 3)}}, ValueError,
         r"samples_by_model\['a'\]: expected shape \(N, 2\)"),
        ({"samples_by_model": {"a": torch.tensor([[float("nan"), 0.0]])}}, ValueError,
         r"samples_by_model\['a'\]: contains NaN"),
        ({"centres": torch.zeros(3)}, ValueError, "centres: expected 2 dimensions"),
        ({"centres": torch.zeros(3, 3)}, ValueError, r"centres: expected shape \(K, 2\)"),
        ({"std": 0.0}, ValueError, "std: expected a finite float > 0"),
        ({"std": "0.1"}, TypeError, "std: expected a float"),
        ({"coverage": {"b": None}}, ValueError, "coverage: expected one entry per model"),
        ({"coverage": {"a": (1, 2)}}, TypeError, r"coverage\['a'\]: expected a ModeCoverage"),
        ({"coverage": [1]}, TypeError, "coverage: expected a mapping"),
    ],
)
def test_bad_inputs_name_the_argument(tmp_path, change, error, match):
    args = {"samples_by_model": {"a": torch.zeros(3, 2)}, "centres": torch.zeros(2, 2),
            "std": 0.1, "coverage": None}
    args.update(change)
    with pytest.raises(error, match=match):
        plot_samples_over_density(args["samples_by_model"], args["centres"], args["std"],
                                  tmp_path / "x.png", coverage=args["coverage"])
    assert not (tmp_path / "x.png").exists()
