"""Learning-rate schedulers, the validation policy and epoch callbacks of the engine."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO
from pyro.infer.util import is_validation_enabled

from ppdgm.inference import Engine, Player, TrainConfig, adam
from ppdgm.inference.objectives import IWAE
from ppdgm.models.linear_gaussian import LinearGaussian, LinearGaussianConfig


def _data():
    torch.manual_seed(3)
    return torch.randn(120, 4) @ torch.randn(4, 4)


def _engine(out_dir, objective=None, init_seed=0, callbacks=(), **overrides):
    torch.manual_seed(init_seed)
    model = LinearGaussian(LinearGaussianConfig(x_dim=4, z_dim=2, obs_scale=None))
    player = Player("svi", optimizer=adam(0.05),
                    scheduler=lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, 0.5))
    settings = dict(epochs=3, batch_size=40, seed=7, device="cpu", progress=False,
                    out_dir=None if out_dir is None else str(out_dir))
    settings.update(overrides)
    engine = Engine(model.model, model.guide, objective or Trace_ELBO(), [player],
                    TrainConfig(**settings), callbacks=callbacks)
    return model, engine


def test_scheduler_steps_once_per_epoch():
    _, engine = _engine(None)
    engine.fit(_data())
    state = engine._states[0]
    assert state.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5**3)


@pytest.mark.parametrize("objective", [Trace_ELBO(), IWAE(num_particles=4)], ids=["elbo", "iwae"])
def test_resume_restores_the_scheduler(tmp_path, objective):
    x = _data()
    full_model, full = _engine(tmp_path / "full", objective)
    full.fit(x)
    _, part = _engine(tmp_path / "part", objective, max_steps=4)  # stops inside epoch 2
    part.fit(x)
    resumed_model, resumed = _engine(tmp_path / "part", objective, init_seed=9, resume=True)
    resumed.fit(x)
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name
    assert resumed._states[0].optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5**3)


def _recording_model(seen):
    def model(x):
        seen.append(is_validation_enabled())
        loc = pyro.param("loc", torch.zeros(()))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(loc, 1.0), obs=x)

    return model


def _guide(x):
    pass


@pytest.mark.parametrize(
    "mode, expected",
    [("first-epoch", [True, True, False, False]), ("always", [True] * 4), ("never", [False] * 4)],
)
def test_validation_policy_per_epoch(mode, expected):
    seen: list[bool] = []
    cfg = TrainConfig(epochs=2, batch_size=5, device="cpu", progress=False, validate=mode)
    Engine(_recording_model(seen), _guide, Trace_ELBO(), config=cfg).fit(torch.zeros(10))
    assert seen[-4:] == expected  # the earlier calls discover the parameters
    assert is_validation_enabled()  # the process setting is restored


def test_validation_left_off_when_the_user_turned_it_off():
    seen: list[bool] = []
    cfg = TrainConfig(epochs=1, batch_size=5, device="cpu", progress=False, validate="always")
    with pyro.validation_enabled(False):
        Engine(_recording_model(seen), _guide, Trace_ELBO(), config=cfg).fit(torch.zeros(10))
    assert seen[-2:] == [False, False]


def test_bad_validate_mode_is_named():
    with pytest.raises(ValueError, match="validate: expected one of"):
        TrainConfig(validate="sometimes")


def test_callbacks_run_after_every_epoch_with_its_index():
    calls = []
    _, engine = _engine(None, callbacks=[lambda eng, epoch: calls.append((epoch, len(eng.history.epochs)))])
    engine.fit(_data())
    assert calls == [(0, 1), (1, 2), (2, 3)]


def test_non_callable_callback_is_refused():
    with pytest.raises(TypeError, match="callbacks"):
        _engine(None, callbacks=[42])


def test_non_callable_scheduler_is_refused():
    with pytest.raises(TypeError, match="scheduler"):
        Player("svi", scheduler=3)
