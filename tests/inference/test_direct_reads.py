"""The engine reads network weights directly inside its steps, and nothing else changes.

After a player's first (recorded) run, a training step skips the ``param`` statement of each
weight the engine already trains (:mod:`ppdgm.inference.reads`). These tests check that the steps
are still the ones plain ``pyro.infer.SVI`` takes, that the statements are skipped only inside a
step and only for weights found as themselves, and that nothing is left behind.
"""

from __future__ import annotations

import pyro
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.poutine.messenger import Messenger

from ppdgm._pyro import local_params
from ppdgm.inference import Engine, TrainConfig
from ppdgm.inference.objectives.denoising import DenoisingLoss
from ppdgm.inference.reads import DirectReads
from ppdgm.models import VAE, Diffusion

LR = 0.01


class _ParamCounter(Messenger):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def _pyro_post_param(self, msg: dict) -> None:
        self.names.append(msg["name"])


def _counted(program, calls: list[list[str]]):
    def run(*args, **kwargs):
        with _ParamCounter() as counter:
            out = program(*args, **kwargs)
        calls.append(counter.names)
        return out
    return run


def _data() -> torch.Tensor:
    return (torch.rand(48, 6, generator=torch.Generator().manual_seed(1)) < 0.4).float()


def _vae() -> VAE:
    pyro.set_rng_seed(3)
    return VAE(x_shape=(6,), z_dim=2, hidden=(8,))


def _svi_params(module, model, guide, objective, data, batch, steps):
    pyro.set_rng_seed(0)
    losses = []
    with local_params():
        svi = SVI(model, guide, pyro.optim.Adam({"lr": LR}), objective)
        for i in range(steps):
            losses.append(svi.step(data[(i * batch) % len(data):][:batch]))
    return losses, {k: v.detach().clone() for k, v in module.state_dict().items()}


def _engine_params(module, objective, data, batch, epochs):
    config = TrainConfig(epochs=epochs, batch_size=batch, lr=LR, seed=0, device="cpu",
                         progress=False, shuffle=False)
    engine = Engine(module.model, module.guide, objective, config=config)
    history = engine.fit(data)
    assert engine._reads_directly  # the behaviour under test is on for these objectives
    return [r["loss"] for r in history.steps], {k: v.detach().clone()
                                                for k, v in module.state_dict().items()}


@pytest.mark.parametrize("family", ["vae", "diffusion"])
def test_steps_with_direct_reads_are_the_steps_pyro_svi_takes(family):
    data = _data() if family == "vae" else torch.randn(48, 2, generator=torch.Generator().manual_seed(2))
    build = _vae if family == "vae" else _seeded_diffusion
    objective = Trace_ELBO if family == "vae" else DenoisingLoss
    ours = build()
    theirs = build()
    theirs.load_state_dict(ours.state_dict())
    engine_losses, engine_state = _engine_params(ours, objective(), data, 16, 3)
    svi_losses, svi_state = _svi_params(theirs, theirs.model, theirs.guide, objective(), data, 16, 9)
    torch.testing.assert_close(torch.tensor(engine_losses), torch.tensor(svi_losses),
                               rtol=1e-5, atol=1e-5)
    for key, value in svi_state.items():
        torch.testing.assert_close(engine_state[key], value, rtol=1e-5, atol=1e-6)


def _seeded_diffusion() -> Diffusion:
    pyro.set_rng_seed(4)
    return Diffusion(x_shape=(2,), timesteps=20, hidden=(16, 16))


def test_statements_are_skipped_inside_steps_only():
    vae, data = _vae(), _data()
    model_calls: list[list[str]] = []
    seen_between: list[list[str]] = []

    def trace_between(engine, step):
        with local_params():
            trace = poutine.trace(vae.model).get_trace(data[:4])
        seen_between.append([n for n, s in trace.nodes.items() if s["type"] == "param"])

    engine = Engine(_counted(vae.model, model_calls), vae.guide, Trace_ELBO(), modules=[vae],
                    config=TrainConfig(epochs=2, batch_size=16, seed=0, progress=False),
                    step_callbacks=[trace_between])
    engine.fit(data)
    decoder = sorted(f"decoder.{n}" for n, _ in vae.decoder.named_parameters())
    assert sorted(model_calls[0]) == decoder  # the recorded first run announces every weight
    assert all(calls == [] for calls in model_calls[1:]) and len(model_calls) == 6
    assert all(sorted(seen) == decoder for seen in seen_between)  # a plain program between steps
    assert not any("weight" in vars(m) or "net" in vars(m) for m in vae.modules())


def test_an_objective_of_your_own_keeps_every_statement():
    vae, data = _vae(), _data()
    calls: list[list[str]] = []

    def my_elbo(model, guide, x):
        return Trace_ELBO().differentiable_loss(model, guide, x)

    engine = Engine(_counted(vae.model, calls), vae.guide, my_elbo, modules=[vae],
                    config=TrainConfig(epochs=1, batch_size=16, seed=0, progress=False))
    engine.fit(data)
    assert not engine._reads_directly
    assert len(calls) == 3 and all(len(c) == len(calls[0]) > 0 for c in calls)


def test_a_substituted_weight_keeps_its_statement_in_every_step():
    vae, data = _vae(), _data()
    name = "decoder.net.2.bias"
    zero = torch.zeros(6)
    calls: list[list[str]] = []
    model = _counted(poutine.substitute(vae.model, data={name: zero}), calls)
    engine = Engine(model, vae.guide, Trace_ELBO(), modules=[vae],
                    config=TrainConfig(epochs=2, batch_size=16, seed=0, progress=False))
    engine.fit(data)
    assert name in dict(vae.decoder.named_parameters(prefix="decoder"))
    assert all(name in c for c in calls)  # replaced in every step, as plain Pyro would
    assert all(len(c) == 1 for c in calls[1:])  # the other weights are read directly


def test_a_failing_step_leaves_no_shadow_behind():
    vae, data = _vae(), _data()
    runs = []

    def model(x):
        runs.append(1)
        if len(runs) == 3:
            raise RuntimeError("boom")
        return vae.model(x)

    engine = Engine(model, vae.guide, Trace_ELBO(), modules=[vae],
                    config=TrainConfig(epochs=2, batch_size=16, seed=0, progress=False))
    with pytest.raises(RuntimeError, match="boom"):
        engine.fit(data)
    assert not any(set(vars(m)) & (set(m._parameters) | set(m._modules)) for m in vae.modules())


def test_a_weight_assigned_inside_the_block_is_kept():
    vae = _vae()
    layer = vae.decoder.net[0]
    reads = DirectReads([vae], list(vae.parameters()))
    assert len(reads) > 0
    with reads:
        assert vars(layer)["weight"] is layer._parameters["weight"]
        layer.weight = torch.nn.Parameter(torch.zeros_like(layer.weight))
    assert "weight" not in vars(layer)
    assert torch.equal(layer.weight, torch.zeros_like(layer.weight))
