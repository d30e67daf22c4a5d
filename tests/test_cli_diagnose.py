"""`ppdgm diagnose` on a tiny VAE checkpoint trained in the test."""

import json

import arviz as az
import numpy as np
import pytest

from ppdgm.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    assert main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "1", "--batch-size", "10",
                 "--z-dim", "2", "--hidden", "8", "--out", str(out), "--no-progress"]) == 0
    return out / "checkpoint.pt"


def test_diagnose_prints_the_summary_and_khat_and_writes_its_files(checkpoint, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "diag"
    assert main(["diagnose", str(checkpoint), "--num-data", "3", "--num-samples", "40",
                 "--chains", "2", "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "on 3 points of bars-and-stripes/test (2 chains x 40 draws each)" in printed
    for column in ("mean", "sd", "ess_bulk", "ess_tail", "r_hat", "z[0, 0]"):
        assert column in printed, column
    assert "PSIS k-hat of the importance weights per data point: max" in printed
    for name in ("trace.png", "rank.png", "pair.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
        assert str(out / name) in printed
    idata = az.from_netcdf(str(out / "inference_data.nc"))
    assert idata.posterior["z"].shape == (2, 40, 3, 2)
    assert np.shape(idata.sample_stats.attrs["pareto_k"]) == (3,)
    report = json.loads((out / "diagnose.json").read_text())
    assert report["data"] == "bars-and-stripes" and report["num_data"] == 3
    assert report["pareto_k"] == pytest.approx(list(idata.sample_stats.attrs["pareto_k"]))
    assert report["pareto_k_good"] + report["pareto_k_ok"] + report["pareto_k_bad"] == 3
    assert len(report["importance_log_px"]) == 3
    assert all(-40 < v < 0 for v in report["importance_log_px"])  # 16 binary pixels
    assert sorted(report["summary"]) == ["z[0, 0]", "z[0, 1]", "z[1, 0]", "z[1, 1]"]
    assert (out / "summary.csv").read_text().splitlines()[0].split(",")[1:] == [
        "mean", "sd", "ess_bulk", "ess_tail", "r_hat"]


def test_diagnose_writes_beside_the_checkpoint_by_default(checkpoint, capsys):
    assert main(["diagnose", str(checkpoint), "--num-data", "1", "--num-samples", "30",
                 "--chains", "1", "--elements", "1", "--device", "cpu"]) == 0
    folder = checkpoint.parent / "diagnose"
    assert (folder / "inference_data.nc").exists() and (folder / "trace.png").exists()
    assert not (folder / "pair.png").exists()  # one element: no pairs


@pytest.mark.parametrize("argv, message", [
    (["--num-data", "0"], "num_data:"),
    (["--num-data", "1000"], "num_data: the test split of 'bars-and-stripes' has"),
    (["--chains", "0"], "chains:"),
    (["--data", "digits"], "the checkpoint's model expects (1, 4, 4)"),
])
def test_bad_input_is_a_clear_error(checkpoint, tmp_path, capsys, argv, message):
    assert main(["diagnose", str(checkpoint), "--device", "cpu", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_checkpoint_is_a_clear_error(capsys):
    assert main(["diagnose", "/nope/checkpoint.pt"]) == 2
    assert "no checkpoint file" in capsys.readouterr().err


def test_diagnose_measures_the_amortization_gap(checkpoint, tmp_path, capsys):
    out = tmp_path / "gap"
    assert main(["diagnose", str(checkpoint), "--num-data", "2", "--num-samples", "30", "--chains", "2",
                 "--device", "cpu", "--out", str(out), "--amortization", "1"]) == 0
    printed = capsys.readouterr().out
    assert "Encoder against NUTS on the true posterior" in printed and "point 0: log p(x)" in printed
    gap = json.loads((out / "diagnose.json").read_text())["amortization"]
    assert len(gap["log_px"]) == 1
    assert gap["inference_gap"][0] == pytest.approx(gap["approximation_gap"][0] + gap["amortization_gap"][0],
                                                    abs=1e-3)
    assert (out / "amortization_gap.png").read_bytes()[:8] == PNG


def test_diagnose_calibrates_the_guide_by_simulation(checkpoint, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "diag"
    assert main(["diagnose", str(checkpoint), "--num-data", "2", "--num-samples", "20",
                 "--chains", "1", "--device", "cpu", "--calibration", "40", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Simulation-based calibration of the guide (40 simulated points" in printed
    report = json.loads((out / "diagnose.json").read_text())["calibration"]
    assert report["num_simulations"] == 40 and report["num_draws"] == 99
    assert set(report["sites"]) == {"z", "log_joint"}
    assert report["sites"]["z"]["coordinates"] == 2
    for site, verdict in report["sites"].items():
        assert verdict["calibrated"] == (verdict["p_value"] > 0.05), site
        word = "calibrated" if verdict["calibrated"] else "NOT calibrated"
        assert f"  {site} ({verdict['coordinates']} coordinate(s)): {word}" in printed
    assert (out / "calibration.png").read_bytes()[:8] == PNG


# gwg reaches the command through the same code as dmala (a gradient kernel with an acceptance).
@pytest.mark.parametrize("sampler", ["gibbs", "dmala"])
def test_diagnose_draws_an_sbn_posterior_by_a_kernel(sampler, tmp_path, capsys):
    run, out = tmp_path / "sbn", tmp_path / "diag"
    assert main(["fit", "sbn", "--data", "bars-and-stripes", "--epochs", "1", "--layers", "4,2",
                 "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["diagnose", str(run / "checkpoint.pt"), "--sampler", sampler, "--num-data", "2",
                 "--num-samples", "20", "--chains", "3", "--device", "cpu", "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"by {sampler} (3 chains x 20 draws after 20 warm-up steps each)" in printed
    assert "flip rate per step: z1 " in printed and "PSIS" not in printed
    idata = az.from_netcdf(str(out / "inference_data.nc"))
    assert idata.posterior["z1"].shape == (3, 20, 2, 4)  # chains, draws, points, top units
    report = json.loads((out / "diagnose.json").read_text())
    assert report["sampler"] == sampler and set(report["flip_rate"]) == {"z1", "z2"}
    assert (report["acceptance_rate"] is None) == (sampler == "gibbs")


def test_diagnose_by_a_kernel_refuses_continuous_latents_in_one_line(checkpoint, tmp_path, capsys):
    capsys.readouterr()
    assert main(["diagnose", str(checkpoint), "--sampler", "gwg", "--device", "cpu",
                 "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no enumerable support" in err, err
