"""The `ppdgm` command end to end, on reduced budgets."""

import json
import os
import signal

import pytest
import torch

from ppdgm.cli import main
from ppdgm.inference import load_checkpoint


def test_demo_writes_its_figures_and_metrics(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--epochs", "2", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for name in ("loss_curve.png", "samples.png", "reconstructions.png", "latents.png", "metrics.json",
                 "checkpoint.pt", "history_epochs.csv"):
        assert (out / name).stat().st_size > 0, name
        if not name.startswith("history"):
            assert str(out / name) in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == "digits-binarized" and metrics["epochs"] == 2
    # An ELBO of 64 binary pixels lies between -64 log 2 (worse than coin flips is possible
    # early on, so allow slack) and 0.
    assert -200 < metrics["test_elbo_nats"]["mean"] < 0
    assert load_checkpoint(out / "checkpoint.pt")["model_spec"]["name"] == "vae"


def test_fit_resume_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["fit", "vae", "--data", "bars-and-stripes", "--batch-size", "10", "--z-dim", "2",
              "--hidden", "16", "--out", str(out), "--no-progress"]
    assert main([*common, "--epochs", "3", "--max-steps", "4"]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["position"]["step"] == 4
    assert main([*common, "--epochs", "3", "--resume"]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["position"]["step"] == 9
    grid = tmp_path / "grid.png"
    assert main(["sample", str(out / "checkpoint.pt"), "--n", "16", "--out", str(grid),
                 "--device", "cpu"]) == 0
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "samples.png").exists()  # figures only with --plots


def test_fit_resume_auto_is_one_command_for_every_launch(tmp_path, capsys):
    out = tmp_path / "run"
    command = ["fit", "vae", "--data", "bars-and-stripes", "--batch-size", "10", "--z-dim", "2",
               "--hidden", "16", "--out", str(out), "--no-progress", "--epochs", "3",
               "--resume", "auto"]
    assert main([*command, "--max-steps", "4"]) == 0  # nothing to resume: a fresh start
    assert load_checkpoint(out / "checkpoint.pt")["position"]["step"] == 4
    assert main(command) == 0  # the same command continues
    assert load_checkpoint(out / "checkpoint.pt")["position"]["step"] == 9
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*command[:-1], "sometimes"])
    assert "argument --resume: expected nothing or 'auto', got 'sometimes'" in capsys.readouterr().err


def test_fit_stopped_by_sigterm_exits_75_and_the_same_command_continues(tmp_path, capsys,
                                                                        monkeypatch):
    from ppdgm.inference.engine.loop import Engine

    step = Engine._step

    def step_then_sigterm(engine, batch, pos):  # a scheduler's SIGTERM arrives during step 5
        step(engine, batch, pos)
        if pos.step == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    out = tmp_path / "run"
    command = ["fit", "vae", "--data", "bars-and-stripes", "--batch-size", "10", "--z-dim", "2",
               "--hidden", "16", "--out", str(out), "--no-progress", "--epochs", "2",
               "--resume", "auto", "--checkpoint-seconds", "3600"]
    with monkeypatch.context() as patched:
        patched.setattr(Engine, "_step", step_then_sigterm)
        assert main(command) == 75
    err = capsys.readouterr().err
    assert f"ppdgm fit: stopped by SIGTERM after step 5; the checkpoint {out}" in err
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["position"]["step"] == 5 and state["train_config"]["checkpoint_seconds"] == 3600
    assert main(command) == 0
    assert load_checkpoint(out / "checkpoint.pt")["position"]["step"] == 6


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "vae", "--data", "binarized-mnist", "--data-path", "/nope.npz"], "/nope.npz"),
        (["fit", "vae", "--device", "tpu"], "device"),
        (["fit", "vae", "--epochs", "0"], "epochs"),
        (["sample", "/nope/checkpoint.pt"], "no checkpoint file"),
        (["evaluate", "/nope/checkpoint.pt"], "no checkpoint file"),
        (["fit", "vae", "--objective", "iwae", "--k", "0"], "k:"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "x")] if argv[0] == "fit" else argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_dataset_is_a_one_line_error_listing_what_is_accepted(tmp_path, capsys):
    assert main(["fit", "vae", "--data", "imagenet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "ppdgm fit: error: name: expected one of 'digits'" in err
    assert "torchvision:NAME" in err and len(err.strip().splitlines()) == 1


def test_sample_refuses_a_checkpoint_without_a_model(tmp_path, capsys):
    from ppdgm.inference import save_checkpoint

    path = save_checkpoint({"params": {"w": torch.zeros(1)}}, tmp_path / "c.pt")
    assert main(["sample", str(path)]) == 2
    assert "does not record which model" in capsys.readouterr().err


def test_fit_with_plots_on_a_small_image_dataset(tmp_path):
    out = tmp_path / "bas"
    assert main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "1", "--batch-size", "10",
                 "--z-dim", "2", "--hidden", "8", "--out", str(out), "--no-progress",
                 "--plots"]) == 0
    for name in ("reconstructions.png", "samples.png", "latents.png", "loss_curve.png"):
        assert (out / name).exists(), name


@pytest.mark.parametrize("objective, k", [("iwae", "4"), ("elbo-analytic", "1"), ("elbo", "3")])
def test_fit_with_each_objective_then_evaluate(tmp_path, capsys, objective, k):
    out = tmp_path / objective
    assert main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "2", "--batch-size", "10",
                 "--z-dim", "2", "--hidden", "8", "--out", str(out), "--no-progress",
                 "--objective", objective, "--k", k, "--activation", "tanh"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["objective"] == objective and metrics["k"] == int(k)
    capsys.readouterr()
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(out / "checkpoint.pt"), "--k", "64", "--device", "cpu",
                 "--out", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "log p(x) per example (nats, K=64)" in printed
    evaluated = json.loads(report.read_text())
    assert evaluated["data"] == "bars-and-stripes" and evaluated["n"] == 30
    # 16 binary pixels: log p(x) lies in [-16 log 2 - slack, 0], and above the ELBO.
    assert -40 < evaluated["elbo"] <= evaluated["log_px"] < 0


def test_evaluate_rejects_data_of_another_shape(tmp_path, capsys):
    out = tmp_path / "bas"
    assert main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "1", "--batch-size", "10",
                 "--z-dim", "2", "--hidden", "8", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoint.pt"), "--data", "digits", "--k", "2"]) == 2
    assert "the checkpoint's model expects (1, 4, 4)" in capsys.readouterr().err


@pytest.mark.parametrize("objective", ["rws", "wake-sleep", "vimco", "nvil"])
def test_fit_sbn_reports_exact_and_estimated_log_likelihood_then_evaluates(tmp_path, capsys, objective):
    out = tmp_path / objective
    assert main(["fit", "sbn", "--data", "bars-and-stripes", "--epochs", "3", "--batch-size", "10",
                 "--layers", "4", "--objective", objective, "--k", "3", "--eval-k", "50",
                 "--out", str(out), "--no-progress", "--plots"]) == 0
    printed = capsys.readouterr().out
    assert "exact log p(x) by enumeration" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["objective"] == objective and metrics["layers"] == [4]
    # An importance-sampled estimate is below the exact value in expectation; 50 draws over
    # 16 latent states leave it close.
    assert metrics["test_log_px"]["mean"] == pytest.approx(metrics["test_log_px_exact"], abs=0.5)
    assert (out / "samples.png").exists()
    assert main(["evaluate", str(out / "checkpoint.pt"), "--k", "20", "--device", "cpu"]) == 0
    assert "log p(x) per example (nats, K=20)" in capsys.readouterr().out


def test_fit_sbn_with_an_autoregressive_recognition_network(tmp_path):
    out = tmp_path / "ar"
    assert main(["fit", "sbn", "--data", "bars-and-stripes", "--epochs", "1", "--batch-size", "10",
                 "--layers", "3", "--autoregressive", "--eval-k", "10", "--out", str(out),
                 "--no-progress"]) == 0
    from ppdgm.inference import load_checkpoint

    assert load_checkpoint(out / "checkpoint.pt")["model_spec"]["config"]["autoregressive"] is True


def test_fit_sbn_refuses_continuous_data(tmp_path, capsys):
    assert main(["fit", "sbn", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "x"),
                 "--no-progress"]) == 2
    assert "models binary data" in capsys.readouterr().err


def test_fit_mixture_by_em_then_evaluate_matches_the_exact_likelihood(tmp_path, capsys):
    out = tmp_path / "mix"
    assert main(["fit", "mixture", "--data", "digits-binarized", "--components", "5",
                 "--iterations", "20", "--out", str(out), "--plots"]) == 0
    assert "EM iterations" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    trace = metrics["log_likelihood_trace"]
    assert all(b >= a - 1e-4 for a, b in zip(trace, trace[1:]))
    assert (out / "components.png").exists()
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(out / "checkpoint.pt"), "--k", "3", "--device", "cpu",
                 "--out", str(report)]) == 0
    # The guide is the exact posterior, so every importance weight is p(x) itself.
    evaluated = json.loads(report.read_text())
    assert evaluated["log_px"] == pytest.approx(metrics["test_log_px_exact"], abs=1e-3)
    assert evaluated["elbo"] == pytest.approx(metrics["test_log_px_exact"], abs=1e-3)


def test_fit_rbm_reports_the_exact_log_likelihood(tmp_path, capsys):
    out = tmp_path / "rbm"
    assert main(["fit", "rbm", "--data", "bars-and-stripes", "--hidden", "4", "--epochs", "3",
                 "--batch-size", "10", "--cd-k", "2", "--persistent", "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "log Z exact" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["objective"] == "pcd-2" and metrics["log_z_method"] == "exact"
    assert metrics["test_log_px"]["mean"] < 0


def test_fit_with_a_compiled_step_gives_the_eager_runs_numbers(tmp_path, capsys):
    metrics = {}
    for mode in ("off", "replay"):
        out = tmp_path / mode
        assert main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "3", "--hidden", "8",
                     "--z-dim", "2", "--batch-size", "10", "--no-progress", "--compile", mode,
                     "--out", str(out)]) == 0
        metrics[mode] = json.loads((out / "metrics.json").read_text())
        assert load_checkpoint(out / "checkpoint.pt")["train_config"]["compile"] == mode
    # From the second epoch (the first is validated eagerly) the steps replay traced graphs.
    assert metrics["replay"]["test_elbo_nats"] == metrics["off"]["test_elbo_nats"]
    with pytest.raises(SystemExit) as stop:
        main(["fit", "vae", "--compile", "fast", "--out", str(tmp_path / "x")])
    assert stop.value.code == 2 and "--compile" in capsys.readouterr().err
