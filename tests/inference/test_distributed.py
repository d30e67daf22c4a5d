"""Data-parallel training: two gloo processes launched by torchrun against one process, on one
node and on two (two torchrun agents over loopback), through a preemption and a lost worker."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from ppdgm.inference import TrainConfig
from ppdgm.inference.batches import BatchFeed
from ppdgm.inference.checkpoint import load_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")
pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def _launch(launcher: list[str], command: list[str], *, log: Path | None = None,
            env: dict[str, str] | None = None) -> Any:
    """torchrun with ``launcher``'s flags over ``command``: finished, or running with its output
    going to the file ``log`` (a file, not a pipe that nobody reads while another agent runs)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", *launcher, *command]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if log is None:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    with open(log, "w") as sink:
        return subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def _running(agents: list[subprocess.Popen]) -> Iterator[list[subprocess.Popen]]:
    """The agents, killed on the way out if a check failed before they ended."""
    try:
        yield agents
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
            agent.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(out: Path, model: str, *extra: str, processes: int = 2,
         log: list[str] | None = None) -> dict[str, torch.Tensor]:
    if processes == 1:
        done = subprocess.run([sys.executable, str(WORKER), model, str(out), *extra],
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                              text=True, timeout=300)
    else:
        done = _launch(["--standalone", f"--nproc_per_node={processes}"],
                       [str(WORKER), model, str(out), "--distributed", *extra])
    assert done.returncode == 0, done.stderr[-3000:]
    if log is not None:
        log.append(done.stderr)
    return torch.load(out / "params-rank0.pt", weights_only=True)


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol) for k in a)


def test_two_processes_take_the_steps_of_one_and_a_resumed_run_may_change_their_number(tmp_path):
    # The regression's steps are deterministic: a run that keeps its global batch and data
    # order ends where one process's uninterrupted run does, shrunk (2 -> 1) or grown (1 -> 2).
    whole = _run(tmp_path / "one", "regression", processes=1)
    log: list[str] = []
    first_half = _run(tmp_path / "shrink", "regression", "--max-steps", "5")
    # Both replicas end identical, and rank 0 alone wrote the checkpoint and history.
    rank1 = torch.load(tmp_path / "shrink" / "params-rank1.pt", weights_only=True)
    assert _close(first_half, rank1, atol=0)
    state = load_checkpoint(tmp_path / "shrink" / "checkpoint.pt")
    assert state["position"]["step"] == 5 and len(state["rng_by_rank"]) == 2
    assert state["world_size"] == 2
    shrunk = _run(tmp_path / "shrink", "regression", "--resume", processes=1, log=log)
    _run(tmp_path / "grow", "regression", "--max-steps", "5", processes=1)
    grown = _run(tmp_path / "grow", "regression", "--resume", log=log)
    assert _close(whole, shrunk, atol=1e-5) and _close(whole, grown, atol=1e-5)
    assert "written by 2 process(es) and continues on 1: the global batch (16)" in log[0]
    assert "written by 1 process(es) and continues on 2: the global batch (16)" in log[1]


def test_a_data_parallel_run_survives_a_preemption_and_a_lost_worker_on_two_nodes(tmp_path):
    # The VAE samples a latent per point, so this also checks each rank's random stream.
    whole = _run(tmp_path / "whole", "vae")
    assert not _close(whole, _run(tmp_path / "one", "vae", processes=1), atol=1e-6)  # other noise
    _check_a_preempted_group_stops_together_and_continues(tmp_path, whole)
    _check_a_killed_worker_restarts_both_nodes(tmp_path, whole)


def _check_a_preempted_group_stops_together_and_continues(tmp_path: Path, whole) -> None:
    # Rank 1 alone gets SIGTERM after step 7: both ranks finish that step, write one checkpoint
    # and exit with 75; torchrun --max-restarts restarts the group with the same command, which
    # (--resume auto) continues from step 7 and ends bit for bit where the uninterrupted run does.
    out = tmp_path / "preempted"
    done = _launch(["--standalone", "--nproc_per_node=2", "--max-restarts=1"],
                   [str(WORKER), "vae", str(out), "--distributed", "--resume-auto",
                    "--term-at", "7"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 1: stopped by SIGTERM after step 7" in done.stderr
    assert "rank 0: stopped by SIGTERM (sent to another process) after step 7" in done.stderr
    assert "exitcode: 75" in done.stderr, done.stderr
    assert _close(whole, torch.load(out / "params-rank0.pt", weights_only=True), atol=0)


def _check_a_killed_worker_restarts_both_nodes(tmp_path: Path, whole) -> None:
    # Two torchrun agents meet over loopback as two nodes would (c10d rendezvous, one process
    # each). Rank 1 is killed (SIGKILL) after step 7; both agents restart their worker, which
    # continues from the checkpoint of step 6, and the run ends where the uninterrupted one does.
    # The agents do not share their store with the workers, as the data-parallel page says.
    out, port = tmp_path / "killed", _free_port()
    logs = [tmp_path / f"agent{n}.log" for n in range(2)]
    launcher = ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d",
                f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=killed", "--max-restarts=1"]
    command = [str(WORKER), "vae", str(out), "--distributed", "--resume-auto",
               "--checkpoint-every", "2", "--die-at", "7"]
    unshared = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    with _running([_launch(launcher, command, log=log, env=unshared) for log in logs]) as agents:
        status = [agent.wait(timeout=300) for agent in agents]
    logs = [log.read_text() for log in logs]
    assert status == [0, 0], "\n".join(log[-2000:] for log in logs)
    assert any("exitcode: -9" in log for log in logs)  # the first attempt did lose a worker
    assert _close(whole, torch.load(out / "params-rank0.pt", weights_only=True), atol=0)


@pytest.mark.slow
def test_a_node_wide_sigterm_stops_every_rank_after_one_step(tmp_path):
    # What a scheduler does: SIGTERM to torchrun, which forwards it to every worker. Whatever
    # step they stop after, the next launch continues there exactly.
    whole = _run(tmp_path / "whole", "vae")
    out = tmp_path / "node"
    with _running([_launch(["--standalone", "--nproc_per_node=2"],
                           [str(WORKER), "vae", str(out), "--distributed", "--resume-auto",
                            "--pause", "0.3"], log=tmp_path / "node.log")]) as (agent,):
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
    log = (tmp_path / "node.log").read_text()
    assert log.count("stopped by SIGTERM after step") == 2, log[-3000:]
    assert _close(whole, _run(out, "vae", "--resume-auto"), atol=0)


@pytest.mark.slow
def test_a_killed_worker_restarts_with_its_group_on_one_node(tmp_path):
    whole = _run(tmp_path / "whole", "vae")
    out = tmp_path / "killed"
    done = _launch(["--standalone", "--nproc_per_node=2", "--max-restarts=1"],
                   [str(WORKER), "vae", str(out), "--distributed", "--resume-auto",
                    "--checkpoint-every", "2", "--die-at", "7"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exitcode: -9" in done.stderr
    assert _close(whole, torch.load(out / "params-rank0.pt", weights_only=True), atol=0)


@pytest.mark.parametrize("agents, shared, attempt, keys, warns", [
    (1, "True", "0", None, False),
    (1, "True", "2", "ppdgm/attempt_2", False),  # one agent: its workers share their count
    (1, "False", "2", None, False),  # a store that is not shared is new for every round
    (2, "True", "1", None, True),  # several agents: counts differ, say what to set
    (2, "False", "1", None, False),
])
def test_a_restarted_group_meets_under_keys_every_member_agrees_on(monkeypatch, agents, shared,
                                                                  attempt, keys, warns):
    from ppdgm.inference import distributed

    met = []
    monkeypatch.setattr(distributed.dist, "init_process_group",
                        lambda **kw: met.append(getattr(kw.get("store"), "prefix", None)))
    monkeypatch.setattr(sys.modules["torch.distributed.rendezvous"], "rendezvous",
                        lambda url: iter([(_Store(), 0, 2)]))
    monkeypatch.setattr(distributed.dist, "PrefixStore", _Prefixed)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", attempt)
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", shared)
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "3")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(2 // agents))
    with pytest.warns(RuntimeWarning, match="TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1") if warns \
            else contextlib.nullcontext():
        distributed._init_group("gloo")
    assert met == [keys]


class _Store:
    pass


class _Prefixed:
    def __init__(self, prefix: str, store: _Store) -> None:
        self.prefix = prefix


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
