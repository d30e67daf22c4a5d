"""Every command on every family, and the command line's one error boundary.

Each family is fitted on a tiny budget, then sampled, evaluated and diagnosed. A command either
works or refuses in one line that says why; no invocation prints a traceback.
"""

import json

import pytest

from ppdgm.cli import build_parser, main
from ppdgm.recipes import RECIPES

# family -> (fit flags, commands that work; the others must refuse in one line)
FAMILIES = {
    "vae": (["--data", "bars-and-stripes", "--epochs", "1", "--hidden", "8", "--z-dim", "2"],
            {"sample", "evaluate", "bounds", "diagnose"}),
    "sbn": (["--data", "bars-and-stripes", "--epochs", "1", "--layers", "3"],
            {"sample", "evaluate", "bounds", "diagnose"}),
    "rbm": (["--data", "bars-and-stripes", "--epochs", "1", "--hidden", "4"], {"sample"}),
    "mixture": (["--data", "bars-and-stripes", "--iterations", "2", "--components", "2"],
                {"sample", "evaluate", "bounds", "diagnose"}),
    "gan": (["--data", "ring8", "--epochs", "1", "--max-steps", "3", "--num-samples", "50"],
            {"sample"}),
    "vae-gan": (["--data", "ring8", "--epochs", "1", "--max-steps", "3", "--num-samples", "50"],
                {"sample"}),
    "diffusion": (["--data", "ring8", "--epochs", "1", "--max-steps", "3", "--timesteps", "10",
                   "--num-samples", "50", "--bound-points", "20"], {"sample", "evaluate"}),
    "autoregressive": (["--data", "bars-and-stripes", "--epochs", "1", "--hidden", "8"],
                       {"sample", "evaluate"}),
}
COMMANDS = {
    "sample": lambda ckpt, out: ["sample", ckpt, "--n", "4", "--out", f"{out}/s.png"],
    "evaluate": lambda ckpt, out: ["evaluate", ckpt, "--k", "5", "--batch-size", "50"],
    "bounds": lambda ckpt, out: ["evaluate", ckpt, "--k", "5", "--bounds", "3",
                                 "--out", f"{out}/bounds.json"],
    "diagnose": lambda ckpt, out: ["diagnose", ckpt, "--num-data", "2", "--num-samples", "30",
                                   "--chains", "2", "--out", f"{out}/diagnose"],
}


def test_every_recipe_is_a_fit_command_and_is_tested_here():
    assert set(FAMILIES) == set(RECIPES)
    fit = next(a for a in build_parser()._subparsers._group_actions[0].choices.items()
               if a[0] == "fit")[1]
    assert set(fit._subparsers._group_actions[0].choices) == set(RECIPES)


def _one_line_error(err: str, command: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"ppdgm {command}: error: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_command_works_or_refuses_in_one_line(family, tmp_path, capsys):
    flags, working = FAMILIES[family]
    out = tmp_path / family
    progress = [] if family == "mixture" else ["--no-progress"]
    assert main(["fit", family, *flags, *progress, "--out", str(out)]) == 0
    capsys.readouterr()
    checkpoint = str(out / "checkpoint.pt")
    for command, argv in COMMANDS.items():
        status = main([*argv(checkpoint, str(out)), "--device", "cpu"])
        err = capsys.readouterr().err
        if command in working:
            assert status == 0, (command, err)
        else:
            assert status == 2, (command, err)
            _one_line_error(err, "evaluate" if command == "bounds" else command)
    assert (out / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if "bounds" in working:
        bounds = json.loads((out / "bounds.json").read_text())["bounds"]
        assert bounds["units"] == 16 and bounds["num_steps"] == 3 and bounds["per_point"]


FIT = ["fit", "vae", "--data", "bars-and-stripes", "--hidden", "8", "--z-dim", "2", "--no-progress"]


def test_an_out_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    assert main([*FIT, "--out", str(taken)]) == 2
    _one_line_error(capsys.readouterr().err, "fit")
    assert main(["sample", "missing.pt", "--out", str(tmp_path)]) == 2  # a folder where a file goes
    _one_line_error(capsys.readouterr().err, "sample")


@pytest.mark.filterwarnings("ignore:Encountered NaN")  # Pyro warns as the loss diverges
def test_a_diverging_run_and_distributed_without_torchrun_end_in_one_line(tmp_path, capsys,
                                                                          monkeypatch):
    assert main([*FIT, "--lr", "1e30", "--epochs", "3", "--out", str(tmp_path / "nan")]) == 2
    err = capsys.readouterr().err
    assert "ppdgm fit: error: objective Trace_ELBO returned nan" in err and "Traceback" not in err
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert main([*FIT, "--distributed", "--out", str(tmp_path / "ddp")]) == 2
    _one_line_error(capsys.readouterr().err, "fit")


def test_a_corrupt_array_file_is_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip archive")
    argv = ["fit", "sbn", "--data", "binarized-mnist", "--data-path", str(broken), "--epochs", "1",
            "--no-progress", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    _one_line_error(capsys.readouterr().err, "fit")


def test_ctrl_c_says_how_to_continue(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main([*FIT, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ppdgm.recipes.vae.fit_vae", interrupted)
    assert main([*FIT, "--epochs", "2", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted; the last checkpoint is in" in err and "--resume" in err


def test_an_internal_error_is_one_line_unless_debugging(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise AttributeError("something inside broke")

    monkeypatch.setattr("ppdgm.recipes.vae.fit_vae", broken)
    assert main([*FIT, "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "error: AttributeError: something inside broke" in err and "PPDGM_DEBUG=1" in err
    monkeypatch.setenv("PPDGM_DEBUG", "1")
    with pytest.raises(AttributeError):
        main([*FIT, "--out", str(tmp_path / "b")])


def test_sampler_is_chosen_where_a_family_has_a_choice_and_refused_elsewhere(tmp_path, capsys):
    rbm, vae = tmp_path / "rbm", tmp_path / "vae"
    assert main(["fit", "rbm", *FAMILIES["rbm"][0], "--no-progress", "--out", str(rbm)]) == 0
    assert main([*FIT, "--epochs", "1", "--out", str(vae)]) == 0
    capsys.readouterr()
    for sampler in ("gibbs", "gwg", "dmala"):
        assert main(["sample", str(rbm / "checkpoint.pt"), "--sampler", sampler, "--sweeps", "6",
                     "--n", "4", "--out", str(tmp_path / f"{sampler}.png")]) == 0
        assert (tmp_path / f"{sampler}.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["sample", str(rbm / "checkpoint.pt"), "--sampler", "ddim",
                 "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    _one_line_error(err, "sample")
    assert "sampler: expected one of 'gibbs', 'gwg', 'dmala'" in err
    assert main(["sample", str(vae / "checkpoint.pt"), "--sampler", "gwg",
                 "--out", str(tmp_path / "y.png")]) == 2
    err = capsys.readouterr().err
    _one_line_error(err, "sample")
    assert "--sampler: a vae checkpoint has no such sampling option" in err
