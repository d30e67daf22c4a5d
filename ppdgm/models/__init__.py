"""Model/guide pairs as PyroModules, and a registry to rebuild one from a stored config.

A checkpoint that records ``{"name": "vae", "config": dataclasses.asdict(cfg)}`` is enough to
rebuild its model with :func:`build_model` and then load the weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch

from .deep_vae import DeepVAE, DeepVAEConfig
from .denoisers import DenoisingMLP, DenoisingUNet
from .diffusion import Diffusion, DiffusionConfig
from .gan import GAN, GANConfig
from .linear_gaussian import LinearGaussian, LinearGaussianConfig
from .logistic_regression import LogisticRegression, LogisticRegressionConfig
from .mixture import BernoulliMixture, GaussianMixture, MixtureConfig
from .nade import MADE, NADE, AutoregressiveConfig
from .naive_bayes import NaiveBayes, NaiveBayesConfig
from .nets import MLP, ConvDecoder, ConvEncoder, DCGANDiscriminator, DCGANGenerator
from .rbm import RBM, RBMConfig
from .sbn import SBNConfig, SigmoidBeliefNet
from .vae import VAE, VAEConfig
from .vaegan import VAEGAN, VAEGANConfig

__all__ = [
    "MODELS",
    "DeepVAE",
    "DeepVAEConfig",
    "MADE",
    "NADE",
    "AutoregressiveConfig",
    "MLP",
    "BernoulliMixture",
    "GaussianMixture",
    "MixtureConfig",
    "ConvDecoder",
    "ConvEncoder",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DenoisingMLP",
    "DenoisingUNet",
    "Diffusion",
    "DiffusionConfig",
    "GAN",
    "GANConfig",
    "LinearGaussian",
    "LinearGaussianConfig",
    "LogisticRegression",
    "LogisticRegressionConfig",
    "NaiveBayes",
    "NaiveBayesConfig",
    "RBM",
    "RBMConfig",
    "SBNConfig",
    "SigmoidBeliefNet",
    "VAE",
    "VAEConfig",
    "VAEGAN",
    "VAEGANConfig",
    "build_from_config",
    "build_model",
]

#: Model name -> (model class, config dataclass); the model is built as ``cls(config)``.
MODELS: dict[str, tuple[type, type]] = {
    "vae": (VAE, VAEConfig),
    "deep-vae": (DeepVAE, DeepVAEConfig),
    "linear-gaussian": (LinearGaussian, LinearGaussianConfig),
    "sbn": (SigmoidBeliefNet, SBNConfig),
    "bernoulli-mixture": (BernoulliMixture, MixtureConfig),
    "naive-bayes": (NaiveBayes, NaiveBayesConfig),
    "logistic-regression": (LogisticRegression, LogisticRegressionConfig),
    "gaussian-mixture": (GaussianMixture, MixtureConfig),
    "rbm": (RBM, RBMConfig),
    "gan": (GAN, GANConfig),
    "vae-gan": (VAEGAN, VAEGANConfig),
    "diffusion": (Diffusion, DiffusionConfig),
    "nade": (NADE, AutoregressiveConfig),
    "made": (MADE, AutoregressiveConfig),
}


def _tuples(value: object) -> object:
    # JSON and some checkpoint formats turn tuples into lists; configs use tuples throughout.
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def build_model(name: str, config: Mapping[str, object]) -> torch.nn.Module:
    """Build the registered model ``name`` from a config mapping (e.g. ``dataclasses.asdict``).

    Examples:
        >>> import dataclasses
        >>> cfg = VAEConfig(x_shape=(4,), z_dim=2, hidden=(8,))
        >>> vae = build_model("vae", dataclasses.asdict(cfg))
        >>> vae.config == cfg
        True
    """
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"name: expected one of {', '.join(map(repr, MODELS))}, got {name!r}")
    if not isinstance(config, Mapping):
        raise TypeError(f"config: expected a mapping of field names, got {type(config).__name__}")
    model_cls, config_cls = MODELS[name]
    return build_from_config(model_cls, config_cls, config)


def build_from_config(model_cls: type, config_cls: type, config: Mapping[str, object]) -> torch.nn.Module:
    """``model_cls(config_cls(**config))``, refusing fields the config class does not have.

    Examples:
        >>> build_from_config(VAE, VAEConfig, {"x_shape": [4], "z_dim": 2, "hidden": [8]}).config.z_dim
        2
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config: expected a mapping of field names, got {type(config).__name__}")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise ValueError(
            f"config: unknown {config_cls.__name__} fields {unknown}; "
            f"expected some of {sorted(fields)}"
        )
    return model_cls(config_cls(**{k: _tuples(v) for k, v in config.items()}))
