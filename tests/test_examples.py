"""The example scripts run end to end on a tiny slice of their data."""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dcgan_fashion_mnist_writes_grids_and_results(tmp_path, device, monkeypatch):
    # Reading Fashion-MNIST's 70000 images takes seconds; 64 random images of its shape stand
    # in for them, so the test runs anywhere and fast. The real data is the example's own run.
    import torch

    from ppdgm.data import Dataset

    example = _load_example("dcgan_fashion_mnist")
    asked = {}

    def fake_load(name, *, num_train=None):
        asked.update(name=name, num_train=num_train)
        g = torch.Generator().manual_seed(0)
        return Dataset(name, train=torch.rand(num_train, 1, 28, 28, generator=g),
                       test=torch.rand(8, 1, 28, 28, generator=g), support="unit")

    monkeypatch.setattr(example, "load_dataset", fake_load)
    out = tmp_path / "run"
    argv = ["--num-train", "64", "--epochs", "1", "--batch-size", "32", "--device", str(device),
            "--out", str(out), "--seed", "1"]
    results = example.main(argv)

    assert asked == {"name": "fashion-mnist", "num_train": 64}
    for name in ("samples.png", "real.png", "results.json", "checkpoint.pt", "metrics.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "results.json").read_text()) == results
    assert results["num_train"] == 64 and results["epochs"] == 1
    assert results["steps"] == results["generator_steps"] == 2  # 64 images in batches of 32
    assert sorted(results["final_loss"]) == ["discriminator", "generator"]
    assert results["command"] == "python examples/dcgan_fashion_mnist.py " + shlex.join(argv)
    assert results["wall_seconds"] >= results["train_seconds"] > 0
    # 64 images of 28x28, enlarged x2 by save_image_grid to 56x56, 8 per row, 2-pixel padding:
    # 8 * (56 + 2) + 2 = 466 pixels each way.
    for name in ("samples.png", "real.png"):
        with Image.open(out / name) as image:
            assert image.size == (466, 466), name


# Each example on a budget that runs in seconds: (script, arguments, files it must write,
# a check of its results). The full budgets are the examples' own defaults.
QUICK = {
    "vae_iwae": (["--epochs", "2", "--eval-k", "10"], ["samples_elbo.png", "samples_iwae.png"],
                 lambda r: r["elbo"]["test_log_px"] >= r["elbo"]["test_elbo"]),
    "sbn_bars_and_stripes": (["--epochs", "2"], ["exact_log_likelihood.png"],
                             lambda r: set(r) == {"wake-sleep", "rws", "vimco", "nvil"}),
    "mixture_em": (["--iterations", "4", "--components", "3"], ["components.png", "log_likelihood.png"],
                   lambda r: r["train_log_px"] < 0 and r["iterations"] <= 4),
    "gibbs_user_model": (["--num-samples", "300", "--warmup", "100"], ["trace.png", "rank.png"],
                         lambda r: r["gibbs_max_total_variation"] < 0.1
                         and abs(r["hmc_gibbs_mu_mean"] - r["exact_mu_mean"]) < 0.3),
    "rbm_ais": (["--epochs", "3", "--ais-runs", "20", "--ais-steps", "200"], ["samples.png"],
                lambda r: abs(r["ais_log_z"] - r["exact_log_z"]) < 0.5),
    "vaegan_ring8": (["--epochs", "1", "--num-train", "512", "--num-samples", "200"], ["samples.png"],
                     lambda r: 0 <= r["modes_captured"] <= 8),
    "diffusion_ring8": (["--epochs", "1", "--num-train", "512", "--timesteps", "20", "--ddim-steps",
                         "5", "--num-samples", "100"], ["samples.png"],
                        lambda r: r["bound_nats"] > 0),
    "arviz_diagnostics": (["--epochs", "1", "--num-data", "3", "--draws", "30"],
                          ["guide.nc", "gibbs.nc", "guide_trace.png", "gibbs_rank.png"],
                          lambda r: len(r["pareto_k"]) == 3 and r["gibbs_max_r_hat"] < 1.2),
}


@pytest.mark.parametrize("name", list(QUICK))
def test_every_example_runs_on_a_small_budget(name, tmp_path):
    argv, files, check = QUICK[name]
    results = _load_example(name).main([*argv, "--out", str(tmp_path)])
    for file in ["results.json", *files]:
        assert (tmp_path / file).stat().st_size > 0, file
    assert check(results), results


def test_every_example_is_short_and_runs_by_the_tests():
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    assert set(scripts) == set(QUICK) | {"dcgan_fashion_mnist"}
    for script in scripts:
        assert len((EXAMPLES / f"{script}.py").read_text().splitlines()) < 200, script
