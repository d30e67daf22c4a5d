"""Every known-bad input of every kind (benchmarks/_bad_inputs.py) ends in one clean error that
names the argument at fault: none is accepted silently, none reaches a raw traceback."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _bad_inputs import GENERATORS, KINDS, outcome  # noqa: E402


@pytest.mark.parametrize("kind", KINDS)
def test_every_bad_input_of_a_kind_is_refused_naming_its_argument(kind):
    failures = []
    cases = list(GENERATORS[kind]())
    assert len(cases) >= 6
    for case in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result, message = outcome(case)
        if result != "clean":
            failures.append(f"{case.name}: {result} {message[:160]}")
    assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures)


def test_a_large_request_that_fits_is_drawn_in_pieces_and_a_small_one_as_before():
    import torch

    from ppdgm import VAE, VAEConfig
    from ppdgm._memory import MAX_CHUNK

    vae = VAE(VAEConfig(x_shape=(3,), z_dim=2, hidden=(4,)))
    torch.manual_seed(0)
    small = vae.sample(5, mean=False)
    torch.manual_seed(0)
    assert torch.equal(vae.sample.__wrapped__(vae, 5, mean=False), small)  # one call, as before
    big = vae.sample(MAX_CHUNK + 3)
    assert big.shape == (MAX_CHUNK + 3, 3) and bool(((big >= 0) & (big <= 1)).all())


def test_a_sampling_flag_the_checkpoints_family_lacks_is_refused(tmp_path, capsys):
    from ppdgm.cli import main

    out = tmp_path / "run"
    assert main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "1", "--hidden", "8",
                 "--z-dim", "2", "--no-progress", "--device", "cpu", "--out", str(out)]) == 0
    capsys.readouterr()
    code = main(["sample", str(out / "checkpoint.pt"), "--sampler", "ddim", "--device", "cpu",
                 "--out", str(tmp_path / "s.png")])
    err = capsys.readouterr().err
    assert code != 0 and "--sampler: a vae checkpoint has no such sampling option" in err
    assert main(["sample", str(out / "checkpoint.pt"), "--device", "cpu",
                 "--out", str(tmp_path / "s.png")]) == 0
