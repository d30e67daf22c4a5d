"""Rebuilding models from the config a checkpoint stores."""

import dataclasses
import json

import pytest
import torch

from ppdgm.models import MODELS, VAE, LinearGaussianConfig, VAEConfig, build_model


@pytest.mark.parametrize(
    "cfg",
    [
        VAEConfig(x_shape=(4,), z_dim=2, hidden=(8, 4)),
        VAEConfig(x_shape=(1, 8, 8), arch="conv", likelihood="gaussian", obs_scale=0.3),
        VAEConfig(x_shape=(2,), hidden=(), likelihood="gaussian"),
    ],
)
def test_vae_round_trip_through_json(cfg):
    stored = json.loads(json.dumps({"name": "vae", "config": dataclasses.asdict(cfg)}))
    assert isinstance(stored["config"]["x_shape"], list)  # what JSON gives back
    original = VAE(cfg)
    rebuilt = build_model(stored["name"], stored["config"])
    assert isinstance(rebuilt, VAE) and rebuilt.config == cfg
    rebuilt.load_state_dict(original.state_dict())
    x = torch.zeros(2, *cfg.x_shape)
    torch.testing.assert_close(rebuilt.reconstruct(x), original.reconstruct(x))


def test_every_registered_model_builds_from_its_default_config():
    assert "vae" in MODELS
    for name, (cls, config_cls) in MODELS.items():
        model = build_model(name, dataclasses.asdict(config_cls()))
        assert type(model) is cls
    lg = build_model("linear-gaussian", {"x_dim": 4, "z_dim": 2})
    assert lg.config == LinearGaussianConfig(x_dim=4, z_dim=2)


def test_bad_registry_arguments():
    with pytest.raises(ValueError, match="name: expected one of 'vae'.*got 'no-such-model'"):
        build_model("no-such-model", {})
    with pytest.raises(ValueError, match=r"config: unknown VAEConfig fields \['depth', 'zdim'\]"):
        build_model("vae", {"zdim": 2, "depth": 3})
    with pytest.raises(TypeError, match="config: expected a mapping"):
        build_model("vae", [("z_dim", 2)])
    with pytest.raises(ValueError, match="z_dim"):
        build_model("vae", {"z_dim": -1})
