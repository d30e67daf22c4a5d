"""The compiled step: traced graphs give the eager run's losses for every family and objective,
never replay a stale graph, resume bit for bit, and still name the step that went non-finite."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO

from ppdgm import (
    GAN,
    IWAE,
    MADE,
    RBM,
    VAE,
    AdversarialLoss,
    AutoregressiveConfig,
    ContrastiveDivergence,
    DeepVAE,
    DeepVAEConfig,
    DenoisingLoss,
    Diffusion,
    Engine,
    GANConfig,
    NonFiniteLossError,
    Player,
    SBNConfig,
    SigmoidBeliefNet,
    TrainConfig,
    build_objective,
    build_player_objective,
)

sys.path.insert(0, str(Path(__file__).parent))
from pyro_programs import programs  # noqa: E402

BITS = (torch.rand(64, 16, generator=torch.Generator().manual_seed(0)) < 0.4).float()
POINTS = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))


def _vae(name):
    def make():
        vae = VAE(x_shape=(16,), z_dim=3, hidden=(8,))
        return vae.model, vae.guide, build_objective(name, k=4), None, BITS
    return make


def _sbn(name):
    def make():
        sbn = SigmoidBeliefNet(SBNConfig(x_shape=(16,), layers=(4,)))
        objective, players = build_player_objective(name, k=4, lr=1e-2)
        return sbn.model, sbn.guide, objective, players, BITS
    return make


def _diffusion():
    d = Diffusion(x_shape=(2,), timesteps=20, hidden=(16,))
    return d.model, d.guide, DenoisingLoss(), None, POINTS


def _gan():
    g = GAN(GANConfig(x_shape=(2,), z_dim=2, hidden=(8,)))
    players = [Player("discriminator", owns="guide"), Player("generator", owns="model")]
    return g.model, g.guide, AdversarialLoss("non-saturating"), players, POINTS


def _rbm():
    r = RBM(visible=16, hidden=4)
    return r.model, r.guide, ContrastiveDivergence(k=1), None, BITS


def _made():
    m = MADE(AutoregressiveConfig(x_shape=(16,), hidden=(8,)))
    return m.model, m.guide, Trace_ELBO(), None, BITS


def _deep_vae():
    d = DeepVAE(DeepVAEConfig(x_shape=(16,), z_dims=(4, 2), hidden=((8,), (8,))))
    return d.model, d.guide, IWAE(num_particles=3), None, BITS


FAMILIES = {
    "vae elbo": _vae("elbo"), "vae elbo-analytic": _vae("elbo-analytic"), "vae iwae": _vae("iwae"),
    "sbn vimco": _sbn("vimco"), "sbn rws": _sbn("rws"), "sbn wake-sleep": _sbn("wake-sleep"),
    "diffusion denoising": _diffusion, "gan adversarial": _gan, "rbm cd": _rbm,
    "made exact": _made, "deep vae iwae": _deep_vae,
}


def _run(make, compile, *, epochs=3, callbacks=(), **settings):
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    model, guide, objective, players, data = make()
    config = TrainConfig(epochs=epochs, batch_size=16, lr=1e-2, seed=0, device="cpu",
                         progress=False, validate="never", compile=compile, **settings)
    engine = Engine(model, guide, objective, players, config=config, callbacks=callbacks)
    history = engine.fit(data)
    params = {k: v.detach().clone() for k, v in engine.parameters().items()}
    return [r["loss"] for r in history.steps], params, engine


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_replays_graphs_with_the_eager_losses(family):
    eager, eager_params, _ = _run(FAMILIES[family], "off")
    replayed, replayed_params, engine = _run(FAMILIES[family], "replay")
    assert set(engine.compiled_players.values()) == {"graph"}, engine.compiled_players
    torch.testing.assert_close(torch.tensor(replayed), torch.tensor(eager), rtol=1e-5, atol=1e-5)
    for name in eager_params:
        torch.testing.assert_close(replayed_params[name], eager_params[name], rtol=1e-5, atol=1e-6)


def _pcd():
    r = RBM(visible=16, hidden=4)
    with torch.no_grad():  # strong weights: where a chain starts decides where it goes
        r.weight.copy_(3 * torch.randn(r.weight.shape, generator=torch.Generator().manual_seed(2)))
    return r.model, r.guide, ContrastiveDivergence(k=2, persistent=True, num_chains=8), None, BITS


@pytest.mark.parametrize("make", [_sbn("nvil"), _pcd], ids=["nvil", "pcd"])
def test_an_objective_that_carries_tensors_between_steps_replays_them(make):
    # NVIL's running statistics and PCD's chains are inputs and outputs of the graph: a replay
    # moves them as the eager step does, every step, not only on the steps checked.
    eager, eager_params, eager_engine = _run(make, "off")
    replayed, params, engine = _run(make, "replay")
    assert engine.compiled_players == {"svi": "graph"}
    torch.testing.assert_close(torch.tensor(replayed), torch.tensor(eager), rtol=1e-5, atol=1e-5)
    for name in eager_params:
        torch.testing.assert_close(params[name], eager_params[name], rtol=1e-5, atol=1e-6)
    ours, theirs = engine.objective.state_dict(), eager_engine.objective.state_dict()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_a_changed_setting_of_the_objective_traces_anew():
    # CD's sweeps grow with anneal(): a graph of k=1 must not be replayed for k=3.
    def make():
        r = RBM(visible=16, hidden=4)
        return r.model, r.guide, ContrastiveDivergence(k=1, k_final=3), None, BITS

    def grow(engine, epoch):
        engine.objective.anneal(min(1.0, (epoch + 1) / 2))  # k = 1, 2, 3 in epochs 0, 1, 2

    eager, eager_params, _ = _run(make, "off", callbacks=[grow])
    replayed, params, engine = _run(make, "replay", callbacks=[grow])
    assert engine.objective.k == 3 and engine.compiled_players == {"svi": "graph"}
    assert engine._graphs.traces["svi"] == 3  # one graph per number of sweeps
    torch.testing.assert_close(torch.tensor(replayed), torch.tensor(eager), rtol=1e-5, atol=1e-5)
    for name in eager_params:
        torch.testing.assert_close(params[name], eager_params[name], rtol=1e-5, atol=1e-6)


def test_the_inductor_compiled_step_equals_the_eager_one():
    eager, eager_params, _ = _run(_vae("elbo"), "off", epochs=2)
    compiled, compiled_params, engine = _run(_vae("elbo"), "inductor", epochs=2)
    assert engine.compiled_players == {"svi": "graph"}
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(eager), rtol=1e-5, atol=1e-4)
    for name in eager_params:
        torch.testing.assert_close(compiled_params[name], eager_params[name], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------ never a stale graph


class _Branching:
    """A guide that takes another path whenever its batch's mean is positive."""

    def __init__(self):
        self.calls = 0

    def model(self, x):
        loc = pyro.param("loc", torch.tensor(0.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(loc, 1.0), obs=x)

    def guide(self, x):
        if x.mean() > 0:
            pyro.param("loc", torch.tensor(0.0)).add(0.0)


class _Reading:
    """A guide that reads a float into Python: a graph cannot replay it."""

    def model(self, x):
        loc = pyro.param("loc", torch.tensor(0.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(loc, 1.0), obs=x)

    def guide(self, x):
        pyro.param("loc", torch.tensor(0.0)).mul(float(x.mean()) * 0.0 + 1.0)


class _Counting:
    """A model whose likelihood scale is a Python counter: state a graph would freeze."""

    def __init__(self):
        self.calls = 0

    def model(self, x):
        self.calls += 1
        loc = pyro.param("loc", torch.tensor(0.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(loc, 1.0 + 0.1 * self.calls), obs=x)

    def guide(self, x):
        pass


@pytest.mark.parametrize("kind, reason", [
    (_Branching, "branches on tensor values that went another way than when traced on 3 calls"),
    (_Reading, "reads a tensor's value in Python (Tensor.float"),
    (_Counting, "disagreed with the program on a later step"),
])
def test_a_program_a_graph_cannot_follow_runs_eagerly(kind, reason, caplog):
    # Batches of 16 in order, their means positive, negative, positive: _Branching's graph is
    # traced on the second batch and its guard fails on the third, the first and the third.
    data = torch.randn(48, generator=torch.Generator().manual_seed(3)).abs()
    data[16:32] = -data[16:32]

    def make():
        pair = kind()
        return pair.model, pair.guide, Trace_ELBO(), None, data

    eager, eager_params, _ = _run(make, "off", shuffle=False)
    with caplog.at_level(logging.WARNING, logger="ppdgm.inference.compiled"):
        replayed, params, engine = _run(make, "replay", shuffle=False)
    assert reason in engine.compiled_players["svi"]
    assert reason in caplog.text
    assert replayed == eager
    assert torch.equal(params["loc"], eager_params["loc"])


class _Guarded:
    """A branch on a value that holds on most batches and not on some: a guard."""

    def model(self, x):
        loc = pyro.param("loc", torch.tensor(0.0))
        with pyro.plate("data", len(x)):
            pyro.sample("noise", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(loc, 1.0), obs=x)

    def guide(self, x):
        scale = 2.0 if x.min() > -2.5 else 1.0
        with pyro.plate("data", len(x)):
            pyro.sample("noise", dist.Normal(0.0, scale))


def test_a_branch_on_a_value_is_a_guard_and_a_step_it_fails_runs_eagerly():
    data = torch.randn(48, generator=torch.Generator().manual_seed(3)).clamp(min=-2.0)
    data[40] = -3.0  # the last batch of each epoch takes the other branch

    def make():
        pair = _Guarded()
        return pair.model, pair.guide, Trace_ELBO(), None, data

    # Epoch 0: the first batch finds the parameters, the second is traced, the third misses;
    # epoch 1: two replays and a miss.
    eager, eager_params, _ = _run(make, "off", epochs=2, shuffle=False)
    replayed, params, engine = _run(make, "replay", epochs=2, shuffle=False)
    assert engine.compiled_players["svi"] == "graph"  # two misses: not given up
    graph = next(iter(engine._graphs._graphs["svi"].values()))
    assert graph.expected == (True,) and graph.misses == 2
    # The random draws of a missed replay were put back: the run draws as the eager one does.
    torch.testing.assert_close(torch.tensor(replayed), torch.tensor(eager), rtol=1e-6, atol=0)
    torch.testing.assert_close(params["loc"], eager_params["loc"], rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["enumerated, shape-asserting",
                                  "semi-supervised-VAE shape, enumerated class"])
def test_enumerated_programs_replay_as_graphs(name):
    # TraceEnum_ELBO branches on whether every enumerated probability is positive: a guard.
    program = programs()[name]()
    pyro.clear_param_store()
    config = TrainConfig(epochs=3, batch_size=program.batch_size, lr=0.01, seed=0, device="cpu",
                         progress=False, shuffle=False, compile="replay")
    engine = Engine(program.model, program.guide, program.objective, config=config)
    engine.fit(program.data())
    assert engine.compiled_players == {"svi": "graph"}


def test_a_shorter_last_batch_gets_its_own_graph():
    data = BITS[:40]  # batches of 16, 16 and 8

    def make():
        model, guide, objective, players, _ = _vae("elbo")()
        return model, guide, objective, players, data

    eager, _, _ = _run(make, "off")
    replayed, _, engine = _run(make, "replay")
    assert engine._graphs.traces == {"svi": 2}
    torch.testing.assert_close(torch.tensor(replayed), torch.tensor(eager), rtol=1e-5, atol=1e-5)


def test_compile_is_checked():
    with pytest.raises(ValueError, match="compile: expected True, False or one of"):
        TrainConfig(compile="fast")


# -------------------------------------------------------- resume, checkpoints and the guard


@pytest.mark.parametrize("first, second", [("replay", "replay"), ("off", "replay"),
                                           ("replay", "off")])
def test_a_run_resumes_bit_for_bit_across_modes(tmp_path, first, second):
    _, whole, _ = _run(_vae("elbo"), "replay", epochs=3)
    _run(_vae("elbo"), first, epochs=3, out_dir=str(tmp_path), max_steps=7)
    _, resumed, _ = _run(_vae("elbo"), second, epochs=3, out_dir=str(tmp_path), resume=True)
    for name in whole:
        assert torch.equal(resumed[name], whole[name]), name


@pytest.mark.filterwarnings("ignore:Encountered NaN")  # Pyro's own notice, in the eager run
def test_the_guard_names_the_same_step_in_either_mode():
    def make():
        def model(x):
            # Unconstrained, and pushed down by every step: it crosses zero after a few.
            scale = pyro.param("scale", torch.tensor(0.05))
            with pyro.plate("data", len(x)):
                pyro.sample("x", dist.Normal(0.0, scale), obs=x)

        return model, lambda x: None, Trace_ELBO(), None, torch.zeros(64)

    messages = []
    for mode in ("off", "replay"):
        with pytest.raises(NonFiniteLossError) as err:
            _run(make, mode, epochs=50)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "at step" in messages[0]


def test_a_setting_that_changes_every_step_ends_in_eager_steps(caplog):
    # An objective that counts its calls in a plain attribute has a new key on every step:
    # tracing each step would be far slower than running it, so the player runs eagerly.
    class Counting(Trace_ELBO):
        def differentiable_loss(self, model, guide, *args, **kwargs):
            self.calls = getattr(self, "calls", 0) + 1
            return super().differentiable_loss(model, guide, *args, **kwargs)

    def make():
        vae = VAE(x_shape=(16,), z_dim=3, hidden=(8,))
        return vae.model, vae.guide, Counting(), None, BITS

    eager, _, _ = _run(make, "off", epochs=10)
    with caplog.at_level(logging.WARNING, logger="ppdgm.inference.compiled"):
        replayed, _, engine = _run(make, "replay", epochs=10)
    assert engine.compiled_players["svi"].startswith("eager: it was traced anew on 16 of")
    torch.testing.assert_close(torch.tensor(replayed), torch.tensor(eager), rtol=1e-5, atol=1e-5)
