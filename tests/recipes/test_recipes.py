"""The recipes' contract: a new family is a model, a recipe and one registry line; checkpoints
are opened once and find their recipe by name; the old ``ppdgm.runs*`` paths still import."""

import argparse
import dataclasses
import importlib
import warnings

import pytest
import torch

from ppdgm.cli import main
from ppdgm.inference import Engine
from ppdgm.inference.objectives import build_objective
from ppdgm.models import LinearGaussian, LinearGaussianConfig
from ppdgm.recipes import RECIPES, Recipe, checkpoints, recipe_for
from ppdgm.recipes.base import train_config
from ppdgm.recipes.run import finish_run, train_with_engine


class PPCARecipe(Recipe):
    """Probabilistic PCA as if it were a new family: everything it needs is here."""

    name = "ppca"
    help = "probabilistic PCA"
    epochs = 2
    models = {"ppca": (LinearGaussian, LinearGaussianConfig)}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--z-dim", type=int, default=1)

    def fit(self, args, dataset):
        train = train_config(args)
        config = LinearGaussianConfig(x_dim=dataset.event_shape[0], z_dim=args.z_dim)
        spec = {"name": "ppca", "config": dataclasses.asdict(config), "data": dataset.name}
        run = train_with_engine(dataset, train, lambda: LinearGaussian(config), lambda m: Engine(
            m.model, m.guide, build_objective("elbo", 1), config=train, model_spec=spec))
        return finish_run(run.out, {"model": "ppca", **run.run_metrics(train)})

    def draw(self, model, n, *, mean, seed):
        return model.model(num_samples=n).detach(), {}


@pytest.fixture
def ppca(monkeypatch):
    monkeypatch.setitem(RECIPES, "ppca", PPCARecipe())


def test_a_new_family_needs_only_its_recipe_and_one_registry_line(ppca, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "ppca", "--data", "ring8", "--batch-size", "64", "--no-progress",
                 "--device", "cpu", "--out", str(out)]) == 0
    assert "Trained a ppca on ring8" in capsys.readouterr().out
    checkpoint = str(out / "checkpoint.pt")
    assert recipe_for("ppca").name == "ppca"
    assert main(["sample", checkpoint, "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    assert main(["evaluate", checkpoint, "--k", "20", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "log p(x) per example (nats, K=20)" in printed


def test_evaluate_and_sample_read_the_checkpoint_once(tmp_path, monkeypatch):
    out = tmp_path / "vae"
    assert main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "1", "--hidden", "8",
                 "--z-dim", "2", "--no-progress", "--device", "cpu", "--out", str(out)]) == 0
    reads = []
    real = checkpoints.load_checkpoint
    monkeypatch.setattr(checkpoints, "load_checkpoint", lambda *a, **k: reads.append(a) or real(*a, **k))
    assert main(["evaluate", str(out / "checkpoint.pt"), "--k", "5", "--device", "cpu"]) == 0
    assert len(reads) == 1
    assert main(["sample", str(out / "checkpoint.pt"), "--n", "4",
                 "--out", str(tmp_path / "s.png")]) == 0
    assert len(reads) == 2


def test_an_unknown_family_in_a_checkpoint_is_refused_by_name():
    with pytest.raises(ValueError, match="checkpoint: no recipe reads models named 'flow'"):
        recipe_for("flow")


def test_only_diffusion_takes_sampler_options(tmp_path):
    opened_vae = checkpoints.OpenedCheckpoint(tmp_path, None, {}, RECIPES["vae"])
    with pytest.raises(ValueError, match="options: a vae checkpoint takes no sampling options"):
        checkpoints.sample_checkpoint(opened_vae, tmp_path / "s.png", sampler="ddim")


@pytest.mark.parametrize("old, name, new", [
    ("ppdgm.runs", "fit_vae", "ppdgm.recipes.vae"),
    ("ppdgm.runs", "load_trained_model", "ppdgm.recipes.checkpoints"),
    ("ppdgm.runs", "RunResult", "ppdgm.recipes.run"),
    ("ppdgm.runs_gan", "fit_gan", "ppdgm.recipes.gan"),
    ("ppdgm.runs_vaegan", "fit_vaegan", "ppdgm.recipes.vaegan"),
    ("ppdgm.runs_rbm", "sgd_momentum", "ppdgm.recipes.rbm"),
    ("ppdgm.runs_sbn", "fit_sbn", "ppdgm.recipes.sbn"),
    ("ppdgm.runs_mixture", "fit_mixture", "ppdgm.recipes.mixture"),
    ("ppdgm.runs_diffusion", "quantization_levels", "ppdgm.models.diffusion"),
    ("ppdgm.runs_compare", "compare_models", "ppdgm.recipes.compare"),
    ("ppdgm.runs_diagnose", "diagnose_checkpoint", "ppdgm.recipes.diagnose"),
])
def test_old_import_paths_still_work_and_warn(old, name, new):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"{old}.{name} moved: import it from {new}"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)


def test_an_old_path_without_the_name_says_where_things_went():
    module = importlib.import_module("ppdgm.runs_gan")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="moved to ppdgm.recipes.gan"):
            module.no_such_thing  # noqa: B018


def test_every_fit_records_the_library_versions(tmp_path):
    out = tmp_path / "mix"
    assert main(["fit", "mixture", "--data", "bars-and-stripes", "--iterations", "2",
                 "--components", "2", "--out", str(out)]) == 0
    import json

    versions = json.loads((out / "metrics.json").read_text())["versions"]
    assert versions["torch"] == torch.__version__


def test_the_closing_estimate_reads_a_fixed_subset_of_a_large_split(tmp_path):
    from ppdgm.data import load_dataset
    from ppdgm.inference import TrainConfig
    from ppdgm.recipes import fit_vae
    from ppdgm.recipes.run import evaluation_points

    ds = load_dataset("ring8", num_train=300, num_test=40)
    cfg = TrainConfig(epochs=1, batch_size=100, device="cpu", progress=False, out_dir=str(tmp_path))
    m = fit_vae(ds, cfg, model_overrides={"z_dim": 1, "hidden": (4,)}, eval_points=50).metrics
    assert (m["train_elbo_nats"]["points"], m["train_elbo_nats"]["of"]) == (50, 300)
    assert (m["test_elbo_nats"]["points"], m["test_elbo_nats"]["of"]) == (40, 40)
    x = torch.arange(300.0)
    first, again = evaluation_points(x, 50), evaluation_points(x, 50)
    assert torch.equal(first, again) and len(set(first.tolist())) == 50  # fixed, no repeats
    state = torch.get_rng_state()
    evaluation_points(x, 50)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is not touched
    with pytest.raises(ValueError, match="eval_points: expected an int >= 1"):
        evaluation_points(x, 0)
