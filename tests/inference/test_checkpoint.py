"""Checkpoint files: atomic writes, safe loading, clear errors."""

import pickle

import pytest
import torch

from ppdgm.inference import CheckpointError, load_checkpoint, save_checkpoint
from ppdgm.inference.checkpoint import capture_rng_state, restore_rng_state


class _Evil:
    def __reduce__(self):
        return (print, ("this ran code",))


def test_round_trip(tmp_path):
    path = save_checkpoint({"w": torch.arange(3.0), "meta": {"epoch": 2}}, tmp_path / "c.pt")
    state = load_checkpoint(path)
    assert torch.equal(state["w"], torch.arange(3.0)) and state["meta"] == {"epoch": 2}


def test_a_crash_during_a_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint({"step": 1}, tmp_path / "c.pt")

    def crash(obj, handle, *args, **kwargs):
        handle.write(b"partial bytes")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_code_in_a_file_is_never_executed(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "ppdgm.checkpoint", "version": 1, "x": _Evil()}, path)
    with pytest.raises(CheckpointError, match="execute code"):
        load_checkpoint(path)
    assert "this ran code" not in capsys.readouterr().out


def test_corrupt_and_foreign_files(tmp_path):
    truncated = tmp_path / "t.pt"
    save_checkpoint({"w": torch.ones(1000)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(truncated)
    foreign = tmp_path / "f.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a ppdgm checkpoint"):
        load_checkpoint(foreign)
    text = tmp_path / "x.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(text)
    raw_pickle = tmp_path / "p.pt"
    raw_pickle.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw_pickle)
    with pytest.raises(FileNotFoundError, match="path"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_round_trips_through_a_file(tmp_path):
    import random

    import numpy as np

    save_checkpoint({"rng": capture_rng_state()}, tmp_path / "r.pt")
    expected = (torch.rand(3), random.random(), np.random.rand())
    restore_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(expected[0], again[0]) and expected[1:] == again[1:]
