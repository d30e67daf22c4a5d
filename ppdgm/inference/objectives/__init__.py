"""Objectives beyond Pyro's own ELBOs, and the names the engine and the CLI know them by."""

from .contrastive_divergence import ContrastiveDivergence
from .em import EMResult, expectation_maximization, posterior_by_enumeration
from .iwae import IWAE
from .registry import OBJECTIVES, build_objective
from .rws import ReweightedWakeSleep
from .vimco import VIMCO
from .wake_sleep import WakeSleep

__all__ = [
    "ContrastiveDivergence",
    "EMResult",
    "IWAE",
    "OBJECTIVES",
    "ReweightedWakeSleep",
    "VIMCO",
    "WakeSleep",
    "build_objective",
    "expectation_maximization",
    "posterior_by_enumeration",
]
