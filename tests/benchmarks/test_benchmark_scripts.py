"""The benchmark scripts run end to end on a tiny stand-in for binarized MNIST.

They are measured elsewhere (benchmarks/results); here only their plumbing is checked: that
they train, resume, select, evaluate and write their JSON and Markdown."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, **{split: (rng.random((n, 784)) < 0.2).astype(np.uint8)
                      for split, n in (("train", 120), ("valid", 40), ("test", 30))})
    return path


@pytest.mark.parametrize("model", ["vae", "iwae", "sbn-vimco", "sbn-wake-sleep"])
def test_nll_script_trains_resumes_and_writes_its_table(tmp_path, tiny_mnist, model):
    nll = _load("nll")
    run, results = tmp_path / "run", tmp_path / "results"
    common = ["--model", model, "--k", "3", "--batch-size", "40", "--data-path", str(tiny_mnist),
              "--out", str(run), "--eval-k", "4", "--valid-every", "1", "--results", str(results),
              "--device", "cpu"]
    assert nll.main([*common, "--epochs", "2"]) == 0
    record = json.loads((results / f"nll-{model}.json").read_text())
    assert record["epochs"] == 2 and record["eval_k"] == 4 and record["selected"]["epoch"] in (1, 2)
    assert record["test_nll_nats"] > 0 and record["command"].startswith("python benchmarks/nll.py")
    assert (run / "best.pt").exists() and len((run / "valid.jsonl").read_text().splitlines()) == 2
    assert nll.main([*common, "--epochs", "3"]) == 0  # resumes at epoch 2
    assert json.loads((results / f"nll-{model}.json").read_text())["epochs"] == 3
    table = (results / "nll.md").read_text()
    assert "| test NLL, nats |" in table and model in table


def test_overhead_script_interleaves_three_loops(tmp_path, tiny_mnist):
    overhead = _load("overhead")
    assert overhead.main(["--epochs", "2", "--data-path", str(tiny_mnist),
                          "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "overhead.json").read_text())
    assert set(record["epoch_seconds"]) == {"pytorch", "pyro_svi", "ppdgm"}
    assert all(len(v) == 2 for v in record["epoch_seconds"].values())
    check = record["same_objective_check"]
    assert check["abs_diff"] < 1e-5 * abs(check["hand_loss"])


def test_rbm_script_times_sweeps_and_evaluates_a_trained_rbm(tmp_path, tiny_mnist):
    rbm = _load("rbm")
    results = tmp_path / "results"
    assert rbm.main(["sweeps", "--hidden", "8", "--chains", "4", "--sweeps", "5", "--repeats", "2",
                     "--results", str(results)]) == 0
    record = json.loads((results / "rbm-sweeps.json").read_text())
    assert [row["way"] for row in record["rows"]][0] == "pytorch loop" and len(record["rows"]) == 4
    assert rbm.main(["nll", "--hidden", "6", "--cd-k", "2", "--epochs", "1", "--batch-size", "40",
                     "--data-path", str(tiny_mnist), "--device", "cpu", "--ais-runs", "4",
                     "--out", str(tmp_path / "run"), "--results", str(results)]) == 0
    record = json.loads((results / "rbm-nll-cd2.json").read_text())
    assert record["log_z_method"] == "exact" and record["test_log_px"]["mean"] < 0


@pytest.mark.skipif(not (BENCHMARKS / ".venv-pymc" / "bin" / "python").exists(),
                    reason="PyMC's environment (benchmarks/.venv-pymc) is not installed")
def test_gibbs_ess_script_compares_with_pymc(tmp_path):
    gibbs_ess = _load("gibbs_ess")
    result = gibbs_ess.main(["--draws", "30", "--tune", "5", "--train-epochs", "1", "--points", "2",
                             "--many-chains", "8", "--out", str(tmp_path)])
    assert len(result["ppdgm"]) == 3 and result["pymc"]["median_ess"] > 0
    assert json.loads((tmp_path / "gibbs_ess.json").read_text())["draws"] == 30
