"""`fit_gan` and `ppdgm fit gan` end to end, on reduced budgets."""

import json

import pytest
import torch
from pyro.infer import Predictive

from ppdgm.cli import main
from ppdgm.data import load_dataset
from ppdgm.inference import TrainConfig, load_checkpoint
from ppdgm.recipes import fit_gan, load_trained_model, sample_checkpoint


@pytest.fixture(scope="module")
def ring8():
    return load_dataset("ring8", num_train=384, num_test=64)


def _train(tmp_path, **kwargs):
    base = {"epochs": 1, "batch_size": 64, "device": "cpu", "progress": False,
            "out_dir": str(tmp_path / "run"), "lr": 2e-4}
    return TrainConfig(**{**base, **kwargs})


def test_fit_gan_on_ring8_writes_metrics_and_a_working_model(tmp_path, ring8):
    result = fit_gan(ring8, _train(tmp_path, epochs=2), hidden=(16, 16), num_samples=200,
                     critic_steps=3, figures=True)
    m = json.loads(result.files["metrics"].read_text())
    assert m == result.metrics
    # 6 batches per epoch, 12 in all: the discriminator steps on each, the generator on every 3rd.
    assert (m["steps"], m["discriminator_steps"], m["generator_steps"]) == (12, 12, 4)
    assert set(m["final_loss"]) == {"discriminator", "generator"}
    assert all(torch.isfinite(torch.tensor(v)) for v in m["final_loss"].values())
    assert m["mode_coverage"]["num_modes"] == 8 and m["mode_coverage"]["num_samples"] == 200
    for name in ("samples", "loss_curve", "checkpoint"):
        assert result.files[name].stat().st_size > 0, name
    gan = load_trained_model(result.files["checkpoint"], device="cpu")
    assert type(gan).__name__ == "GAN" and gan.config.hidden == (16, 16)
    assert gan.sample(50).shape == (50, 2)
    out = Predictive(gan.model, num_samples=4)(None, num_samples=10)
    assert out["x"].shape == (4, 10, 2)


@pytest.mark.parametrize("loss", ["minimax", "wasserstein-gp", "hinge"])
def test_every_loss_trains_with_packing(tmp_path, ring8, loss):
    m = fit_gan(ring8, _train(tmp_path, max_steps=2), loss=loss, hidden=(8,), pack=2,
                num_samples=20).metrics
    assert m["steps"] == 2 and m["pack"] == 2 and m["loss"] == loss
    assert ("gp_weight" in m) == (loss == "wasserstein-gp")


def test_fit_gan_on_images_with_dcgan(tmp_path):
    ds = load_dataset("digits", num_train=16, num_test=8)
    result = fit_gan(ds, _train(tmp_path, batch_size=8), arch="dcgan", z_dim=4, num_samples=8,
                     figures=True)
    assert result.metrics["z_dim"] == 4 and result.files["samples"].stat().st_size > 0
    assert "mode_coverage" not in result.metrics
    spec = load_checkpoint(result.files["checkpoint"])["model_spec"]
    assert spec["name"] == "gan" and spec["config"]["arch"] == "dcgan"
    grid = sample_checkpoint(result.files["checkpoint"], tmp_path / "grid.png", n=4, device="cpu")
    assert grid.files["samples"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs, error, message", [
    ({"loss": "wgan"}, ValueError, "loss: expected one of"),
    ({"arch": "conv"}, ValueError, "arch: expected one of 'mlp', 'dcgan'"),
    ({"critic_steps": 0}, ValueError, "critic_steps: expected an int >= 1"),
    ({"pack": 5}, ValueError, "pack: .* batch_size=64, pack=5"),
    ({"lr_discriminator": -1.0}, ValueError, "lr_discriminator: expected a positive number"),
    ({"arch": "dcgan"}, ValueError, "x_shape: arch='dcgan' needs"),
])
def test_fit_gan_rejects_bad_arguments(tmp_path, ring8, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit_gan(ring8, _train(tmp_path), **kwargs)


def test_cli_fit_gan_writes_metrics(tmp_path, capsys):
    out = tmp_path / "gan"
    argv = ["fit", "gan", "--data", "ring8", "--loss", "non-saturating", "--critic-steps", "1",
            "--pack", "1", "--z-dim", "2", "--hidden", "16,16", "--epochs", "1",
            "--batch-size", "2000", "--num-samples", "100", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "gan" and metrics["data"] == "ring8" and metrics["epochs"] == 1
    assert metrics["steps"] == 25 and metrics["lr"] == 2e-4  # 50,000 points, the CLI's GAN lr
    assert "Trained a GAN on ring8" in printed and str(out / "metrics.json") in printed
    assert "/8 modes" in printed


def test_cli_fit_gan_bad_input_is_a_clear_error(tmp_path, capsys):
    argv = ["fit", "gan", "--data", "ring8", "--pack", "3", "--batch-size", "64",
            "--out", str(tmp_path / "x"), "--no-progress"]
    assert main(argv) == 2
    assert "pack:" in capsys.readouterr().err


def test_evaluate_and_diagnose_refuse_a_gan(tmp_path, capsys):
    out = tmp_path / "gan"
    assert main(["fit", "gan", "--data", "ring8", "--epochs", "1", "--batch-size", "100",
                 "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    for command in ("evaluate", "diagnose"):
        assert main([command, str(out / "checkpoint.pt"), "--device", "cpu"]) == 2
        assert "a GAN has no likelihood" in capsys.readouterr().err
