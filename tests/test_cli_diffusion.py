"""`fit_diffusion`, `ppdgm fit diffusion`, `ppdgm sample --sampler` and `ppdgm evaluate`, end to end."""

import json

import pytest
import torch

from ppdgm.cli import main
from ppdgm.data import load_dataset
from ppdgm.inference import TrainConfig
from ppdgm.inference.sampling import diffusers_available
from ppdgm.models.diffusion import diffusion_config_for, quantization_levels
from ppdgm.recipes import fit_diffusion, load_trained_model


def _train(tmp_path, **kwargs):
    base = {"epochs": 1, "batch_size": 64, "device": "cpu", "progress": False,
            "out_dir": str(tmp_path / "run"), "lr": 1e-3}
    return TrainConfig(**{**base, **kwargs})


def test_fit_diffusion_on_ring8_writes_bound_coverage_and_figures(tmp_path):
    ring8 = load_dataset("ring8", num_train=256, num_test=32)
    result = fit_diffusion(ring8, _train(tmp_path, epochs=2), num_samples=100, figures=True,
                           model_overrides={"timesteps": 50, "hidden": (32, 32)},
                           sampler="ddim", steps=10)
    m = json.loads(result.files["metrics"].read_text())
    assert m == result.metrics and m["steps"] == 8 and m["sampler_steps"] == 10
    assert m["bound"]["num_points"] == 32 and m["mode_coverage"]["num_samples"] == 100
    assert m["levels"] is None and m["denoiser"] == "mlp"
    for name in ("samples", "loss_curve", "reverse_process", "checkpoint"):
        assert result.files[name].stat().st_size > 0, name
    model = load_trained_model(result.files["checkpoint"], device="cpu")
    assert type(model).__name__ == "Diffusion" and model.config.timesteps == 50
    # The data were standardized for the chain; samples come back in the data's units.
    assert model.config.data_scale == pytest.approx(ring8.train.std().item(), rel=1e-4)


def test_images_get_the_unet_and_the_discretized_decoder(tmp_path):
    digits = load_dataset("digits", num_train=32, num_test=8)
    cfg = diffusion_config_for(digits, channels=8, multipliers=(1, 2), timesteps=20, time_dim=16)
    assert (cfg.denoiser, cfg.levels, cfg.data_shift, cfg.data_scale) == ("unet", 17, 0.5, 0.5)
    result = fit_diffusion(digits, _train(tmp_path, batch_size=16), figures=True, num_samples=8,
                           model_overrides={"channels": 8, "multipliers": (1, 2), "timesteps": 20,
                                            "time_dim": 16})
    b = result.metrics["bound"]
    assert b["num_points"] == 8 and b["nats"] > 0  # a discrete NLL bound is positive
    assert b["bits_per_dim"] == pytest.approx(b["nats"] / (64 * 0.6931471805599453), rel=1e-6)
    assert result.files["samples"].stat().st_size > 0
    assert quantization_levels(torch.tensor([0.0, 1.0])) == 2
    assert quantization_levels(torch.tensor([3 / 255, 1.0])) == 256
    assert quantization_levels(torch.tensor([-0.5])) is None


def test_cli_fits_samples_with_either_sampler_and_evaluates_the_bound(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["fit", "diffusion", "--data", "grid25", "--epochs", "1", "--max-steps", "3",
                 "--timesteps", "30", "--hidden", "16,16", "--num-samples", "50",
                 "--bound-points", "20", "--out", str(run), "--device", "cpu", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Trained a diffusion model on grid25" in out and "bits/dim" in out and "/25 modes" in out
    ckpt = str(run / "checkpoint.pt")
    samplers = ["ddpm", "ddim"] + (["dpm-solver++"] if diffusers_available() else [])
    for sampler in samplers:
        png = tmp_path / f"{sampler}.png"
        assert main(["sample", ckpt, "--sampler", sampler, "--n", "30", "--out", str(png),
                     "--device", "cpu"]) == 0
        assert png.stat().st_size > 0
    assert main(["sample", ckpt, "--sampler", "dpm-solvr", "--out", str(tmp_path / "x.png"),
                 "--device", "cpu"]) == 2
    assert "sampler" in capsys.readouterr().err
    assert main(["sample", ckpt, "--sampler", "ddpm", "--steps", "5", "--out",
                 str(tmp_path / "x.png"), "--device", "cpu"]) == 2
    assert "steps: DDPM takes all T = 30" in capsys.readouterr().err
    assert main(["evaluate", ckpt, "--batch-size", "16", "--device", "cpu",
                 "--out", str(tmp_path / "eval.json")]) == 0
    assert "variational bound on -log p(x)" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["estimator"] == "variational bound" and metrics["log_px"] == -metrics["nll"]
    assert main(["diagnose", ckpt, "--device", "cpu", "--out", str(tmp_path / "d")]) == 2
    assert "ppdgm evaluate" in capsys.readouterr().err
