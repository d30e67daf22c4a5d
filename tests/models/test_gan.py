"""The GAN as a Pyro model/guide pair: sites, plates, packing, networks, configs."""

import dataclasses
import json

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import Predictive

from ppdgm._pyro import local_params
from ppdgm.models import GAN, MODELS, GANConfig, build_model
from ppdgm.models.gan import LABEL, LATENT, OBS
from ppdgm.models.nets import DCGANDiscriminator, DCGANGenerator


def _trace(fn, *args, **kwargs):
    with local_params():
        return poutine.trace(fn).get_trace(*args, **kwargs)


def _param_names(fn, *args):
    with local_params():
        return set(poutine.trace(fn, param_only=True).get_trace(*args).nodes)


def test_model_generates_x_deterministically_from_z_and_does_not_condition_on_x():
    gan = GAN(x_shape=(2,), z_dim=3, hidden=(8,))
    x = torch.full((5, 2), 7.0)
    trace = _trace(gan.model, x)
    z, site = trace.nodes[LATENT], trace.nodes[OBS]
    assert z["value"].shape == (5, 3) and z["fn"].event_shape == (3,)
    assert isinstance(z["fn"].base_dist, dist.Normal)
    torch.testing.assert_close(z["fn"].base_dist.loc, torch.zeros(5, 3))
    torch.testing.assert_close(z["fn"].base_dist.scale, torch.ones(5, 3))
    # x is G(z), whatever data was passed: the data only sets the batch size.
    with local_params():
        expected = gan.generator(z["value"])
    torch.testing.assert_close(site["value"], expected)
    assert not torch.equal(site["value"], x)
    assert site["infer"].get("_deterministic") is True
    assert [f.name for f in site["cond_indep_stack"]] == ["data"]
    # Nothing in the model's density depends on x: only z contributes (Delta of x at G(z) is 0).
    trace.compute_log_prob()
    torch.testing.assert_close(trace.log_prob_sum(), z["log_prob"].sum())


def test_model_needs_a_batch_size_and_checks_data():
    gan = GAN(x_shape=(2,), hidden=(4,))
    with pytest.raises(ValueError, match="num_samples: needed when x is None"):
        gan.model()
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 2\), got \(3, 3\)"):
        gan.model(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="num_samples: expected None or x's batch size 3"):
        gan.model(torch.zeros(3, 2), num_samples=4)
    with pytest.raises(TypeError, match="x: expected dtype torch.float32"):
        gan.model(torch.zeros(3, 2, dtype=torch.float64))


def test_guide_is_a_bernoulli_over_the_discriminators_logits():
    gan = GAN(x_shape=(2,), hidden=(8,))
    x = torch.randn(6, 2)
    site = _trace(gan.guide, x).nodes[LABEL]
    assert isinstance(site["fn"], dist.Bernoulli) and site["fn"].batch_shape == (6,)
    with local_params():
        expected = gan.discriminator(x).squeeze(-1)
    torch.testing.assert_close(site["fn"].logits, expected)
    torch.testing.assert_close(gan.discriminator_logits(x), expected)
    assert bool(((site["value"] == 0) | (site["value"] == 1)).all())
    assert [f.name for f in site["cond_indep_stack"]] == ["data"]
    with pytest.raises(ValueError, match="x: the discriminator needs a batch"):
        gan.guide(None)


def test_model_owns_the_generator_and_guide_the_discriminator():
    gan = GAN(x_shape=(2,), hidden=(8,))
    x = torch.zeros(4, 2)
    model_names, guide_names = _param_names(gan.model, x), _param_names(gan.guide, x)
    assert model_names == {f"generator.{n}" for n, _ in gan.generator.named_parameters()}
    assert guide_names == {f"discriminator.{n}" for n, _ in gan.discriminator.named_parameters()}


def test_pack_groups_consecutive_points_side_by_side():
    gan = GAN(x_shape=(2,), hidden=(8,), pack=3)
    assert gan.discriminator.in_features == 6
    x = torch.arange(12.0).reshape(6, 2)
    site = _trace(gan.guide, x).nodes[LABEL]
    assert site["fn"].batch_shape == (2,)  # the data plate runs over the 2 groups
    with local_params():
        expected = gan.discriminator(torch.tensor([[0.0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]))
    torch.testing.assert_close(site["fn"].logits, expected.squeeze(-1))
    with pytest.raises(ValueError, match="x: a GAN with pack=3 .* multiple of 3, got 5"):
        gan.guide(torch.zeros(5, 2))


def test_dcgan_pack_concatenates_images_as_channels():
    gan = GAN(x_shape=(1, 8, 8), arch="dcgan", z_dim=4, channels=(4, 8), pack=2)
    assert gan.discriminator.in_shape == (2, 8, 8)
    x = torch.rand(4, 1, 8, 8)
    with local_params():
        expected = gan.discriminator(torch.cat([x[0::2], x[1::2]], dim=1)).squeeze(-1)
    torch.testing.assert_close(gan.discriminator_logits(x), expected)
    assert gan.features(x).shape == (2, 8 * 2 * 2)


def test_predictive_returns_the_deterministic_x_site():
    gan = GAN(x_shape=(2,), hidden=(8,))
    out = Predictive(gan.model, num_samples=7)(None, num_samples=3)
    assert out[OBS].shape == (7, 3, 2) and out[LATENT].shape == (7, 3, 2)
    with local_params():
        torch.testing.assert_close(out[OBS], gan.generator(out[LATENT]))


def test_sample_shapes_and_validation():
    gan = GAN(x_shape=(3,), z_dim=2, hidden=())  # an affine generator
    assert gan.sample(4).shape == (4, 3)
    assert gan.sample(4, mean=False).shape == (4, 3)
    with pytest.raises(ValueError, match="n: expected an int >= 1"):
        gan.sample(0)
    with pytest.raises(TypeError, match="mean: expected a bool"):
        gan.sample(2, mean="yes")


def test_features_is_the_penultimate_layer():
    gan = GAN(x_shape=(2,), hidden=(8,), discriminator_hidden=(5, 3), activation="tanh")
    x = torch.randn(4, 2)
    feats = gan.features(x)
    assert feats.shape == (4, 3)
    with local_params():
        head = gan.discriminator.net[-1]
        torch.testing.assert_close(head(feats).squeeze(-1), gan.discriminator_logits(x))


def test_dcgan_generator_batch_norm_is_a_model_param_and_its_statistics_buffers():
    pyro.set_rng_seed(0)
    gan = GAN(x_shape=(1, 8, 8), arch="dcgan", z_dim=4, channels=(4, 8))
    names = _param_names(gan.model, torch.zeros(3, 1, 8, 8))
    assert "generator.net.2.weight" in names and "generator.net.2.bias" in names  # BatchNorm2d
    assert not any(n.startswith("discriminator") for n in names)
    bn = gan.generator.net[2]
    before = bn.running_mean.clone()
    x = gan.sample(1)  # training mode: batch statistics, even of a single image
    assert x.shape == (1, 1, 8, 8) and bool(((x > 0) & (x < 1)).all())
    assert not torch.equal(bn.running_mean, before)
    assert "generator.net.2.running_mean" in gan.state_dict()
    gan.eval()
    pyro.set_rng_seed(1)
    a = gan.sample(2)
    pyro.set_rng_seed(1)
    torch.testing.assert_close(gan.sample(3)[:2], a)  # running statistics: points independent


@pytest.mark.parametrize("cfg", [
    GANConfig(x_shape=(2,), hidden=(8, 4), discriminator_hidden=(16,), pack=2),
    GANConfig(x_shape=(1, 8, 8), arch="dcgan", z_dim=3, channels=(4, 8)),
])
def test_round_trip_through_json(cfg):
    assert MODELS["gan"] == (GAN, GANConfig)
    stored = json.loads(json.dumps({"name": "gan", "config": dataclasses.asdict(cfg)}))
    original = GAN(cfg)
    rebuilt = build_model(stored["name"], stored["config"])
    assert isinstance(rebuilt, GAN) and rebuilt.config == cfg
    rebuilt.load_state_dict(original.state_dict())
    x = torch.rand(2 * cfg.pack, *cfg.x_shape)
    torch.testing.assert_close(rebuilt.discriminator_logits(x), original.discriminator_logits(x))


@pytest.mark.parametrize("overrides, error, message", [
    ({"arch": "conv"}, ValueError, "arch: expected one of 'mlp', 'dcgan'"),
    ({"arch": "dcgan", "x_shape": (1, 6, 6)}, ValueError, "x_shape: arch='dcgan' needs"),
    ({"arch": "dcgan", "x_shape": (784,)}, ValueError, "x_shape: arch='dcgan' needs"),
    ({"pack": 0}, ValueError, "pack: expected an int >= 1, got 0"),
    ({"z_dim": 1.5}, TypeError, "z_dim: expected an int"),
    ({"hidden": (8, 0)}, ValueError, r"hidden: expected positive ints, got \(8, 0\)"),
    ({"hidden": 8}, TypeError, "hidden: expected a tuple of ints"),
    ({"discriminator_hidden": (-1,)}, ValueError, "discriminator_hidden: expected positive ints"),
    ({"channels": (4,)}, ValueError, "channels: expected 2 entries"),
    ({"activation": "softmax"}, ValueError, "activation: expected one of"),
    ({"x_shape": ()}, ValueError, "x_shape: expected at least one entry"),
    ({"zdim": 2}, ValueError, r"overrides: unknown GANConfig fields \['zdim'\]"),
])
def test_bad_configs_name_the_field(overrides, error, message):
    with pytest.raises(error, match=message):
        GAN(**overrides)


def test_dcgan_networks_validate_their_arguments():
    with pytest.raises(ValueError, match="output: expected one of 'sigmoid', 'tanh', 'identity'"):
        DCGANGenerator(2, (1, 8, 8), output="relu")
    with pytest.raises(TypeError, match="batch_norm: expected a bool"):
        DCGANGenerator(2, (1, 8, 8), batch_norm=1)
    with pytest.raises(ValueError, match="out_shape: expected .* divisible by 4"):
        DCGANGenerator(2, (1, 10, 10))
    with pytest.raises(ValueError, match=r"z: expected shape \(..., 2\), got \(3, 4\)"):
        DCGANGenerator(2, (1, 8, 8))(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="negative_slope: expected a float in"):
        DCGANDiscriminator((1, 8, 8), negative_slope=1.5)
    with pytest.raises(ValueError, match=r"x: expected shape \(..., 1, 8, 8\)"):
        DCGANDiscriminator((1, 8, 8))(torch.zeros(2, 2, 8, 8))
    gen = DCGANGenerator(3, (2, 8, 8), channels=(4, 4), output="tanh", batch_norm=False)
    out = gen(torch.randn(5, 7, 3))  # any leading batch dimensions
    assert out.shape == (5, 7, 2, 8, 8) and bool((out.abs() < 1).all())
    assert DCGANDiscriminator((2, 8, 8), out_features=3)(out).shape == (5, 7, 3)
