"""TensorBoard files written by a run, read back with TensorBoard's own reader."""

import pytest
import torch
from pyro.infer import Trace_ELBO

from ppdgm.cli import main
from ppdgm.inference import Engine, TrainConfig
from ppdgm.inference.objectives.registry import build_player_objective
from ppdgm.models import VAE, SigmoidBeliefNet

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _read(folder):
    (events,) = list(folder.glob("events.out.tfevents.*"))
    acc = event_accumulator.EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_a_run_logs_every_step_every_epoch_and_sample_grids(tmp_path):
    vae = VAE(x_shape=(1, 4, 4), z_dim=2, hidden=(8,))
    config = TrainConfig(epochs=5, batch_size=10, device="cpu", progress=False,
                         tensorboard=str(tmp_path / "tb"))
    engine = Engine(vae.model, vae.guide, Trace_ELBO(), config=config)
    engine.fit(torch.rand(30, 1, 4, 4).round())
    acc = _read(tmp_path / "tb")
    steps = acc.Scalars("loss/svi")
    assert [e.step for e in steps] == list(range(15))
    expected = [r["loss"] / r["batch_size"] for r in engine.history.steps]
    assert [e.value for e in steps] == pytest.approx(expected, rel=1e-6)
    assert len(acc.Scalars("epoch_loss/svi")) == 5
    assert len(acc.Images("samples")) == 1  # every 5 epochs
    assert engine.callbacks == [] and engine.step_callbacks == []  # detached after the run


def test_every_player_is_logged(tmp_path):
    sbn = SigmoidBeliefNet(x_shape=(4,), layers=(3,))
    loss, players = build_player_objective("wake-sleep", lr=1e-3)
    config = TrainConfig(epochs=1, batch_size=10, device="cpu", progress=False,
                         tensorboard=str(tmp_path / "tb"))
    Engine(sbn.model, sbn.guide, loss, players, config).fit(torch.rand(40, 4).round())
    tags = _read(tmp_path / "tb").Tags()["scalars"]
    assert {f"loss/{p.name}" for p in players} <= set(tags)


def test_the_fit_command_takes_a_tensorboard_folder(tmp_path):
    assert main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "1", "--hidden", "8",
                 "--z-dim", "2", "--out", str(tmp_path / "run"), "--no-progress",
                 "--tensorboard", str(tmp_path / "tb")]) == 0
    assert "loss/svi" in _read(tmp_path / "tb").Tags()["scalars"]


def test_a_bad_tensorboard_value_is_named():
    with pytest.raises(TypeError, match="tensorboard: expected a folder path"):
        TrainConfig(tensorboard=3)
