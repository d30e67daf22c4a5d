"""The benchmark scripts run end to end on a tiny stand-in for binarized MNIST.

They are measured elsewhere (benchmarks/results); here only their plumbing is checked: that
they train, resume, select, evaluate and write their JSON and Markdown."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ppdgm.recipes import load_trained_model

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


@pytest.mark.parametrize("model", ["vae", "iwae", "iwae-2layer", "sbn-vimco", "sbn-wake-sleep"])
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
    best = load_trained_model(run / "best.pt", device="cpu")  # what `ppdgm sample best.pt` does
    expected = {"vae": "VAE", "iwae": "VAE", "iwae-2layer": "DeepVAE"}.get(model, "SigmoidBeliefNet")
    assert type(best).__name__ == expected
    epoch_seconds = {r["epoch"]: r["seconds"]
                     for r in json.loads((run / "history.json").read_text())["epochs"]}
    assert record["train_seconds"] == pytest.approx(sum(epoch_seconds.values()), abs=0.1)
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
    # Inductor's compilation alone takes 15 s; the replayed run checks the compiled rows' plumbing.
    result = gibbs_ess.main(["--draws", "30", "--tune", "5", "--train-epochs", "1", "--points", "2",
                             "--many-chains", "8", "--compiled", "replay", "--out", str(tmp_path)])
    assert len(result["ppdgm"]) == 4 and result["pymc"]["median_ess"] > 0
    assert [row["compile"] for row in result["ppdgm"]] == ["off", "off", "off", "replay"]
    assert len(result["pymc"]["sampling_seconds_before_and_after_ppdgm"]) == 2
    assert json.loads((tmp_path / "gibbs_ess.json").read_text())["draws"] == 30


def test_mode_coverage_script_runs_seeds_and_writes_its_tables(tmp_path):
    mode_coverage = _load("mode_coverage")
    results, runs = tmp_path / "results", tmp_path / "runs"
    argv = ["--data", "ring8,grid25", "--models", "vae,gan-pack2", "--seeds", "2",
            "--steps", "2", "--num-train", "200", "--num-samples", "50", "--out", str(runs),
            "--results", str(results)]
    assert mode_coverage.main(argv) == 0
    record = json.loads((results / "mode_coverage.json").read_text())
    assert record["seeds"] == [0, 1] and record["steps"] == 2 and record["threads"] == 1
    assert record["command"].startswith("python benchmarks/mode_coverage.py --data ring8,grid25")
    for data, k in (("ring8", 8), ("grid25", 25)):
        for model in ("vae", "gan-pack2"):
            s = record["results"][data][model]
            assert s["num_modes"] == k and s["steps"] == 2 and len(s["per_seed"]) == 2
            assert 0 <= s["modes_captured"]["mean"] <= k and s["modes_captured"]["stderr"] >= 0
            assert s["train_seconds"]["mean"] > 0
        assert (runs / data / "seed0" / "compare.png").exists()  # the first seed's figure
        assert not (runs / data / "seed1" / "compare.png").exists()
    assert record["results"]["grid25"]["gan-pack2"]["batch_size"] == 200
    table = (results / "mode_coverage.md").read_text()
    assert "## grid25: target 25/25 modes with >= 95 % high-quality samples" in table
    assert "| *PacGAN paper: PacGAN4* | 24.8 | 93.6 % |" in table and "Command: `python" in table
    # Seeds already run with the same settings are read back, not retrained.
    before = (runs / "ring8" / "seed1" / "gan-pack2" / "checkpoint.pt").stat().st_mtime_ns
    assert mode_coverage.main([argv[0], "ring8", *argv[2:]]) == 0
    assert (runs / "ring8" / "seed1" / "gan-pack2" / "checkpoint.pt").stat().st_mtime_ns == before
    assert list(json.loads((results / "mode_coverage.json").read_text())["results"]) == ["ring8"]
    # A model added later is trained alone; the others are read back and stay in compare.json.
    before = (runs / "ring8" / "seed0" / "vae" / "checkpoint.pt").stat().st_mtime_ns
    assert mode_coverage.main([argv[0], "ring8", "--models", "vae,diffusion", *argv[4:]]) == 0
    assert (runs / "ring8" / "seed0" / "vae" / "checkpoint.pt").stat().st_mtime_ns == before
    seed0 = json.loads((runs / "ring8" / "seed0" / "compare.json").read_text())
    assert list(seed0["models"]) == ["vae", "gan-pack2", "diffusion"]
    record = json.loads((results / "mode_coverage.json").read_text())
    assert list(record["results"]["ring8"]) == ["vae", "diffusion"]


@pytest.mark.parametrize("part", ["speed", "overhead", "bound"])
def test_diffusion_script_runs_each_part(tmp_path, part):
    diffusion = _load("diffusion")
    argv = [part, "--timesteps", "30", "--epochs", "2", "--num-train", "64", "--num-samples", "40",
            "--repeats", "2", "--ddim-steps", "5", "--results", str(tmp_path), "--runs", str(tmp_path)]
    if part != "speed":
        argv += ["--channels", "8", "--workload", "unet", "--batch-size", "32"]
    assert diffusion.main(argv) == 0
    name = f"diffusion_{part}" + ("_unet" if part == "overhead" else "")
    record = json.loads((tmp_path / f"{name}.json").read_text())
    assert record["command"].startswith(f"python benchmarks/diffusion.py {part}")
    if part == "speed":
        assert len(record["seconds"]["ddpm"]) == 2 and record["speedup"] > 1
        assert record["mode_coverage"]["ddim5"]["num_samples"] == 40
    elif part == "overhead":
        assert len(record["epoch_seconds"]["pytorch"]) == 2 and record["ratio_ppdgm_over_pytorch"] > 0
    else:
        assert record["levels"] == 17 and record["bound"]["bits_per_dim"] > 0
    assert (tmp_path / f"{name}.md").read_text().startswith("|")


def test_gpu_script_gathers_its_parts_on_any_device(tmp_path, tiny_mnist, device):
    gpu = _load("gpu")
    argv = ["--device", str(device), "--quick", "--data-path", str(tiny_mnist), "--chains", "10",
            "--results", str(tmp_path)]
    assert gpu.main(argv) == 0
    record = json.loads((tmp_path / "gpu.json").read_text())
    assert [t["workload"].split()[0] for t in record["training"]] == ["VAE", "diffusion", "diffusion"]
    assert all(t["ratio"] > 0 and t["ppdgm_examples_per_s"] > 0 for t in record["training"])
    assert record["gibbs_sweeps"]["chains"] == 10 and len(record["gibbs_sweeps"]["rows"]) == 4
    assert [c["workload"] for c in record["compile"]] == ["mlp"]
    assert "ppdgm / PyTorch time" in (tmp_path / "gpu.md").read_text()


def test_diffusion_rebound_scores_a_trained_run_under_the_other_variance(tmp_path):
    diffusion = _load("diffusion")
    common = ["--timesteps", "30", "--results", str(tmp_path), "--runs", str(tmp_path)]
    assert diffusion.main(["bound", "--epochs", "1", "--num-train", "64", "--num-samples", "4",
                           "--channels", "8", "--bound-points", "6", *common]) == 0
    ckpt = str(tmp_path / "diffusion-bound-digits" / "checkpoint.pt")
    assert diffusion.main(["rebound", "--checkpoint", ckpt, "--variance", "large",
                           "--bound-points", "6", *common]) == 0
    record = json.loads((tmp_path / "diffusion_rebound_large.json").read_text())
    assert record["trained_variance"] == "small" and record["variance"] == "large"
    assert record["bound"]["num_points"] == 6 and len(record["first_steps_nats"]) == 20


def test_compile_script_times_eager_and_compiled_steps(tmp_path):
    compile_bench = _load("compile")
    argv = ["--workloads", "mlp", "--rounds", "1", "--steps", "2", "--results", str(tmp_path)]
    assert compile_bench.main(argv) == 0
    record = json.loads((tmp_path / "compile.json").read_text())
    (row,) = record["results"]
    assert row["workload"] == "mlp" and row["steps_each"] == 2 and row["speedup"] > 0
    # A real compile, even when an earlier test compiled the same network class in this process.
    assert row["compile_seconds"] * 1000 > 10 * row["median_step_ms"]["compiled"]
    assert (tmp_path / "compile.md").read_text().startswith("| workload")


def test_robustness_script_counts_inputs_and_flips(tmp_path, capsys):
    robustness = _load("robustness")
    assert robustness.main(["--inputs", "200", "--stride", "97", "--known-bad", "1000",
                            "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "robustness.json").read_text())
    bad, flips, known = record["bad_inputs"], record["byte_flips"], record["known_bad"]
    assert bad["inputs"] == 200 == bad["accepted"] + bad["clean_error"] + bad["other_error"] + bad["hang"]
    assert bad["other_error"] == 0 and bad["hang"] == 0, bad["examples"]
    assert flips["flips"] > 100 and flips["refused"] == flips["flips"]
    # every distinct known-bad case drawn at least once, each refused by name
    assert known["total"]["cases"] == 1000 >= known["distinct_cases"]
    assert known["total"]["clean"] == 1000, known["examples"]
    assert all(counts["cases"] > 0 for counts in known["by_kind"].values())
    assert "byte flips" in capsys.readouterr().out


def test_profile_script_splits_a_step_by_layer(tmp_path):
    profile = _load("profile_step")
    assert profile.main(["--steps", "5", "--threads", "1", "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "profile-step.json").read_text())
    engine, hand = record["engine"], record["pytorch"]
    assert "Pyro effect handlers and runtime" in engine["ms_by_layer"]
    assert "Pyro effect handlers and runtime" not in hand["ms_by_layer"]
    assert sum(engine["ms_by_layer"].values()) == pytest.approx(engine["ms_per_step"], rel=0.01)
    assert "| **total** |" in (tmp_path / "profile-step.md").read_text()


def test_sbn_overhead_script_runs_both_sides_on_the_same_draws(tmp_path, tiny_mnist):
    sbn = _load("sbn_overhead")
    assert sbn.main(["--data-path", str(tiny_mnist), "--num-train", "48", "--epochs", "2",
                     "--vimco-k", "3", "--rws-k", "2", "--eval-k", "20", "--eval-points", "4",
                     "--threads", "1", "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "sbn_overhead.json").read_text())
    for objective in ("vimco", "rws"):
        same = record[objective]["same_batch_loss"]
        assert same["ppdgm"] == pytest.approx(same["pytorch"], rel=1e-5)
        assert len(record[objective]["epoch_seconds"]["pytorch"]) == 2
    assert record["evaluation"]["points"] == 4
    assert "| VIMCO k = 3" in (tmp_path / "sbn_overhead.md").read_text()


def test_step_ladder_times_every_rung_on_one_loss(tmp_path):
    ladder = _load("step_ladder")
    assert ladder.main(["--rounds", "2", "--block", "2", "--threads", "1",
                        "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "step-ladder.json").read_text())
    assert set(record["median_ms_per_step"]) == set(ladder.RUNGS)
    assert record["ratio_to_pytorch"]["pytorch"] == 1.0
    losses = record["same_loss_check"]
    assert abs(losses["pyro"] - losses["pytorch"]) <= 1e-4 * abs(losses["pytorch"])
    assert "+ the engine's step" in (tmp_path / "step-ladder.md").read_text()


def test_nvil_script_trains_the_three_objectives_from_one_start(tmp_path):
    nvil = _load("nvil")
    assert nvil.main(["--epochs", "1", "--layers", "4", "--eval-k", "5", "--eval-points", "10",
                      "--threads", "1", "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "nvil-digits-binarized.json").read_text())
    assert list(record["runs"]) == ["nvil", "tracegraph", "wake-sleep"]
    assert all(run["final"]["log_px"] < 0 for run in record["runs"].values())
    assert "TraceGraph_ELBO" in (tmp_path / "nvil-digits-binarized.md").read_text()


def test_ng_jordan_script_writes_its_three_curves(tmp_path):
    ng_jordan = _load("ng_jordan")
    assert ng_jordan.main(["--sizes", "10,20", "--seeds", "2", "--steps", "5",
                           "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "ng-jordan.json").read_text())
    assert list(record["summary"]) == ["binarized digits", "digits in [0, 1]",
                                       "unlabelled digits by EM (binarized)"]
    assert {r["model"] for r in record["summary"]["unlabelled digits by EM (binarized)"]} == {
        "naive Bayes", "naive Bayes + EM", "naive Bayes + EM, weight 0.1"}
    assert (tmp_path / "ng-jordan.png").stat().st_size > 0
    assert "m = 20" in (tmp_path / "ng-jordan.md").read_text()


@pytest.mark.parametrize("arch", ["made", "nade"])
def test_autoregressive_script_selects_by_validation_and_scores_exactly(tmp_path, tiny_mnist, arch):
    script = _load("autoregressive")
    assert script.main(["--arch", arch, "--hidden", "8", "--epochs", "2", "--valid-every", "1",
                        "--batch-size", "40", "--threads", "1", "--data-path", str(tiny_mnist),
                        "--out", str(tmp_path / "run"), "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / f"autoregressive-{arch}-8.json").read_text())
    assert [row["epoch"] for row in record["valid_curve"]] == [1, 2]
    assert record["selected_epoch"] in (1, 2) and record["test_points"] == 30
    assert record["test_nll"] > 0 and (tmp_path / record["samples"]).stat().st_size > 0


def test_deep_vae_script_trains_four_vaes_from_one_seed(tmp_path):
    deep_vae = _load("deep_vae")
    assert deep_vae.main(["--epochs", "1", "--eval-k", "4", "--k", "2", "--threads", "1",
                          "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "deep-vae-digits.json").read_text())
    assert [(r["model"].split(",")[0], r["objective"]) for r in record["rows"]] == [
        ("one layer", "ELBO"), ("one layer", "IWAE(k=2)"),
        ("two layers", "ELBO"), ("two layers", "IWAE(k=2)")]
    assert all(r["test_elbo"] <= r["test_log_px"] + 1.0 for r in record["rows"])


def test_ema_script_measures_both_weights_of_one_run(tmp_path):
    ema = _load("ema")
    assert ema.main(["--epochs", "1", "--num-train", "300", "--num-samples", "50",
                     "--bound-points", "5", "--threads", "1", "--out", str(tmp_path / "runs"),
                     "--results", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "ema.json").read_text())["rows"]
    assert [(r["model"], r["weights"]) for r in rows] == [
        ("diffusion", "last iterate"), ("diffusion", "moving average"),
        ("gan", "last iterate"), ("gan", "moving average")]
    assert rows[0]["steps"] == rows[1]["steps"] and rows[0]["bound_nats"] != rows[1]["bound_nats"]


# Dynamo, compiling the hand loop over a PyroModule denoiser, reads .grad of non-leaf tensors.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_compiled_script_times_every_contender_and_checks_the_loss(tmp_path):
    compiled = _load("compiled")
    result = compiled.main(["--rows", "vae-h64-b16", "--steps", "3", "--rounds", "1",
                            "--threads", "1", "--numpyro", "skip", "--results", str(tmp_path)])
    for row in result["rows"]:
        for column in ("hand_eager_ms", "hand_compiled_ms", "svi_ms", "ppdgm_eager_ms",
                       "ppdgm_replay_ms", "ppdgm_compiled_ms"):
            assert row[column] > 0, (row["workload"], column)
        assert row["numpyro_jit_ms"] is None
        assert row["how_players_ran"]["ppdgm_replay_ms"] == {"svi": "graph"}
        # The hand loss and Pyro's objective on the same batch and draws.
        check = row["loss_check"]
        assert abs(check["hand"] - check["pyro"]) < 1e-3 * abs(check["pyro"])
    assert "| vae-h64-b16 |" in (tmp_path / "compiled.md").read_text()


def test_decoder_likelihood_script_scores_three_decoders_and_reads_them_back(tmp_path, tiny_mnist):
    likelihood = _load("decoder_likelihood")
    argv = ["--data", "binarized-mnist", "--data-path", str(tiny_mnist), "--epochs", "1",
            "--z-dim", "2", "--hidden", "16", "--points", "4", "--valid-points", "3",
            "--steps", "4", "--chains", "2", "--check-points", "2",
            "--runs", str(tmp_path / "runs"), "--results", str(tmp_path)]
    assert likelihood.main(argv) == 0
    rows = json.loads((tmp_path / "decoder-likelihood.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["gan", "vae", "vae-gan"]
    for row in rows:
        assert row["points"] == 4 and row["dims"] == 784 and row["scale"] in (
            0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
        assert row["bdmc_gap"] == pytest.approx(row["bdmc"]["upper"] - row["bdmc"]["lower"], abs=1e-4)
    checkpoint = tmp_path / "runs" / "binarized-mnist-gan" / "checkpoint.pt"
    written = checkpoint.stat().st_mtime_ns
    assert likelihood.main(argv) == 0  # the trained models are read back, not retrained
    assert checkpoint.stat().st_mtime_ns == written
    assert "| VAE-GAN |" in (tmp_path / "decoder-likelihood.md").read_text()


def test_bdmc_gaps_script_sandwiches_three_trained_models(tmp_path):
    gaps = _load("bdmc_gaps")
    assert gaps.main(["--epochs", "1", "--steps", "2,4", "--chains", "2", "--points", "2",
                      "--k", "3", "--results", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "bdmc-gaps.json").read_text())["rows"]
    assert [r["model"].split()[0] for r in rows] == ["VAE", "deep", "SBN"]
    for row in rows:
        assert [s["steps"] for s in row["sandwiches"]] == [2, 4]
        assert all(s["gap"] == pytest.approx(s["upper"] - s["lower"], abs=1e-4)
                   for s in row["sandwiches"])
    assert "| SBN 16-32, VIMCO(k=5) | 2 |" in (tmp_path / "bdmc-gaps.md").read_text()


def test_discrete_samplers_script_times_every_kernel_on_every_target(tmp_path, tiny_mnist):
    samplers = _load("discrete_samplers")
    assert samplers.main(["--chains", "3", "--warmup", "4", "--draws", "8", "--gibbs-warmup", "4",
                          "--gibbs-draws", "8", "--ising-size", "3",
                          "--mixture-points", "5", "--data-path", str(tiny_mnist),
                          "--rbm-flags", "--hidden 4 --epochs 1 --ais-runs 2 --ais-steps 20",
                          "--sbn-flags", "--layers 3 --epochs 1 --eval-k 2",
                          "--repeats", "1", "--runs", str(tmp_path / "runs"),
                          "--compile", "replay", "--pymc", "skip", "--numpyro", "skip",
                          "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "discrete_samplers.json").read_text())
    rows = record["rows"]
    assert [(r["task"], r["sampler"]) for r in rows] == [
        (task, sampler) for task in ("ising", "rbm", "sbn", "mixture")
        for sampler in ("gibbs", "gwg", "dmala")]
    for row in rows:
        assert row["ess_per_s"] > 0 and row["draws"] == 8 and np.isfinite(row["mean_log_joint"])
        assert (row["acceptance_rate"] is None) == (row["sampler"] == "gibbs")
        assert row["compile"] == ("off" if row["sampler"] == "gibbs" else "replay")
    assert record["left_out"] == {"pymc": "skipped", "numpyro": "skipped"}
    table = (tmp_path / "discrete_samplers.md").read_text()
    assert "| ising | dmala (replay) |" in table and "pymc left out: skipped." in table
    assert (tmp_path / "discrete-samplers-rbm.png").stat().st_size > 0


def test_discrete_samplers_reads_a_peers_draws_as_the_pyro_programs_values():
    samplers = _load("discrete_samplers")
    model, args, spec = samplers.mixture(4, seed=0)
    assert spec["task"] == "mixture" and spec["y"].shape == (4,)
    z = np.array([[[0, 1, 2, 4]] * 3] * 2)  # (chains, draws, points), Categorical indices
    values = samplers.as_pyro_draws("mixture", {"z": z})
    assert values["z"].shape == (3, 2, 4, 5)
    assert values["z"].argmax(-1).tolist() == [[[0, 1, 2, 4]] * 2] * 3
    ours = samplers.log_joint(model, args, values)
    locs, y = torch.linspace(-4.0, 4.0, 5), torch.as_tensor(spec["y"])
    exact = (torch.distributions.Normal(locs[torch.tensor([0, 1, 2, 4])], 1.0).log_prob(y).sum()
             + 4 * torch.tensor(0.2).log())
    assert ours.shape == (2, 3) and np.allclose(ours, float(exact), atol=1e-4)


@pytest.mark.parametrize("peer", ["pymc", "numpyro"])
def test_discrete_samplers_peers_sample_the_same_ising_lattice(tmp_path, peer):
    samplers = _load("discrete_samplers")
    if not (BENCHMARKS / f".venv-{peer}" / "bin" / "python").exists():
        pytest.skip(f"{peer}'s environment (benchmarks/.venv-{peer}) is not installed")
    assert samplers.main(["--tasks", "ising", "--samplers", f"gibbs,{peer}", "--chains", "2",
                          "--gibbs-warmup", "2", "--gibbs-draws", "30", "--peer-warmup", "2",
                          "--peer-draws", "30", "--ising-size", "2", "--repeats", "1",
                          f"--{peer}", "use", "--results", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "discrete_samplers.json").read_text())["rows"]
    ours, theirs = rows
    assert theirs["sampler"] == peer and theirs["ess_per_s"] > 0 and theirs["version"]
    # A 2 x 2 lattice: both sample 16 states, so the mean log joint agrees within noise.
    assert abs(ours["mean_log_joint"] - theirs["mean_log_joint"]) < 1.0
