"""Nothing hung, nothing silently wrong: bad inputs end in an error naming the argument, a
diverging run stops, a malformed checkpoint is a CheckpointError, and a fuzz of the public API
and the command line never gets past the documented error classes."""

import math
import re
import shutil
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyro.infer import MCMC, Trace_ELBO

from ppdgm import (
    GAN,
    RBM,
    VAE,
    BernoulliMixture,
    CheckpointError,
    Diffusion,
    DiffusionConfig,
    DivergedError,
    Engine,
    GANConfig,
    Gibbs,
    MixtureConfig,
    NonFiniteLossError,
    Player,
    RBMConfig,
    SBNConfig,
    SigmoidBeliefNet,
    TrainConfig,
    VAEConfig,
    build_player_objective,
    estimate_log_likelihood,
    expectation_maximization,
    load_checkpoint,
    load_dataset,
    to_inference_data,
)
from ppdgm.cli import main
from ppdgm.inference.checkpoint import save_checkpoint
from ppdgm.recipes import load_trained_model

# (what, call, error class, the message's start: the argument it names)
GAPS = [
    ("Diffusion(hidden=int)", lambda: Diffusion(DiffusionConfig(x_shape=(2,), hidden=256)),
     TypeError, "hidden:"),
    ("exact log p(x) of a wide SBN", lambda: SigmoidBeliefNet(SBNConfig(
        x_shape=(4,), layers=(40,))).exact_log_marginal(torch.zeros(2, 4)), ValueError, "layers:"),
    ("empty VAE batch", lambda: VAE(VAEConfig(x_shape=(4,), z_dim=1, hidden=(3,))).model(
        torch.zeros(0, 4)), ValueError, "x:"),
    ("empty SBN batch", lambda: SigmoidBeliefNet(SBNConfig(x_shape=(4,), layers=(2,))).model(
        torch.zeros(0, 4)), ValueError, "x:"),
    ("empty diffusion batch", lambda: Diffusion(DiffusionConfig(
        x_shape=(2,), hidden=(8,), timesteps=10)).model(torch.zeros(0, 2)), ValueError, "x:"),
    ("EM on non-binary data", lambda: expectation_maximization(BernoulliMixture(MixtureConfig(
        x_dim=4, components=2)), torch.rand(10, 4), iterations=2), ValueError, "x:"),
    ("seed=-1", lambda: TrainConfig(seed=-1), ValueError, "seed:"),
    ("lr=inf", lambda: TrainConfig(lr=math.inf), ValueError, "lr:"),
    ("shuffle='no'", lambda: TrainConfig(shuffle="no"), TypeError, "shuffle:"),
    ("grad_clip=nan", lambda: TrainConfig(grad_clip=math.nan), ValueError, "grad_clip:"),
    ("coords=5", lambda: to_inference_data(prior={"z": torch.zeros(3)}, coords=5), TypeError,
     "coords:"),
    ("load_trained_model(None)", lambda: load_trained_model(None), TypeError, "checkpoint:"),
    ("load_checkpoint(None)", lambda: load_checkpoint(None), TypeError, "path:"),
    ("a 3 x 2e9 layer", lambda: VAE(VAEConfig(x_shape=(4,), z_dim=10**9, hidden=(3,))),
     ValueError, "out_features:"),
    ("a 1e6 x 1e6 RBM", lambda: RBM(RBMConfig(visible=10**6, hidden=10**6)), ValueError,
     "hidden:"),
    ("T = 1e10", lambda: Diffusion(DiffusionConfig(x_shape=(2,), hidden=(8,),
                                                   timesteps=10**10)), ValueError, "timesteps:"),
    ("10^12 generated points", lambda: load_dataset("ring8", num_train=10**12), ValueError,
     "num_train:"),
]


@pytest.mark.parametrize("what, call, error, start", GAPS, ids=[g[0] for g in GAPS])
def test_each_input_gap_is_closed_with_an_error_naming_the_argument(what, call, error, start):
    with pytest.raises(error) as caught:
        call()
    assert str(caught.value).startswith(start), str(caught.value)


def _gan():
    return GAN(GANConfig(x_shape=(2,), z_dim=2, hidden=(4,)))


@pytest.mark.parametrize("estimator", ["log p(x)", "wake-sleep", "rws", "vimco"])
def test_importance_sampling_refuses_a_gan(estimator):
    gan = _gan()
    with pytest.raises(ValueError, match="model: a GAN has no likelihood"):
        if estimator == "log p(x)":
            estimate_log_likelihood(gan.model, gan.guide, torch.zeros(3, 2), num_samples=3)
        else:
            loss, players = build_player_objective(estimator, k=3, lr=1e-3)
            cfg = TrainConfig(epochs=1, batch_size=4, device="cpu", progress=False)
            Engine(gan.model, gan.guide, loss, players, cfg).fit(torch.randn(8, 2))


def test_log_likelihood_refuses_an_rbm_and_another_models_guide():
    rbm = RBM(RBMConfig(visible=4, hidden=2))
    with pytest.raises(ValueError, match="model: an RBM's log p"):
        estimate_log_likelihood(rbm.model, rbm.guide, torch.zeros(3, 4), num_samples=3)

    def model(x):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    def other_guide(x):
        pyro.sample("w", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match=re.escape("guide: proposes ['w'] but the model's latent "
                                                   "sites are ['z']")):
        estimate_log_likelihood(model, other_guide, torch.zeros(3), num_samples=3)


def test_gibbs_refuses_data_with_nan():
    sbn = SigmoidBeliefNet(SBNConfig(x_shape=(4,), layers=(2,)))
    mcmc = MCMC(Gibbs(sbn.model), num_samples=3, warmup_steps=1, disable_progbar=True)
    with pytest.raises(ValueError, match="args\\[0\\]: the data hold NaN"):
        mcmc.run(torch.tensor([[1.0, math.nan, 0.0, 1.0]]))


# ----------------------------------------------------------------- the engine's guards


def _one_param_run(tmp_path, loss, lr, **config):
    def model(x):
        pyro.param("p", torch.tensor(1.0))

    def guide(x):
        pass

    def objective(model, guide, x):
        model(x)
        return loss(pyro.param("p"), x)

    cfg = TrainConfig(epochs=3, batch_size=1, device="cpu", progress=False, checkpoint_every=1,
                      out_dir=str(tmp_path), **config)
    player = Player("svi", optimizer=lambda params: torch.optim.SGD(params, lr=lr))
    return Engine(model, guide, objective, [player], cfg)


def test_a_parameter_driven_to_inf_stops_the_run_before_it_is_checkpointed(tmp_path):
    pyro.clear_param_store()
    engine = _one_param_run(tmp_path, lambda p, x: (p * x) ** 2, lr=1e37)
    with pytest.raises(NonFiniteLossError, match="parameter of 'p' became NaN or Inf at step"):
        engine.fit(torch.full((4,), 3e18))
    saved = load_checkpoint(tmp_path / "checkpoint.pt") if (tmp_path / "checkpoint.pt").exists() else None
    if saved is not None:
        assert all(bool(torch.isfinite(v).all()) for v in saved["params"].values())


def test_an_infinite_gradient_is_never_applied(tmp_path):
    pyro.clear_param_store()
    engine = _one_param_run(tmp_path, lambda p, x: (p - x).abs().sqrt().sum(), lr=0.1)
    with pytest.raises(NonFiniteLossError, match="gradient of 'p' became NaN or Inf"):
        engine.fit(torch.ones(4))  # p == x: d sqrt|p - x| / dp is infinite
    assert pyro.param("p").item() == 1.0  # not updated with it


def test_a_loss_growing_by_orders_of_magnitude_stops_when_asked(tmp_path):
    pyro.clear_param_store()
    # SGD at lr 10 on (p x)^2 multiplies p by -19 each step: the loss grows 361-fold per step.
    engine = _one_param_run(tmp_path, lambda p, x: (p * x).square().sum(), lr=10.0, divergence=1e6)
    with pytest.raises(DivergedError, match="player 'svi' diverged at step .* more than 1e\\+06 times"):
        engine.fit(torch.ones(8))
    pyro.clear_param_store()
    quiet = _one_param_run(tmp_path / "off", lambda p, x: (p * x).sum() * 0 + 1.0, lr=1.0,
                           divergence=1e6)
    quiet.fit(torch.ones(2))  # a flat loss never trips it


FAMILIES = {
    "vae": ["--data", "bars-and-stripes", "--hidden", "8", "--z-dim", "2"],
    "sbn": ["--data", "bars-and-stripes", "--layers", "3"],
    "rbm": ["--data", "bars-and-stripes", "--hidden", "4"],
    "gan": ["--data", "ring8", "--num-samples", "20", "--hidden", "8"],
    "vae-gan": ["--data", "ring8", "--num-samples", "20", "--hidden", "8"],
    "diffusion": ["--data", "ring8", "--timesteps", "10", "--num-samples", "20",
                  "--bound-points", "10", "--hidden", "8"],
}


@pytest.mark.filterwarnings("ignore:Encountered NaN")  # Pyro's warning before the guard's error
@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_diverging_run_of_every_family_stops_with_one_line(family, tmp_path, capsys):
    out = tmp_path / family
    status = main(["fit", family, *FAMILIES[family], "--lr", "1e12", "--epochs", "30",
                   "--batch-size", "8", "--no-progress", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert re.search(r"diverged at step|became NaN or Inf|returned (nan|inf)", err), err
    if (out / "checkpoint.pt").exists():
        saved = load_checkpoint(out / "checkpoint.pt")
        assert all(bool(torch.isfinite(v).all()) for v in saved["params"].values())


# ----------------------------------------------------------------- malformed checkpoints


def _trained(tmp_path):
    pyro.clear_param_store()
    vae = VAE(VAEConfig(x_shape=(4,), z_dim=1, hidden=(3,), likelihood="gaussian"))
    cfg = TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False, out_dir=str(tmp_path))
    Engine(vae.model, vae.guide, Trace_ELBO(), config=cfg).fit(torch.randn(16, 4))
    return vae, cfg


@pytest.mark.parametrize("damage", [
    lambda s: s["rng"].update(torch=torch.zeros(3, dtype=torch.uint8)),
    lambda s: s["rng"].update(python=(3, (1, 2), None)),
    lambda s: s["optimizers"]["svi"]["state"].update({0: {"exp_avg": torch.zeros(7)}}),
    lambda s: s["optimizers"].update(svi={"state": {}, "param_groups": []}),
    lambda s: s.update(position={"epoch": "one", "batch": 0, "step": 2}),
    lambda s: s.update(position={"epoch": 1, "batch": -4, "step": 2}),
    lambda s: s.update(history={"columns": 3}),
    lambda s: s["modules"][0].update({"decoder.net.net.0.weight": torch.zeros(9, 9)}),
], ids=["rng-torch", "rng-python", "optimizer-state", "optimizer-groups", "position-type",
        "position-negative", "history", "module-shape"])
def test_every_malformed_entry_is_a_checkpoint_error_on_resume(tmp_path, damage):
    vae, cfg = _trained(tmp_path)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    damage(state)
    save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")},
                    tmp_path / "checkpoint.pt")
    cfg.epochs, cfg.resume = 2, True
    with pytest.raises(CheckpointError, match="resume: "):
        Engine(vae.model, vae.guide, Trace_ELBO(), config=cfg).fit(torch.randn(16, 4))


def test_weights_that_do_not_fit_the_recorded_model_are_a_checkpoint_error(tmp_path):
    out = tmp_path / "run"
    assert main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "1", "--hidden", "8",
                 "--z-dim", "2", "--no-progress", "--device", "cpu", "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.pt")
    state["model_spec"]["config"]["z_dim"] = 3
    save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")},
                    out / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="record or weights do not fit together"):
        load_trained_model(out / "checkpoint.pt", device="cpu")


@pytest.fixture(scope="module")
def trained_vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "1", "--hidden", "8",
                 "--z-dim", "2", "--no-progress", "--device", "cpu", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("poison, message", [
    (lambda w: w.fill_(float("nan")), "holds NaN or Inf"),
    (lambda w: w.fill_(float("inf")), "holds NaN or Inf"),
    (lambda w: w.double(), "is torch.float64 but the model's is torch.float32"),
    (lambda w: w.half(), "is torch.float16 but the model's is torch.float32"),
], ids=["nan", "inf", "float64", "float16"])
def test_a_checkpoint_with_unsound_weights_is_refused_naming_the_tensor(trained_vae_run, tmp_path,
                                                                       poison, message):
    # The digest proves the file is the one written; the weights must still be sound, on
    # loading a trained model and on resuming alike.
    out = tmp_path / "run"
    shutil.copytree(trained_vae_run, out)
    state = load_checkpoint(out / "checkpoint.pt")
    weights = state["modules"][0]
    name = next(n for n, v in weights.items() if v.is_floating_point() and v.dim() == 2)
    weights[name] = poison(weights[name].clone())
    save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")},
                    out / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=f"weight '{re.escape(name)}' {re.escape(message)}"):
        load_trained_model(out / "checkpoint.pt", device="cpu")
    code = main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "2", "--hidden", "8",
                 "--z-dim", "2", "--no-progress", "--device", "cpu", "--out", str(out),
                 "--resume"])
    assert code != 0


# ----------------------------------------------------------------- fuzzing

DOCUMENTED = (ValueError, TypeError, FileNotFoundError, FloatingPointError)
ODD = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                st.lists(st.integers(-3, 10**10), max_size=3).map(tuple))


def _named(err: BaseException, names) -> bool:
    return any(str(err).startswith(f"{n}:") for n in names)


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["epochs", "batch_size", "lr", "seed", "checkpoint_every",
                              "checkpoint_seconds", "max_steps", "grad_clip", "shuffle",
                              "drop_last", "validate", "precision", "divergence", "progress",
                              "out_dir", "resume"]),
       value=ODD)
def test_fuzz_train_config(field, value):
    try:
        TrainConfig(device="cpu", **{field: value})
    except DOCUMENTED as err:
        assert _named(err, [field]), str(err)


MODEL_FIELDS = {
    "vae": (VAE, VAEConfig, ["x_shape", "z_dim", "hidden", "likelihood", "activation", "arch"]),
    "sbn": (SigmoidBeliefNet, SBNConfig, ["x_shape", "layers", "baseline_hidden"]),
    "rbm": (RBM, RBMConfig, ["visible", "hidden", "init_scale"]),
    "diffusion": (Diffusion, DiffusionConfig, ["x_shape", "timesteps", "hidden", "schedule",
                                               "channels", "levels"]),
}


@settings(max_examples=150, deadline=20000, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(list(MODEL_FIELDS)), data=st.data())
def test_fuzz_model_configs(family, data):
    cls, config_cls, fields = MODEL_FIELDS[family]
    field = data.draw(st.sampled_from(fields))
    value = data.draw(ODD)
    try:
        cls(config_cls(**{field: value}))
    except DOCUMENTED as err:
        # A value can pass its own field's check and fail against another (x_shape vs arch).
        assert _named(err, fields + ["out_features", "in_features", "x_shape", "arch"]), str(err)


TOKENS = ["fit", "sample", "evaluate", "diagnose", "vae", "gan", "rbm", "--epochs", "--lr",
          "--batch-size", "--seed", "--data", "--hidden", "--k", "0", "-1", "nan", "inf", "1e40",
          "2", "ring8", "nowhere.npz", "--resume", "--out", "--z-dim", "--divergence", "x"]


@settings(max_examples=60, deadline=20000, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(argv=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=7))
def test_fuzz_the_command_line(argv, tmp_path_factory, capsys):
    capsys.readouterr()  # the fixture outlives one example: start each with nothing captured
    out = str(tmp_path_factory.mktemp("fuzz"))
    full = [*argv, "--out", out] if argv[0] == "fit" else argv
    if argv[0] == "fit":  # keep any run that does start tiny
        full += ["--max-steps", "1", "--no-progress", "--device", "cpu", "--epochs", "1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            status = main(full)
        except SystemExit as stop:  # argparse: usage errors exit 2 with its one-line message
            assert stop.code in (0, 2)
            return
    err = capsys.readouterr().err
    assert status in (0, 2), err
    assert "Traceback" not in err
    if status:
        assert len([line for line in err.splitlines() if line.strip()]) == 1, err


FIT_VALUES = {"--lr": ["0", "-1", "nan", "inf", "1e-3", "1e40"], "--batch-size": ["0", "-3", "1", "4"],
              "--epochs": ["0", "1", "-2"], "--seed": ["-1", "0", "99999999999"],
              "--divergence": ["0", "1", "0.5", "nan", "1e6"], "--k": ["0", "2"],
              "--hidden": ["0", "8", "x", "8,0"], "--z-dim": ["0", "2", "-1"],
              "--data": ["ring8", "bars-and-stripes", "nowhere.npz", "torchvision:NOPE"],
              "--max-steps": ["0", "1"], "--checkpoint-every": ["0", "1"],
              "--checkpoint-seconds": ["0", "-5", "nan", "inf", "0.5"]}


@settings(max_examples=30, deadline=30000, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(family=st.sampled_from(["vae", "gan", "diffusion", "sbn"]),
       flags=st.dictionaries(st.sampled_from(list(FIT_VALUES)), st.just(None), max_size=4),
       data=st.data())
def test_fuzz_fit_flags(family, flags, data, tmp_path_factory, capsys):
    capsys.readouterr()
    argv = ["fit", family, "--out", str(tmp_path_factory.mktemp("fit")), "--no-progress",
            "--device", "cpu", "--max-steps", "2", "--num-samples" if family != "vae" else "--k", "8"]
    if family == "diffusion":
        argv += ["--timesteps", "10", "--bound-points", "8"]
    for flag in flags:
        argv += [flag, data.draw(st.sampled_from(FIT_VALUES[flag]))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            status = main(argv)
        except SystemExit as stop:
            assert stop.code in (0, 2)
            return
    err = capsys.readouterr().err
    assert status in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
