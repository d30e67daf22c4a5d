"""Objectives beyond Pyro's own ELBOs, and the names the engine and the CLI know them by."""

from .iwae import IWAE
from .registry import OBJECTIVES, build_objective
from .rws import ReweightedWakeSleep
from .vimco import VIMCO
from .wake_sleep import WakeSleep

__all__ = ["IWAE", "OBJECTIVES", "ReweightedWakeSleep", "VIMCO", "WakeSleep", "build_objective"]
