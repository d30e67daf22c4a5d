"""ppdgm: deep generative models as Pyro probabilistic programs.

Every model is a Pyro model/guide pair; every way of training it is an objective that the one
engine (:class:`Engine`) runs on any device; every sampler is a ``pyro.infer.MCMC`` kernel or a
plain function; every result reaches ArviZ through :func:`to_inference_data`. What a tour needs is
importable from here:

    >>> from ppdgm import VAE, VAEConfig, Engine, TrainConfig, load_dataset
    >>> VAE(VAEConfig(x_shape=(4,), z_dim=2, hidden=(8,))).sample(3).shape
    torch.Size([3, 4])
"""

from ._moved import install as _install_moved_paths
from .data import DATASETS, Dataset, load_dataset
from .device import resolve_device
from .inference import (
    CheckpointError,
    DivergedError,
    Engine,
    History,
    NonFiniteLossError,
    Player,
    Preempted,
    TrainConfig,
    adam,
    load_checkpoint,
    save_checkpoint,
)
from .inference.ais import ais_log_partition, base_rate_visible_bias, rbm_log_likelihood
from .inference.coverage import coverage_for_dataset, mode_coverage
from .inference.evaluate import estimate_elbo, estimate_log_likelihood
from .inference.evaluation import bdmc, decoder_log_likelihood
from .inference.mcmc import DMALA, Compound, Gibbs, GibbsWithGradients, HMCGibbs, RBMGibbs, typed_samples
from .inference.objectives import (
    IWAE,
    NVIL,
    VIMCO,
    AdversarialLoss,
    ContrastiveDivergence,
    DenoisingLoss,
    MultiPlayerObjective,
    ReweightedWakeSleep,
    VAEGANLoss,
    WakeSleep,
    build_objective,
    expectation_maximization,
    variational_bound,
)
from .inference.objectives.registry import build_player_objective
from .inference.sampling import ancestral_samples, ddim_sample, ddpm_sample, sample_diffusion
from .models import (
    GAN,
    MADE,
    NADE,
    RBM,
    VAE,
    VAEGAN,
    AutoregressiveConfig,
    BernoulliMixture,
    DeepVAE,
    DeepVAEConfig,
    Diffusion,
    DiffusionConfig,
    GANConfig,
    GaussianMixture,
    LinearGaussian,
    LinearGaussianConfig,
    LogisticRegression,
    LogisticRegressionConfig,
    MixtureConfig,
    NaiveBayes,
    NaiveBayesConfig,
    RBMConfig,
    SBNConfig,
    SigmoidBeliefNet,
    VAEConfig,
    VAEGANConfig,
    build_model,
)
from .models.diffusion import diffusion_config_for

__version__ = "0.1.0"

_install_moved_paths()  # the old ppdgm.runs* import paths, with a DeprecationWarning

# ArviZ and matplotlib load only when a diagnostic is first asked for, so `import ppdgm` and the
# command line stay quick.
_LAZY = {"to_inference_data": "ppdgm.diagnostics", "psis_khat": "ppdgm.diagnostics",
         "amortization_gap": "ppdgm.diagnostics.amortization",
         "plot_amortization_gap": "ppdgm.diagnostics.amortization",
         "sbc": "ppdgm.diagnostics.calibration",
         "tarp": "ppdgm.diagnostics.tarp",
         "vsbc": "ppdgm.diagnostics.vsbc",
         "ecdf_uniformity_test": "ppdgm.diagnostics.uniformity",
         "fit_logistic_regression": "ppdgm.recipes.generative_discriminative",
         "semi_supervised_em": "ppdgm.recipes.generative_discriminative"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ppdgm' has no attribute {name!r}")

__all__ = [
    "DATASETS",
    "DMALA",
    "GAN",
    "MADE",
    "NADE",
    "IWAE",
    "NVIL",
    "RBM",
    "VAE",
    "VAEGAN",
    "VIMCO",
    "AdversarialLoss",
    "AutoregressiveConfig",
    "BernoulliMixture",
    "CheckpointError",
    "Compound",
    "ContrastiveDivergence",
    "Dataset",
    "DeepVAE",
    "DeepVAEConfig",
    "DenoisingLoss",
    "Diffusion",
    "DiffusionConfig",
    "Engine",
    "GANConfig",
    "GaussianMixture",
    "Gibbs",
    "GibbsWithGradients",
    "HMCGibbs",
    "History",
    "LinearGaussian",
    "LinearGaussianConfig",
    "LogisticRegression",
    "LogisticRegressionConfig",
    "MixtureConfig",
    "NaiveBayes",
    "NaiveBayesConfig",
    "MultiPlayerObjective",
    "DivergedError",
    "NonFiniteLossError",
    "Player",
    "Preempted",
    "RBMConfig",
    "RBMGibbs",
    "ReweightedWakeSleep",
    "SBNConfig",
    "SigmoidBeliefNet",
    "TrainConfig",
    "VAEConfig",
    "VAEGANConfig",
    "VAEGANLoss",
    "WakeSleep",
    "__version__",
    "adam",
    "ais_log_partition",
    "bdmc",
    "decoder_log_likelihood",
    "amortization_gap",
    "sbc",
    "tarp",
    "vsbc",
    "ecdf_uniformity_test",
    "ancestral_samples",
    "base_rate_visible_bias",
    "build_model",
    "build_objective",
    "build_player_objective",
    "coverage_for_dataset",
    "ddim_sample",
    "ddpm_sample",
    "diffusion_config_for",
    "estimate_elbo",
    "fit_logistic_regression",
    "estimate_log_likelihood",
    "expectation_maximization",
    "load_checkpoint",
    "load_dataset",
    "mode_coverage",
    "plot_amortization_gap",
    "psis_khat",
    "rbm_log_likelihood",
    "resolve_device",
    "sample_diffusion",
    "semi_supervised_em",
    "save_checkpoint",
    "to_inference_data",
    "typed_samples",
    "variational_bound",
]
