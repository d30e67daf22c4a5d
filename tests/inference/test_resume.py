"""Checkpoints and exact resume: an interrupted run ends where the uninterrupted one does."""

import pytest
import torch
from pyro.infer import Trace_ELBO

from ppdgm.inference import CheckpointError, Engine, TrainConfig, load_checkpoint
from ppdgm.models.linear_gaussian import LinearGaussian, LinearGaussianConfig


def _engine(out_dir, init_seed, **overrides):
    torch.manual_seed(init_seed)  # a different initialisation must not matter after resume
    model = LinearGaussian(LinearGaussianConfig(x_dim=4, z_dim=2, obs_scale=None))
    with torch.no_grad():
        model.weight.normal_()
    settings = dict(epochs=4, batch_size=32, lr=0.02, seed=7, device="cpu", progress=False,
                    out_dir=str(out_dir))
    settings.update(overrides)
    return model, Engine(model.model, model.guide, Trace_ELBO(), config=TrainConfig(**settings))


def _data():
    torch.manual_seed(3)
    return torch.randn(200, 4) @ torch.randn(4, 4)


@pytest.mark.parametrize("stop_at", [5, 7, 14])  # mid-epoch, mid-epoch, epoch boundary (7 per epoch)
def test_resume_reproduces_the_uninterrupted_run(tmp_path, stop_at):
    x = _data()
    full_model, full = _engine(tmp_path / "full", init_seed=0)
    full.fit(x)

    part_model, part = _engine(tmp_path / "part", init_seed=0, max_steps=stop_at)
    part.fit(x)
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["position"]["step"] == stop_at

    resumed_model, resumed = _engine(tmp_path / "part", init_seed=123, resume=True)
    history = resumed.fit(x)

    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name
    assert [r["loss"] for r in history.steps] == [r["loss"] for r in full.history.steps]
    assert len(history.epochs) == 4


def test_checkpoint_every_steps_and_history_files(tmp_path):
    _, engine = _engine(tmp_path, init_seed=0, epochs=1, checkpoint_every=3, max_steps=4)
    engine.fit(_data())
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["position"] == {"epoch": 0, "batch": 4, "step": 4,
                                 "seconds": state["position"]["seconds"]}
    assert (tmp_path / "history_steps.csv").read_text().startswith("step,epoch,player,loss")
    assert (tmp_path / "history.json").exists()


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    x = _data()
    model, engine = _engine(tmp_path, init_seed=0, epochs=2)
    engine.fit(x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    again_model, again = _engine(tmp_path, init_seed=5, epochs=2, resume=True)
    again.fit(x)
    for k, v in again_model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_resume_into_another_model_is_refused(tmp_path):
    x = _data()
    _, engine = _engine(tmp_path, init_seed=0, epochs=1)
    engine.fit(x)
    other = LinearGaussian(LinearGaussianConfig(x_dim=4, z_dim=3))
    cfg = TrainConfig(epochs=1, device="cpu", progress=False, out_dir=str(tmp_path), resume=True)
    with pytest.raises(CheckpointError, match="another model|shape"):
        Engine(other.model, other.guide, Trace_ELBO(), config=cfg).fit(x)


def test_resume_without_checkpoint_names_the_path(tmp_path):
    _, engine = _engine(tmp_path / "empty", init_seed=0, resume=True)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        engine.fit(_data())


class _StatefulLoss:
    """A loss whose value depends on state carried between steps, like PCD's persistent chains."""

    def __init__(self):
        self.carry = torch.zeros(4)

    def __call__(self, model, guide, x):
        loss = Trace_ELBO().differentiable_loss(model, guide, x) + (self.carry * x.mean(0)).sum()
        self.carry = self.carry + x.mean(0)
        return loss

    def state_dict(self):
        return {"carry": self.carry.clone()}

    def load_state_dict(self, state):
        self.carry = state["carry"].clone()


def test_objective_state_is_checkpointed_and_restored(tmp_path):
    x = _data()

    def run(out, objective, **overrides):
        torch.manual_seed(0)
        model = LinearGaussian(LinearGaussianConfig(x_dim=4, z_dim=2, obs_scale=None))
        cfg = TrainConfig(epochs=2, batch_size=32, lr=0.02, seed=7, device="cpu", progress=False,
                          out_dir=str(tmp_path / out), **overrides)
        Engine(model.model, model.guide, objective, config=cfg).fit(x)
        return model

    full_objective = _StatefulLoss()
    full = run("full", full_objective)
    run("part", _StatefulLoss(), max_steps=9)
    resumed_objective = _StatefulLoss()
    resumed = run("part", resumed_objective, resume=True)
    torch.testing.assert_close(resumed_objective.carry, full_objective.carry)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("change, match", [
    ({"batch_size": 64}, "batch_size=32 in the checkpoint, 64 now"),  # once hung at 100% CPU
    ({"lr": 0.5}, "lr=0.02 in the checkpoint, 0.5 now"),
    ({"seed": 8}, "seed=7 in the checkpoint, 8 now"),
])
def test_resume_with_settings_that_cannot_continue_the_run_is_refused(tmp_path, change, match):
    x = _data()
    _, part = _engine(tmp_path, init_seed=0, max_steps=5)
    part.fit(x)
    _, resumed = _engine(tmp_path, init_seed=0, resume=True, **change)
    with pytest.raises(CheckpointError, match=match):
        resumed.fit(x)


def test_resume_on_other_data_is_refused_and_longer_runs_are_accepted(tmp_path, caplog):
    x = _data()
    _, part = _engine(tmp_path, init_seed=0, max_steps=5)
    part.fit(x)
    _, fewer = _engine(tmp_path, init_seed=0, resume=True)
    with pytest.raises(CheckpointError, match="gives 4 batches per epoch, the run in .* had 7"):
        fewer.fit(x[:100])
    _, longer = _engine(tmp_path, init_seed=0, resume=True, epochs=5)
    with caplog.at_level("WARNING", logger="ppdgm.inference.engine"):
        longer.fit(x)
    assert "epochs 4 -> 5" in caplog.text and "max_steps 5 -> None" in caplog.text
    assert load_checkpoint(tmp_path / "checkpoint.pt")["position"]["step"] == 35


def test_resume_auto_starts_afresh_then_continues_and_refuses_another_run(tmp_path):
    # The one command a launcher repeats on every restart: nothing to resume yet is a fresh
    # start, an interrupted run continues exactly, another run's checkpoint is refused.
    x = _data()
    full_model, full = _engine(tmp_path / "full", init_seed=0)
    full.fit(x)
    _, first = _engine(tmp_path / "auto", init_seed=0, max_steps=9, resume="auto")
    first.fit(x)
    assert load_checkpoint(tmp_path / "auto" / "checkpoint.pt")["position"]["step"] == 9
    resumed_model, resumed = _engine(tmp_path / "auto", init_seed=123, resume="auto")
    history = resumed.fit(x)
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name
    assert [r["loss"] for r in history.steps] == [r["loss"] for r in full.history.steps]
    _, other = _engine(tmp_path / "auto", init_seed=0, resume="auto", lr=0.5)
    with pytest.raises(CheckpointError, match="other settings"):
        other.fit(x)
    with pytest.raises(ValueError, match="resume: resume='auto' needs out_dir"):
        TrainConfig(device="cpu", resume="auto")
