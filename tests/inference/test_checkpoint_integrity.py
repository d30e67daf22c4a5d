"""Checkpoints detect every damaged byte, survive a full disk, and clean up after killed runs."""

import errno
import io
import os

import pytest
import torch
from pyro.infer import Trace_ELBO

from ppdgm._files import atomic_write_text
from ppdgm.inference import Engine, TrainConfig
from ppdgm.inference.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ppdgm.models import VAE, VAEConfig


def _small_run_checkpoint(tmp_path):
    vae = VAE(VAEConfig(x_shape=(4,), z_dim=1, hidden=(3,), likelihood="gaussian"))
    cfg = TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False,
                      out_dir=str(tmp_path / "run"))
    Engine(vae.model, vae.guide, Trace_ELBO(), config=cfg).fit(torch.randn(16, 4))
    return tmp_path / "run" / "checkpoint.pt"


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def test_byte_flips_of_a_training_checkpoint_are_all_refused(tmp_path):
    path = _small_run_checkpoint(tmp_path)
    original = path.read_bytes()
    reference = load_checkpoint(path)
    refused = identical = 0
    damaged = tmp_path / "damaged.pt"
    # Every byte of the tag and digest, then every 5th byte of the archive (its zip headers,
    # pickle and tensor data alike), so the sweep stays a unit test's length.
    positions = [*range(64), *range(64, len(original), 5)]
    for position in positions:
        flipped = bytearray(original)
        flipped[position] ^= 0x5A
        damaged.write_bytes(bytes(flipped))
        try:
            state = load_checkpoint(damaged)
        except CheckpointError:
            refused += 1
            continue
        assert _same(state, reference), f"byte {position} changed the contents silently"
        identical += 1
    assert len(positions) > 1000
    assert refused == len(positions)  # the digest covers every byte after the tag, the tag itself


def test_first_format_files_without_a_digest_still_load(tmp_path):
    path = tmp_path / "v1.pt"
    torch.save({"format": "ppdgm.checkpoint", "version": 1, "w": torch.ones(2)}, path)
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(2))


def test_a_version_that_does_not_match_its_container_is_refused(tmp_path):
    path = tmp_path / "lies.pt"
    torch.save({"format": "ppdgm.checkpoint", "version": 2, "w": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match="version 2"):
        load_checkpoint(path)


def test_a_full_disk_says_so_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint({"step": 1}, tmp_path / "c.pt")
    real_fsync = os.fsync

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="no space left to write .*c.pt.*previous version .* intact"):
        save_checkpoint({"step": 2}, path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_stale_temporaries_of_killed_runs_are_removed_at_the_next_save(tmp_path):
    stale = tmp_path / ".c.pt.tmp-999999999"  # no such process
    stale.write_bytes(b"x" * 1000)
    alive = tmp_path / f".c.pt.tmp-{os.getppid()}"  # a live process's write is left alone
    alive.write_bytes(b"y")
    save_checkpoint({"step": 1}, tmp_path / "c.pt")
    assert not stale.exists() and alive.exists()


def test_text_files_are_written_atomically(tmp_path, monkeypatch):
    path = atomic_write_text(tmp_path / "metrics.json", '{"a": 1}')

    def crash(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, '{"a": 2}')
    assert path.read_text() == '{"a": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_load_checkpoint_names_a_non_path_argument():
    with pytest.raises(TypeError, match="path: expected a checkpoint path, got NoneType"):
        load_checkpoint(None)
    with pytest.raises(TypeError, match="path: expected a checkpoint path, got BytesIO"):
        load_checkpoint(io.BytesIO())
