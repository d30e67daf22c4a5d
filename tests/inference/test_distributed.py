"""Data-parallel training: two gloo processes launched by torchrun against one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from ppdgm.inference import TrainConfig
from ppdgm.inference.batches import BatchFeed
from ppdgm.inference.checkpoint import load_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")
pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def _run(out: Path, model: str, *extra: str, processes: int = 2,
         log: list[str] | None = None) -> dict[str, torch.Tensor]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if processes == 1:
        cmd = [sys.executable, str(WORKER), model, str(out), *extra]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={processes}", str(WORKER), model, str(out), "--distributed", *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    if log is not None:
        log.append(done.stderr)
    return torch.load(out / "params-rank0.pt", weights_only=True)


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol) for k in a)


def test_two_processes_take_the_steps_of_one_and_a_resumed_run_may_change_their_number(tmp_path):
    one = _run(tmp_path / "one", "regression", processes=1)
    two = _run(tmp_path / "two", "regression")
    _check_a_change_of_processes_keeps_the_global_batch(tmp_path, whole=one)
    assert _close(one, two, atol=1e-5)
    # Both replicas end identical, and rank 0 alone wrote the checkpoint and history.
    rank1 = torch.load(tmp_path / "two" / "params-rank1.pt", weights_only=True)
    assert _close(two, rank1, atol=0)
    assert (tmp_path / "two" / "checkpoint.pt").exists()
    state = load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    assert state["position"]["step"] == 12 and len(state["rng_by_rank"]) == 2
    assert state["world_size"] == 2


def _check_a_change_of_processes_keeps_the_global_batch(tmp_path: Path, whole) -> None:
    # The regression's steps are deterministic: a run that keeps its global batch and data
    # order ends where one process's uninterrupted run does, shrunk (2 -> 1) or grown (1 -> 2).
    log: list[str] = []
    _run(tmp_path / "shrink", "regression", "--max-steps", "5")
    shrunk = _run(tmp_path / "shrink", "regression", "--resume", processes=1, log=log)
    _run(tmp_path / "grow", "regression", "--max-steps", "5", processes=1)
    grown = _run(tmp_path / "grow", "regression", "--resume", log=log)
    assert _close(whole, shrunk, atol=1e-5) and _close(whole, grown, atol=1e-5)
    assert "written by 2 process(es) and continues on 1: the global batch (16)" in log[0]
    assert "written by 1 process(es) and continues on 2: the global batch (16)" in log[1]


def test_a_resumed_data_parallel_run_ends_where_an_uninterrupted_one_does(tmp_path):
    # The VAE samples a latent per point, so this also checks each rank's random stream.
    whole = _run(tmp_path / "whole", "vae")
    _run(tmp_path / "split", "vae", "--max-steps", "5")
    resumed = _run(tmp_path / "split", "vae", "--resume")
    assert _close(whole, resumed, atol=0)
    assert not _close(whole, _run(tmp_path / "one", "vae", processes=1), atol=1e-6)  # other noise
    _check_a_killed_worker_restarts_with_the_group(tmp_path, whole)


def _check_a_killed_worker_restarts_with_the_group(tmp_path: Path, whole) -> None:
    # torchrun --max-restarts restarts the whole group with the same command; --resume auto
    # makes that command start afresh the first time and continue from the last checkpoint
    # after rank 1 is killed (SIGKILL) at step 7, so the run ends bit for bit where the
    # uninterrupted one does.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "--max-restarts=1", str(WORKER), "vae", str(out), "--distributed", "--resume-auto",
           "--checkpoint-every", "2", "--die-at", "7"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exitcode: -9" in done.stderr  # the first attempt did lose a worker
    assert _close(whole, torch.load(out / "params-rank0.pt", weights_only=True), atol=0)


def test_batches_are_split_among_processes_in_one_global_order():
    x = torch.arange(10.0).unsqueeze(1)
    shards = [[b[0].squeeze(1).tolist() for b in
               BatchFeed(x, batch_size=4, device=torch.device("cpu"), shard=(r, 2)).epoch(0, seed=3)]
              for r in range(2)]
    whole = [b[0].squeeze(1).tolist() for b in
             BatchFeed(x, batch_size=4, device=torch.device("cpu")).epoch(0, seed=3)]
    assert [a + b for a, b in zip(*shards)] == whole
    assert [len(b) for b in shards[0]] == [2, 2, 1]
    with pytest.raises(TypeError, match="DataLoader"):
        BatchFeed(torch.utils.data.DataLoader(x), batch_size=4, device=torch.device("cpu"),
                  shard=(0, 2))


def test_distributed_outside_torchrun_says_how_to_launch(monkeypatch):
    from ppdgm.inference import Engine
    from ppdgm.models import VAE

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    vae = VAE(x_shape=(4,), z_dim=2, hidden=(4,))
    engine = Engine(vae.model, vae.guide, __import__("pyro").infer.Trace_ELBO(),
                    config=TrainConfig(epochs=1, batch_size=4, device="cpu", progress=False,
                                       distributed=True))
    with pytest.raises(RuntimeError, match="torchrun"):
        engine.fit(torch.zeros(8, 4))


def test_cli_trains_data_parallel_under_torchrun(tmp_path):
    out = tmp_path / "vae"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ppdgm.cli", "fit", "vae", "--data", "bars-and-stripes", "--epochs", "2",
           "--batch-size", "10", "--z-dim", "2", "--hidden", "8", "--device", "cpu",
           "--out", str(out), "--distributed", "--no-progress"]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Trained a VAE on bars-and-stripes") == 1  # rank 0 alone reports
    # fit replays graphs by default; data-parallel steps are eager, and each rank says why
    assert "compile: data-parallel steps run eagerly" in done.stderr
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["train_config"]["distributed"] is True and len(state["rng_by_rank"]) == 2
    assert (out / "metrics.json").exists()


_LEAVES_AT_EXIT = """
import atexit, os, socket
import torch.distributed as dist
from ppdgm.inference.distributed import init_distributed
import torch

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                  MASTER_PORT=str(port))
# atexit runs its hooks last registered first: this one runs after the engine's.
atexit.register(lambda: print("open at exit:", dist.is_initialized()))
init_distributed(torch.device("cpu"))
print("open in the run:", dist.is_initialized())
"""


def test_a_process_leaves_the_group_it_joined_before_the_interpreter_ends():
    # A gloo group left to the interpreter's teardown can abort a run that had finished well.
    done = subprocess.run([sys.executable, "-c", _LEAVES_AT_EXIT], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == ["open in the run: True", "open at exit: False"]
