"""Objectives beyond Pyro's own ELBOs, and the names the engine and the CLI know them by."""

from .iwae import IWAE
from .registry import OBJECTIVES, build_objective

__all__ = ["IWAE", "OBJECTIVES", "build_objective"]
