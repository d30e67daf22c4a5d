"""A SIGTERM stops a run after its step with a checkpoint; checkpoints fall due by the clock."""

import os
import signal

import pytest
import torch
from pyro.infer import Trace_ELBO

from ppdgm.inference import Engine, Preempted, TrainConfig, load_checkpoint
from ppdgm.inference.engine.stops import CHECKPOINT, CONTINUE, STOP, StopRequests
from ppdgm.models import VAE

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="no SIGTERM here")


def _data():
    g = torch.Generator().manual_seed(2)
    return (torch.rand(64, 6, generator=g) < 0.3).float()


def _engine(out_dir, *, callbacks=(), **overrides):
    torch.manual_seed(0)
    vae = VAE(x_shape=(6,), z_dim=2, hidden=(8,))  # a latent per point: the RNG state matters
    settings = dict(epochs=3, batch_size=16, lr=0.05, seed=4, device="cpu", progress=False,
                    out_dir=None if out_dir is None else str(out_dir))
    settings.update(overrides)
    return vae, Engine(vae.model, vae.guide, Trace_ELBO(), config=TrainConfig(**settings),
                       step_callbacks=list(callbacks))


def _terminate_at(step):
    def send(engine, done):
        if done + 1 == step:
            os.kill(os.getpid(), signal.SIGTERM)
    return send


@pytest.mark.parametrize("stop_at", [6, 8])  # mid-epoch; the last step of an epoch (4 per epoch)
def test_a_sigterm_finishes_the_step_checkpoints_and_the_next_launch_continues_exactly(
        tmp_path, stop_at):
    whole, engine = _engine(tmp_path / "whole")
    engine.fit(_data())

    before = signal.getsignal(signal.SIGTERM)
    _, stopped = _engine(tmp_path / "run", resume="auto", callbacks=[_terminate_at(stop_at)])
    with pytest.raises(Preempted, match=f"stopped by SIGTERM after step {stop_at}") as caught:
        stopped.fit(_data())
    assert caught.value.exit_status == 75 and caught.value.step == stop_at
    assert signal.getsignal(signal.SIGTERM) is before  # the handler lives only during fit
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["position"]["step"] == stop_at

    resumed, again = _engine(tmp_path / "run", resume="auto")
    again.fit(_data())
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert [r["loss"] for r in again.history.steps] == [r["loss"] for r in engine.history.steps]


def test_a_second_sigterm_does_what_the_signal_did_before_the_run(tmp_path):
    seen = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        def twice(engine, done):
            if done == 1:
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)
        _, engine = _engine(tmp_path, callbacks=[twice])
        with pytest.raises(Preempted):
            engine.fit(_data())
        assert seen == [signal.SIGTERM]  # the first was the run's, the second the old handler's
    finally:
        signal.signal(signal.SIGTERM, before)


def test_without_an_out_dir_a_sigterm_is_left_alone(tmp_path):
    seen = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        _, engine = _engine(None, epochs=1, callbacks=[_terminate_at(2)])
        engine.fit(_data())  # nowhere to checkpoint: nothing to stop for
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before)


def _checkpointed_steps(tmp_path, seconds):
    steps = []

    def look(engine, done):  # runs before this step's checkpoint: sees the one before
        path = tmp_path / "checkpoint.pt"
        if path.exists():
            steps.append(load_checkpoint(path)["position"]["step"])
    _, engine = _engine(tmp_path, epochs=2, checkpoint_seconds=seconds, callbacks=[look])
    engine.fit(_data())
    return sorted(set(steps))


def test_checkpoint_seconds_writes_a_checkpoint_once_the_time_has_passed(tmp_path):
    assert _checkpointed_steps(tmp_path / "often", 1e-9) == [1, 2, 3, 4, 5, 6, 7]
    assert _checkpointed_steps(tmp_path / "rarely", 1e9) == [4]  # only the epoch's end


def test_stop_requests_give_the_stronger_request_and_a_clock_starts_again():
    ticks = StopRequests(1e-9, catch_signals=False, group_device=None)
    assert ticks.after_step(is_main=True) == CHECKPOINT
    assert ticks.after_step(is_main=False) == CONTINUE  # only rank 0's clock decides
    never = StopRequests(None, catch_signals=False, group_device=None)
    assert never.after_step(is_main=True) == CONTINUE
    never.signal_name = "SIGTERM"
    assert never.after_step(is_main=True) == STOP


def test_checkpoint_seconds_is_checked():
    with pytest.raises(ValueError, match="checkpoint_seconds: expected a positive finite number"):
        TrainConfig(checkpoint_seconds=0)
