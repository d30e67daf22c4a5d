"""The engine's moving average of the weights: PyTorch's EMA step for step, exact resume,
refusals of a mismatched checkpoint, and loading a checkpoint with its average."""

import dataclasses

import pytest
import torch
from pyro.infer import Trace_ELBO
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ppdgm.data import load_dataset
from ppdgm.inference import CheckpointError, Engine, TrainConfig, load_checkpoint
from ppdgm.models import VAE
from ppdgm.models.linear_gaussian import LinearGaussian, LinearGaussianConfig
from ppdgm.recipes import load_trained_model
from ppdgm.recipes.run import train_with_engine


def _engine(out_dir=None, *, step_callbacks=(), **overrides):
    torch.manual_seed(0)
    model = LinearGaussian(LinearGaussianConfig(x_dim=4, z_dim=2, obs_scale=None))
    settings = dict(epochs=3, batch_size=32, lr=0.05, seed=7, device="cpu", progress=False,
                    out_dir=None if out_dir is None else str(out_dir), ema=0.9)
    settings.update(overrides)
    engine = Engine(model.model, model.guide, Trace_ELBO(), config=TrainConfig(**settings),
                    step_callbacks=step_callbacks)
    return model, engine


def _data():
    torch.manual_seed(3)
    return torch.randn(200, 4) @ torch.randn(4, 4)


def test_the_average_is_pytorchs_averaged_model_step_for_step():
    reference = {}

    def follow(engine, step):
        if "model" not in reference:
            reference["model"] = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
        reference["model"].update_parameters(model)

    model, engine = _engine(step_callbacks=[follow])
    engine.fit(_data())
    averaged = dict(reference["model"].module.named_parameters())
    with engine.ema_weights():
        for name, param in model.named_parameters():
            torch.testing.assert_close(param.detach(), averaged[name].detach(), rtol=0, atol=1e-7)
    trained = dict(model.named_parameters())
    assert not torch.allclose(trained["weight"], averaged["weight"])  # the block put them back


@pytest.mark.parametrize("stop_at", [5, 14])
def test_the_average_resumes_exactly(tmp_path, stop_at):
    x = _data()
    full_model, full = _engine(tmp_path / "full")
    full.fit(x)
    _, part = _engine(tmp_path / "part", max_steps=stop_at)
    part.fit(x)
    resumed_model, resumed = _engine(tmp_path / "part", resume=True)
    resumed.fit(x)
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name
    with full.ema_weights(), resumed.ema_weights():
        pass
    full_avg, resumed_avg = full._ema.shadows, resumed._ema.shadows
    assert set(full_avg) == set(resumed_avg)
    for name in full_avg:
        assert torch.equal(full_avg[name], resumed_avg[name]), name


def test_a_checkpoint_with_another_average_is_refused(tmp_path):
    x = _data()
    _engine(tmp_path / "a", max_steps=3)[1].fit(x)
    with pytest.raises(CheckpointError, match="decay 0.9, this run asks for 0.99"):
        _engine(tmp_path / "a", resume=True, ema=0.99)[1].fit(x)
    with pytest.raises(CheckpointError, match="with a moving average of the weights and this run has none"):
        _engine(tmp_path / "a", resume=True, ema=None)[1].fit(x)
    _engine(tmp_path / "b", max_steps=3, ema=None)[1].fit(x)
    with pytest.raises(CheckpointError, match="without a moving average"):
        _engine(tmp_path / "b", resume=True)[1].fit(x)


def test_a_run_and_its_checkpoint_sample_from_the_average(tmp_path):
    data = load_dataset("bars-and-stripes")
    cfg = TrainConfig(epochs=3, batch_size=10, lr=1e-2, device="cpu", progress=False,
                      out_dir=str(tmp_path), ema=0.8)
    run = train_with_engine(data, cfg, lambda: VAE(x_shape=(1, 4, 4), z_dim=2, hidden=(8,)),
                            lambda vae: Engine(vae.model, vae.guide, Trace_ELBO(), config=cfg,
                                               model_spec={"name": "vae",
                                                           "config": dataclasses.asdict(vae.config)}))
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    raw, averaged = state["modules"][0], state["ema_modules"][0]
    assert set(averaged) == {k for k, _ in run.model.named_parameters()}
    loaded = load_trained_model(tmp_path / "checkpoint.pt", device="cpu")
    for key, value in loaded.state_dict().items():
        expected = averaged.get(key, raw[key])
        assert torch.equal(value, expected), key
        assert torch.equal(run.model.state_dict()[key], expected), key  # the run's own metrics
    assert any(not torch.equal(raw[k], averaged[k]) for k in averaged)


def test_bad_decay_and_use_without_average_are_named():
    with pytest.raises(ValueError, match="ema: expected None or a decay in"):
        TrainConfig(ema=1.0)
    _, engine = _engine(ema=None, epochs=1)
    engine.fit(_data())
    with pytest.raises(RuntimeError, match="ema_weights: the run keeps no average"):
        engine.ema_weights()
