"""`compare_models` and `ppdgm compare` end to end, on tiny budgets (a few steps per model)."""

import dataclasses
import json

import pytest
import torch

from ppdgm.cli import main
from ppdgm.data import load_dataset
from ppdgm.inference import TrainConfig
from ppdgm.recipes.compare import (
    CONTENDERS,
    Contender,
    ContenderRun,
    compare_models,
    format_compare_table,
    get_contender,
    run_fit,
)

TINY = {"num_train": 200, "num_samples": 100, "device": "cpu"}


def test_cli_compare_on_ring8_writes_json_figure_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--data", "ring8", "--models", "vae,gan,gan-pack2", "--epochs", "1",
            "--num-train", "400", "--num-samples", "150", "--seed", "3", "--out", str(out),
            "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "compare.json").read_text())
    assert record["data"] == "ring8" and record["seed"] == 3 and record["num_samples"] == 150
    assert record["num_train"] == 400 and list(record["models"]) == ["vae", "gan", "gan-pack2"]
    for name, row in record["models"].items():
        assert row["num_modes"] == 8 and row["num_samples"] == 150, name
        assert 0 <= row["modes_captured"] <= 8 and 0 <= row["high_quality_percent"] <= 100
        assert row["train_seconds"] > 0 and row["epochs"] == 1
        assert (out / name / "checkpoint.pt").exists()
    # One epoch of 400 points: 4 batches of 100, or 2 of 100 pairs for PacGAN (m = 2).
    assert record["models"]["gan"]["steps"] == 4 and record["models"]["gan-pack2"]["steps"] == 2
    assert record["models"]["gan-pack2"]["batch_size"] == 200
    vae = record["models"]["vae"]
    assert set(vae["extra_samples"]) == {"decoder means"} and len(vae["details"]["obs_scale"]) == 2
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "modes captured" in printed and "high quality" in printed and "reverse KL" in printed
    for name in ("vae", "gan", "gan-pack2"):
        assert any(line.startswith(name + " ") and "/8" in line for line in printed.splitlines())
    assert str(out / "compare.json") in printed and str(out / "compare.png") in printed


def test_unknown_model_is_a_clear_error_before_any_training(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"models: unknown model 'flow'; expected some of 'vae', "
                                         r"'gan', 'gan-pack2'"):
        compare_models("ring8", tmp_path / "a", models=["vae", "flow"], **TINY)
    assert not (tmp_path / "a" / "vae").exists()
    assert main(["compare", "--models", "gan,flow", "--out", str(tmp_path / "b"),
                 "--device", "cpu"]) == 2
    assert "unknown model 'flow'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown model"):
        get_contender("GAN")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"dataset_name": "digits"}, ValueError, "dataset_name: expected one of 'ring8', 'grid25'"),
    ({"models": "gan"}, ValueError, "models: expected a non-empty sequence"),
    ({"models": []}, ValueError, "models: expected a non-empty sequence"),
    ({"models": ["gan", "gan"]}, ValueError, "models: expected distinct names"),
    ({"epochs": {"vae": 1}}, ValueError, r"epochs: models \['vae'\] are not among"),
    ({"max_steps": 0}, ValueError, "max_steps: expected an int >= 1"),
    ({"num_samples": 0}, ValueError, "num_samples: expected an int >= 1"),
    ({"options": {"vae": {}}}, ValueError, r"options: models \['vae'\] are not among"),
    ({"seed": 1.5}, TypeError, "seed: expected an int"),
])
def test_compare_models_rejects_bad_arguments(tmp_path, kwargs, error, message):
    args = {"dataset_name": "ring8", "models": ["gan"], **TINY, **kwargs}
    with pytest.raises(error, match=message):
        compare_models(out_dir=tmp_path, **args)


def test_per_model_budgets_options_and_a_registered_contender(tmp_path, monkeypatch):
    calls = []

    def fake(dataset, train, num_samples, *, spread=0.0):
        calls.append((train.epochs, train.max_steps, train.seed, train.lr))
        k = dataset.centres.shape[0]
        centres = dataset.centres.repeat(num_samples // k + 1, 1)[:num_samples]
        return ContenderRun(centres + spread, train_seconds=0.5, steps=7)

    monkeypatch.setitem(CONTENDERS, "exact", Contender(fake, "exact", lr=0.1, batch_size=8, epochs=9))
    result = compare_models("grid25", tmp_path, models=["exact", "gan"], **TINY, seed=5,
                            epochs={"gan": 1}, max_steps={"gan": 1}, figure=False,
                            options={"exact": {"spread": 0.01}, "gan": {"hidden": (8,)}})
    assert calls == [(9, None, 5, 0.1)]  # the contender's own epochs and lr, the common seed
    exact, gan = result.metrics["models"]["exact"], result.metrics["models"]["gan"]
    assert exact["modes_captured"] == 25 and exact["high_quality_percent"] == 100.0
    assert exact["reverse_kl"] == pytest.approx(0.0, abs=1e-3) and exact["steps"] == 7
    assert exact["options"] == {"spread": 0.01} and gan["options"] == {"hidden": [8]}
    assert gan["steps"] == 1 and gan["max_steps"] == 1
    assert "figure" not in result.files and (tmp_path / "compare.json").exists()
    table = format_compare_table(result.metrics)
    assert table.splitlines()[0] == "grid25, 100 samples per model"
    assert "25/25" in table and "100.0 %" in table


def test_run_fit_adapts_a_fit_function_and_validates_its_target(tmp_path):
    ds = load_dataset("ring8", num_train=64, num_test=8)
    fit = run_fit("ppdgm.recipes.gan:fit_gan", hidden=(8,), num_samples_kw="num_samples")
    train = TrainConfig(epochs=1, batch_size=32, seed=1, device="cpu", progress=False,
                        out_dir=str(tmp_path))
    first = fit(ds, train, 40, hidden=(4,))  # options override the defaults
    assert first.samples.shape == (40, 2) and first.steps == 2 and first.train_seconds > 0
    assert json.loads((tmp_path / "metrics.json").read_text())["mode_coverage"]["num_samples"] == 40
    # The same seed gives the same model and the same draws.
    again = fit(ds, dataclasses.replace(train, out_dir=str(tmp_path / "again")), 40, hidden=(4,))
    assert torch.equal(first.samples, again.samples)
    with pytest.raises(TypeError, match="target: expected a function or 'module:function'"):
        run_fit("ppdgm.recipes.gan.fit_gan")
