"""Likelihood estimators that anneal: AIS over any Pyro program's latents and the BDMC sandwich."""

from .annealing import Annealing, sigmoid_schedule
from .bidirectional import BDMCResult, bdmc

__all__ = ["Annealing", "BDMCResult", "bdmc", "sigmoid_schedule"]
