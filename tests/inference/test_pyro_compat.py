"""The engine on plain Pyro programs: the same losses as ``pyro.infer.SVI``, step by step, and every
run resumed in a fresh process ending bit for bit where the uninterrupted run ends.

The programs live in ``pyro_programs.py``: batches that are namedtuples or ``PackedSequence`` s,
models that assert their enumeration and particle dimensions, Pyro's ``ReweightedWakeSleep`` and
``RenyiELBO``, ``TraceGraph_ELBO`` with decaying-average baselines kept in the param store, an
autoguide that initialises itself from the prior on its first call, a parameter created after
the first step, callbacks that change parameters, and a shuffling DataLoader without a generator.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyro
import pytest
import torch
from pyro.infer import SVI

from ppdgm.inference import Engine, TrainConfig

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from pyro_programs import batches, programs  # noqa: E402

PROGRAMS = programs()
LR = 0.05
# The order SVI is stepped in is the loader's own, which the engine replaces for a loader that
# shuffles without a generator (its order then follows the run's seed).
SVI_ORDER = [name for name in PROGRAMS if name != "unseeded shuffling DataLoader"]


def _stop_at(name: str) -> int:
    # At an epoch's end the callbacks' changes must be in the epoch's checkpoint; elsewhere mid-epoch.
    return 3 if name == "parameter-changing callbacks" else 4


def _store() -> dict[str, torch.Tensor]:
    store = pyro.get_param_store()
    return {name: store.get_param(name).detach().clone() for name in sorted(store.keys())}


def _engine_run(name: str, **settings):
    program = PROGRAMS[name]()
    pyro.clear_param_store()
    config = TrainConfig(epochs=program.epochs, batch_size=program.batch_size, lr=LR, seed=0,
                         device="cpu", progress=False, shuffle=False, **settings)
    engine = Engine(program.model, program.guide, program.objective, config=config,
                    callbacks=program.callbacks, step_callbacks=program.step_callbacks)
    history = engine.fit(program.data())
    return [row["loss"] for row in history.steps], _store()


def _svi_run(name: str):
    program = PROGRAMS[name]()
    steps = batches(program.data(), program.batch_size)  # before seeding: a loader draws seeds
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    svi = SVI(program.model, program.guide, pyro.optim.Adam({"lr": LR}), program.objective)
    losses, step = [], 0
    for epoch in range(program.epochs):
        for batch in steps:
            loss = svi.step(*batch)
            losses.append(loss[0] if isinstance(loss, tuple) else loss)
            for callback in program.step_callbacks:
                callback(None, step)
            step += 1
        for callback in program.callbacks:
            callback(None, epoch)
    return losses, _store()


@pytest.mark.parametrize("compile", ["off", "replay"])
@pytest.mark.parametrize("name", SVI_ORDER)
def test_the_engine_takes_svis_steps(name, compile):
    # With compile="replay" the steps after the first epoch (validated eagerly) replay traced
    # graphs, or run eagerly where the program cannot be traced: SVI's losses either way.
    engine_losses, engine_params = _engine_run(name, compile=compile)
    svi_losses, svi_params = _svi_run(name)
    assert len(engine_losses) == len(svi_losses) >= 6
    torch.testing.assert_close(torch.tensor(engine_losses), torch.tensor(svi_losses),
                               rtol=1e-5, atol=1e-5)
    assert engine_params.keys() == svi_params.keys()
    for key in svi_params:
        torch.testing.assert_close(engine_params[key], svi_params[key], rtol=1e-5, atol=1e-6)


_RESUME = """
import json, sys, torch, pyro
sys.path.insert(0, {here!r})
from pyro_programs import programs
from ppdgm.inference import Engine, TrainConfig
out = {out!r}
for name, folder in json.loads({folders!r}).items():
    program = programs()[name]()
    pyro.clear_param_store()
    config = TrainConfig(epochs=program.epochs, batch_size=program.batch_size, lr={lr}, seed=0,
                         device="cpu", progress=False, shuffle=False, out_dir=folder, resume=True)
    engine = Engine(program.model, program.guide, program.objective, config=config,
                    callbacks=program.callbacks, step_callbacks=program.step_callbacks)
    history = engine.fit(program.data())
    store = pyro.get_param_store()
    torch.save({{"losses": [r["loss"] for r in history.steps],
                "params": {{k: store.get_param(k).detach() for k in store.keys()}}}},
               folder + "/resumed.pt")
"""


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """Each program stopped part-way here, then resumed in one fresh process for all."""
    root = tmp_path_factory.mktemp("resume")
    folders = {}
    for index, name in enumerate(PROGRAMS):
        folder = root / f"run{index}"
        _engine_run(name, out_dir=str(folder), max_steps=_stop_at(name))
        folders[name] = str(folder)
    code = _RESUME.format(here=str(HERE), out=str(root), folders=json.dumps(folders), lr=LR)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: torch.load(Path(folder) / "resumed.pt", weights_only=True)
            for name, folder in folders.items()}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_a_run_resumed_in_a_fresh_process_ends_bit_for_bit(name, resumed):
    losses, params = _engine_run(name)
    result = resumed[name]
    assert result["losses"] == losses  # the history carries the first part's losses over
    assert sorted(result["params"]) == sorted(params)
    for key, value in params.items():
        assert torch.equal(result["params"][key], value), key
