"""The VAE-GAN as Pyro programs (sites, parameters, feature layers, configs), and `fit_vaegan` /
`ppdgm fit vae-gan` end to end on reduced budgets."""

import dataclasses
import json

import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import Predictive

from ppdgm._pyro import local_params
from ppdgm.cli import main
from ppdgm.data import load_dataset
from ppdgm.inference import TrainConfig, load_checkpoint
from ppdgm.models import MODELS, VAEGAN, VAEGANConfig, build_model
from ppdgm.models.vaegan import FEATURES, LABEL, LATENT, OBS
from ppdgm.recipes import fit_vaegan, load_trained_model


def _trace(fn, *args, **kwargs):
    with local_params():
        return poutine.trace(fn).get_trace(*args, **kwargs)


def _param_names(fn, *args):
    with local_params():
        return set(poutine.trace(fn, param_only=True).get_trace(*args).nodes)


def _sample_sites(trace):
    return {name for name, site in trace.nodes.items() if site["type"] == "sample"}


def test_model_trace_has_z_x_and_the_feature_likelihood():
    m = VAEGAN(x_shape=(2,), z_dim=3, hidden=(8, 4))
    x = torch.randn(5, 2)
    trace = _trace(m.model, x)
    assert _sample_sites(trace) == {"data", LATENT, OBS, FEATURES}
    z, x_tilde, feats = (trace.nodes[n] for n in (LATENT, OBS, FEATURES))
    assert z["value"].shape == (5, 3) and not z["is_observed"]
    with torch.no_grad():
        torch.testing.assert_close(x_tilde["value"], m.decoder(z["value"]))
        assert feats["is_observed"] and feats["fn"].event_shape == (4,)
        torch.testing.assert_close(feats["value"], m.features(x))           # obs = Dis_l(x)
        torch.testing.assert_close(feats["fn"].mean, m.features(x_tilde["value"]))
    assert float(feats["fn"].stddev.max()) == float(feats["fn"].stddev.min()) == 1.0
    # Generating: no data, no likelihood.
    assert _sample_sites(_trace(m.model, None, num_samples=4)) == {"data", LATENT, OBS}


def test_guide_is_the_encoder_and_discriminator_a_bernoulli_program():
    m = VAEGAN(x_shape=(2,), z_dim=2, hidden=(8,))
    x = torch.randn(6, 2)
    guide = _trace(m.guide, x)
    assert _sample_sites(guide) == {"data", LATENT}
    loc, scale = m.encode(x)
    torch.testing.assert_close(guide.nodes[LATENT]["fn"].base_dist.loc, loc)
    disc = _trace(m.discriminator, x)
    assert _sample_sites(disc) == {"data", LABEL}
    torch.testing.assert_close(disc.nodes[LABEL]["fn"].logits, m.discriminator_logits(x))
    for program in (m.guide, m.discriminator):
        with pytest.raises(ValueError, match="x: .* got None"):
            program(None)


def test_parameters_split_into_the_three_players():
    m = VAEGAN(x_shape=(2,), hidden=(8,), discriminator_hidden=(6, 5), feature_layer=0)
    x = torch.randn(3, 2)
    names = {n for n, _ in m.named_parameters()}
    groups = {p: {n for n in names if VAEGAN.owns(p)(n)} for p in ("encoder", "decoder", "discriminator")}
    assert groups["encoder"] == {f"encoder.{n}" for n, _ in m.encoder.named_parameters()}
    assert groups["discriminator"] == {f"discriminator_net.{n}"
                                       for n, _ in m.discriminator_net.named_parameters()}
    assert set().union(*groups.values()) == names and sum(map(len, groups.values())) == len(names)
    # The model reads the decoder and the *whole* discriminator (head included, though Dis_l is
    # its first layer); the guide reads only the encoder.
    assert _param_names(m.model, x) == groups["decoder"] | groups["discriminator"]
    assert _param_names(m.guide, x) == groups["encoder"]
    assert repr(VAEGAN.owns("decoder")) == "VAEGAN.owns('decoder')"
    with pytest.raises(ValueError, match="player: expected one of 'encoder', 'decoder'"):
        VAEGAN.owns("generator")


def test_likelihood_detaches_the_metric_but_features_does_not():
    m = VAEGAN(x_shape=(2,), hidden=(8,))
    x = torch.randn(4, 2)
    site = _trace(m.model, x).nodes[FEATURES]
    log_lik = site["fn"].log_prob(site["value"]).sum()
    disc = list(m.discriminator_net.parameters())
    assert all(g is None for g in torch.autograd.grad(log_lik, disc, allow_unused=True))
    assert all(g is not None for g in torch.autograd.grad(log_lik, list(m.decoder.parameters())))
    assert m.features(x).requires_grad


@pytest.mark.parametrize("layer, width", [(0, 6), (1, 5), (-1, 5), (-2, 6)])
def test_mlp_feature_layer_picks_a_hidden_layer(layer, width):
    m = VAEGAN(x_shape=(2,), hidden=(8,), discriminator_hidden=(6, 5), feature_layer=layer,
               activation="tanh")
    x = torch.randn(3, 2)
    net = m.discriminator_net.net
    with torch.no_grad():
        h = torch.tanh(net[0](x))
        expected = h if width == 6 else torch.tanh(net[2](h))
        torch.testing.assert_close(m.features(x), expected)
    assert m.feature_dim == width


@pytest.mark.parametrize("layer, dim", [(0, 4 * 4 * 4), (1, 8 * 2 * 2)])
def test_dcgan_vaegan_uses_a_convolution_as_the_metric(layer, dim):
    m = VAEGAN(x_shape=(1, 8, 8), arch="dcgan", z_dim=3, channels=(4, 8), feature_layer=layer)
    x = torch.rand(5, 1, 8, 8)
    assert m.features(x).shape == (5, dim) and m.feature_dim == dim
    if layer == 1:
        with torch.no_grad():
            torch.testing.assert_close(m.features(x), m.discriminator_net.features(x))
    trace = _trace(m.model, x)
    assert trace.nodes[OBS]["value"].shape == (5, 1, 8, 8)
    assert trace.nodes[FEATURES]["fn"].event_shape == (dim,)
    assert m.sample(2).shape == (2, 1, 8, 8) and m.reconstruct(x).shape == (5, 1, 8, 8)


def test_sample_reconstruct_and_predictive():
    m = VAEGAN(x_shape=(2,), z_dim=2, hidden=(8,))
    x = torch.randn(4, 2)
    assert m.sample(7).shape == (7, 2) and m.sample(3, mean=False).shape == (3, 2)
    with torch.no_grad():
        torch.testing.assert_close(m.reconstruct(x), m.decoder(m.encode(x)[0]))
    out = Predictive(m.model, num_samples=3)(None, num_samples=5)
    assert out[OBS].shape == (3, 5, 2) and out[LATENT].shape == (3, 5, 2)
    with pytest.raises(ValueError, match="n: expected an int >= 1"):
        m.sample(0)
    with pytest.raises(TypeError, match="mean: expected a bool"):
        m.sample(2, mean="yes")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"arch": "conv"}, ValueError, "arch: expected one of 'mlp', 'dcgan'"),
    ({"arch": "dcgan", "x_shape": (2,)}, ValueError, "x_shape: arch='dcgan' needs"),
    ({"discriminator_hidden": ()}, ValueError, "discriminator_hidden: the discriminator needs a hidden"),
    ({"hidden": ()}, ValueError, "hidden: the discriminator needs a hidden layer"),
    ({"feature_layer": 2}, ValueError, r"feature_layer: .* 2 hidden layer\(s\), .* \[-2, 1\], got 2"),
    ({"feature_layer": 1.0}, TypeError, "feature_layer: expected an int"),
    ({"z_dim": 0}, ValueError, "z_dim: expected an int >= 1"),
    ({"activation": "sigmoid"}, ValueError, "activation: expected one of"),
    ({"depth": 3}, ValueError, r"overrides: unknown VAEGANConfig fields \['depth'\]"),
])
def test_bad_configs_name_the_field(kwargs, error, message):
    with pytest.raises(error, match=message):
        VAEGAN(**{"hidden": (8, 8), **kwargs})


def test_bad_data_names_x():
    m = VAEGAN(x_shape=(2,), hidden=(8,))
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 2\)"):
        m.model(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="x: expected dtype torch.float32"):
        m.guide(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="x: contains NaN"):
        m.features(torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match="num_samples: needed when x is None"):
        m.model()


def test_registry_rebuilds_a_vaegan():
    assert MODELS["vae-gan"] == (VAEGAN, VAEGANConfig)
    cfg = VAEGANConfig(x_shape=(2,), z_dim=3, hidden=(8,), discriminator_hidden=(5, 4), feature_layer=0)
    original = VAEGAN(cfg)
    rebuilt = build_model("vae-gan", json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert rebuilt.config == cfg
    rebuilt.load_state_dict(original.state_dict())
    x = torch.randn(3, 2)
    torch.testing.assert_close(rebuilt.reconstruct(x), original.reconstruct(x))


# ---------------------------------------------------------------- runs and the command line

@pytest.fixture(scope="module")
def ring8():
    return load_dataset("ring8", num_train=192, num_test=32)


def _train(tmp_path, **kwargs):
    base = {"epochs": 1, "batch_size": 64, "device": "cpu", "progress": False,
            "out_dir": str(tmp_path / "run"), "lr": 1e-3}
    return TrainConfig(**{**base, **kwargs})


def test_fit_vaegan_on_ring8_writes_coverage_and_a_working_model(tmp_path, ring8):
    result = fit_vaegan(ring8, _train(tmp_path, epochs=2), hidden=(16, 16), gamma=0.5,
                        num_samples=100, figures=True)
    m = json.loads(result.files["metrics"].read_text())
    assert m == result.metrics
    assert m["model"] == "vae-gan" and m["gamma"] == 0.5 and m["feature_dim"] == 16
    # 3 batches per epoch, 2 epochs: every player steps on every batch.
    assert m["steps"] == 6 and m["player_steps"] == {"encoder": 6, "decoder": 6, "discriminator": 6}
    assert set(m["final_loss"]) == {"encoder", "decoder", "discriminator"}
    assert all(torch.isfinite(torch.tensor(v)) for v in m["final_loss"].values())
    for key in ("mode_coverage", "reconstruction_mode_coverage"):
        assert m[key]["num_modes"] == 8 and m[key]["num_samples"] == 100
    assert m["test_reconstruction_mse"] >= 0
    for name in ("samples", "loss_curve", "checkpoint", "history"):
        assert result.files[name].stat().st_size > 0, name
    model = load_trained_model(result.files["checkpoint"], device="cpu")
    assert type(model) is VAEGAN and model.config.hidden == (16, 16)
    assert model.sample(50).shape == (50, 2)
    spec = load_checkpoint(result.files["checkpoint"])["model_spec"]
    assert spec["name"] == "vae-gan" and spec["gamma"] == 0.5


def test_fit_vaegan_with_dcgan_on_images(tmp_path):
    ds = load_dataset("digits", num_train=16, num_test=8)
    result = fit_vaegan(ds, _train(tmp_path, batch_size=8, max_steps=1), arch="dcgan", z_dim=4,
                        loss="wasserstein-gp", feature_layer=0, num_samples=8, figures=True)
    m = result.metrics
    assert m["z_dim"] == 4 and m["feature_dim"] == 64 * 4 * 4 and m["gp_weight"] == 10.0
    assert "mode_coverage" not in m
    assert result.files["samples"].stat().st_size > 0
    assert result.files["reconstructions"].stat().st_size > 0


@pytest.mark.parametrize("kwargs, error, message", [
    ({"loss": "wgan"}, ValueError, "loss: expected one of"),
    ({"gamma": -1.0}, ValueError, "gamma: expected a finite float >= 0"),
    ({"arch": "conv"}, ValueError, "arch: expected one of 'mlp', 'dcgan'"),
    ({"feature_layer": 5}, ValueError, "feature_layer: the discriminator has 2 hidden layer"),
    ({"lr_discriminator": 0}, ValueError, "lr_discriminator: expected a positive number"),
    ({"num_samples": 0}, ValueError, "num_samples: expected an int >= 1"),
    ({"arch": "dcgan"}, ValueError, "x_shape: arch='dcgan' needs"),
])
def test_fit_vaegan_rejects_bad_arguments(tmp_path, ring8, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit_vaegan(ring8, _train(tmp_path), **kwargs)


def test_cli_fit_vaegan_writes_metrics(tmp_path, capsys):
    out = tmp_path / "vaegan"
    argv = ["fit", "vae-gan", "--data", "ring8", "--gamma", "0.1", "--z-dim", "2",
            "--hidden", "16", "--discriminator-hidden", "16,8", "--feature-layer", "0",
            "--epochs", "1", "--batch-size", "500", "--max-steps", "2", "--num-samples", "100",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "vae-gan" and metrics["data"] == "ring8"
    assert metrics["steps"] == 2 and metrics["lr"] == 2e-4 and metrics["gamma"] == 0.1
    assert metrics["feature_dim"] == 16 and metrics["mode_coverage"]["num_samples"] == 100
    assert "Trained a VAE-GAN on ring8" in printed and "/8 modes" in printed
    assert str(out / "metrics.json") in printed


def test_cli_fit_vaegan_bad_input_is_a_clear_error(tmp_path, capsys):
    argv = ["fit", "vae-gan", "--data", "ring8", "--gamma", "-2", "--out", str(tmp_path / "x"),
            "--no-progress"]
    assert main(argv) == 2
    assert "gamma: expected a finite float >= 0" in capsys.readouterr().err
