"""Objectives beyond Pyro's own ELBOs, and the names the engine and the CLI know them by."""

from .adversarial import ADVERSARIAL_LOSSES, AdversarialLoss, gradient_penalty, guide_logits
from .base import MultiPlayerObjective, PlayerObjective
from .contrastive_divergence import ContrastiveDivergence
from .denoising import DenoisingLoss, DiffusionBound, variational_bound
from .em import EMResult, expectation_maximization, posterior_by_enumeration
from .iwae import IWAE
from .nvil import NVIL
from .registry import OBJECTIVES, build_objective
from .rws import ReweightedWakeSleep
from .vaegan import VAEGAN_PLAYERS, VAEGANLoss
from .vimco import VIMCO
from .wake_sleep import WakeSleep

__all__ = [
    "ADVERSARIAL_LOSSES",
    "AdversarialLoss",
    "ContrastiveDivergence",
    "DenoisingLoss",
    "DiffusionBound",
    "EMResult",
    "IWAE",
    "MultiPlayerObjective",
    "NVIL",
    "OBJECTIVES",
    "PlayerObjective",
    "ReweightedWakeSleep",
    "VAEGANLoss",
    "VAEGAN_PLAYERS",
    "VIMCO",
    "WakeSleep",
    "build_objective",
    "expectation_maximization",
    "gradient_penalty",
    "guide_logits",
    "posterior_by_enumeration",
    "variational_bound",
]
