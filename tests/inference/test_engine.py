"""The engine's contract: objectives, players, the NaN guard, devices and bad input."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import RenyiELBO, Trace_ELBO

from ppdgm.inference import (
    Engine,
    NonFiniteLossError,
    Player,
    TrainConfig,
    adam,
    load_checkpoint,
)
from ppdgm.models.linear_gaussian import LinearGaussian, LinearGaussianConfig


def _cfg(**overrides):
    settings = dict(epochs=2, batch_size=16, lr=0.05, device="cpu", progress=False)
    settings.update(overrides)
    return TrainConfig(**settings)


def _mean_model(x):
    net = torch.nn.Linear(1, 1)
    pyro.module("net", net)  # plain nn.Module registered in Pyro's global store
    loc = pyro.param("loc", torch.zeros(()))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("x", dist.Normal(loc, 1.0), obs=x)


def _empty_guide(x):
    pass


def test_plain_pyro_functions_are_trained():
    x = torch.full((64,), 2.0)
    Engine(_mean_model, _empty_guide, Trace_ELBO(), config=_cfg(epochs=60, lr=0.1)).fit(x)
    assert abs(pyro.param("loc").item() - 2.0) < 0.05


def test_callable_objective_and_loss_and_grads_only_elbo():
    model = LinearGaussian()
    x = model.sample(64)

    def negative_elbo(model_fn, guide_fn, batch):
        return Trace_ELBO().differentiable_loss(model_fn, guide_fn, batch)

    negative_elbo.__name__ = "negative_elbo"
    h1 = Engine(model.model, model.guide, negative_elbo, config=_cfg(epochs=3)).fit(x)
    h2 = Engine(model.model, model.guide, RenyiELBO(alpha=0, num_particles=5),
                config=_cfg(epochs=3)).fit(x)
    assert h1.epochs[-1]["loss_per_example"] < h1.epochs[0]["loss_per_example"]
    assert len(h2.steps) == 12
    with pytest.raises(ValueError, match="objective: RenyiELBO only provides loss_and_grads"):
        Engine(model.model, model.guide, RenyiELBO(), [Player("a", "model"), Player("b", "guide")])


def _two_player_setup():
    model = LinearGaussian(LinearGaussianConfig(x_dim=2, z_dim=1))
    x = model.sample(32)
    calls = []

    def objective(model_fn, guide_fn, batch):
        calls.append(1)
        loss = Trace_ELBO().differentiable_loss(model_fn, guide_fn, batch)
        return {"wake": loss, "sleep": 2.0 * loss}

    return model, x, objective, calls


def test_a_players_step_never_moves_another_players_parameters():
    model, x, objective, _ = _two_player_setup()
    players = [Player("wake", owns="model", optimizer=adam(0.1)),
               Player("sleep", owns="guide", optimizer=adam(0.1), every=2)]
    engine = Engine(model.model, model.guide, objective, players, _cfg(epochs=1, batch_size=8))
    snapshots = []
    original_step = engine._step

    def spy(batch, pos):
        if pos.step == 0:  # the first step is the one that finds the parameters
            return original_step(batch, pos)
        before = {k: v.detach().clone() for k, v in engine.parameters().items()}
        original_step(batch, pos)
        after = engine.parameters()
        snapshots.append((pos.step, {k: not torch.equal(before[k], after[k]) for k in before}))

    engine._step = spy
    engine.fit(x)
    model_names, guide_names = set(engine.parameters("wake")), set(engine.parameters("sleep"))
    assert model_names == {"weight", "bias"} and guide_names == {"enc_weight", "enc_bias", "enc_scale"}
    for step, moved in snapshots:
        assert all(moved[n] for n in model_names)
        assert all(moved[n] == (step % 2 == 0) for n in guide_names), step


def test_players_take_turns_and_repeat():
    model, x, objective, calls = _two_player_setup()
    players = [Player("sleep", owns="guide", repeats=3), Player("wake", owns="model")]
    history = Engine(model.model, model.guide, objective, players, _cfg(epochs=1, batch_size=8)).fit(x)
    assert len(calls) == 4 * (3 + 1)
    assert [r["player"] for r in history.steps[:4]] == ["sleep"] * 3 + ["wake"]
    assert {r["player"] for r in history.epochs} == {"sleep", "wake"}


def test_objective_must_name_every_player():
    model, x, objective, _ = _two_player_setup()
    engine = Engine(model.model, model.guide, objective, [Player("critic")], _cfg())
    with pytest.raises(ValueError, match="not for player 'critic'"):
        engine.fit(x)


def test_nan_stops_training_names_the_step_and_keeps_the_checkpoint(tmp_path):
    model = LinearGaussian()
    x = model.sample(64)
    steps = []

    def flaky_elbo(model_fn, guide_fn, batch):
        steps.append(1)
        loss = Trace_ELBO().differentiable_loss(model_fn, guide_fn, batch)
        return loss * float("nan") if len(steps) == 7 else loss

    cfg = _cfg(epochs=3, out_dir=str(tmp_path))  # 4 steps per epoch: a checkpoint after step 4
    engine = Engine(model.model, model.guide, flaky_elbo, config=cfg)
    with pytest.raises(NonFiniteLossError, match=r"flaky_elbo returned nan at step 6 \(epoch 1"):
        engine.fit(x)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["position"]["step"] == 4
    for value in engine.parameters().values():
        assert torch.isfinite(value).all()
    resumed = Engine(model.model, model.guide, Trace_ELBO(),
                     config=_cfg(epochs=3, out_dir=str(tmp_path), resume=True))
    assert len(resumed.fit(x).epochs) == 3


def test_dataloader_and_dataset_inputs():
    model = LinearGaussian()
    x = model.sample(40)
    dataset = torch.utils.data.TensorDataset(x)
    loader = torch.utils.data.DataLoader(dataset, batch_size=10, shuffle=True,
                                         generator=torch.Generator())
    h1 = Engine(model.model, model.guide, Trace_ELBO(), config=_cfg()).fit(dataset)
    h2 = Engine(model.model, model.guide, Trace_ELBO(), config=_cfg()).fit(loader)
    assert len(h1.steps) == 2 * 3 and len(h2.steps) == 2 * 4


def test_same_seed_same_run_and_other_seed_other_run():
    def run(seed):
        torch.manual_seed(0)
        model = LinearGaussian()
        x = torch.randn(48, 3)
        Engine(model.model, model.guide, Trace_ELBO(), config=_cfg(seed=seed)).fit(x)
        return model.enc_weight.detach().clone()

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_runs_on_the_test_device(device):
    model = LinearGaussian()
    x = model.sample(32)
    Engine(model.model, model.guide, Trace_ELBO(), config=_cfg(device=str(device))).fit(x)
    assert model.weight.device.type == device.type


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"device": "tpu"}, ValueError, "device"),
        ({"seed": "x"}, TypeError, "seed"),
        ({"resume": True}, ValueError, "resume"),
        ({"grad_clip": 0}, ValueError, "grad_clip"),
    ],
)
def test_bad_config_names_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        _cfg(**kwargs)


def test_bad_engine_arguments():
    model = LinearGaussian()
    with pytest.raises(TypeError, match="model"):
        Engine(3, model.guide, Trace_ELBO())
    with pytest.raises(TypeError, match="objective"):
        Engine(model.model, model.guide, "elbo")
    with pytest.raises(ValueError, match="players: names must be distinct"):
        Engine(model.model, model.guide, Trace_ELBO(), [Player("a"), Player("a")])
    with pytest.raises(ValueError, match="owns"):
        Player("a", owns="decoder")
    with pytest.raises(ValueError, match="every"):
        Player("a", every=0)
    engine = Engine(model.model, model.guide, Trace_ELBO(), config=_cfg())
    with pytest.raises(TypeError, match="data"):
        engine.fit([1, 2, 3])
    with pytest.raises(ValueError, match="data: tensors must share"):
        engine.fit((torch.zeros(4, 3), torch.zeros(5)))
    with pytest.raises(ValueError, match="x: expected shape"):
        engine.fit(torch.zeros(8, 5))
    with pytest.raises(ValueError, match="owns no parameter"):
        Engine(_mean_model, _empty_guide, Trace_ELBO(), [Player("g", owns="guide")],
               _cfg()).fit(torch.zeros(4))


class _UserModel(pyro.nn.PyroModule):
    """A PyroModule built in Pyro's default (global) parameter mode, as users write them."""

    def __init__(self):
        super().__init__()
        self.loc = torch.nn.Parameter(torch.zeros(()))

    @pyro.nn.pyro_method
    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(self.loc, 1.0), obs=x)

    def guide(self, x):
        pass


def test_user_pyromodules_in_global_mode_train_their_own_weights():
    first, second = _UserModel(), _UserModel()
    engine = Engine(first.model, first.guide, Trace_ELBO(), config=_cfg(epochs=40, lr=0.2))
    assert not engine.local_params
    engine.fit(torch.full((32,), 1.0))
    # The store now holds first's "loc"; the second instance must train its own tensor anyway.
    Engine(second.model, second.guide, Trace_ELBO(), config=_cfg(epochs=40, lr=0.2)).fit(
        torch.full((32,), -1.0))
    assert abs(first.loc.item() - 1.0) < 0.1
    assert abs(second.loc.item() + 1.0) < 0.1


def test_bf16_autocast_trains_close_to_fp32_and_keeps_fp32_parameters():
    from pyro.infer import Trace_ELBO

    from ppdgm.models import VAE

    x = (torch.rand(64, 6, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    losses = {}
    for precision in ("fp32", "bf16"):
        pyro.set_rng_seed(0)
        vae = VAE(x_shape=(6,), z_dim=2, hidden=(16,))
        cfg = TrainConfig(epochs=3, batch_size=16, device="cpu", progress=False, precision=precision)
        history = Engine(vae.model, vae.guide, Trace_ELBO(), config=cfg).fit(x)
        losses[precision] = [row["loss"] for row in history.steps]
        assert all(p.dtype == torch.float32 for p in vae.parameters())
    first = (losses["fp32"][0], losses["bf16"][0])
    assert first[1] == pytest.approx(first[0], rel=0.02)  # same draws, bf16 matrix products
    last = {k: sum(v[-4:]) / 4 for k, v in losses.items()}  # the third epoch, same draws
    assert last["bf16"] == pytest.approx(last["fp32"], rel=0.05)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")
