"""Objectives, kernels and the shared training engine."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .engine import (
    CHECKPOINT_NAME,
    DivergedError,
    Engine,
    NonFiniteLossError,
    Preempted,
    TrainConfig,
)
from .history import History
from .players import Player, adam

__all__ = [
    "CHECKPOINT_NAME",
    "CheckpointError",
    "Engine",
    "History",
    "DivergedError",
    "NonFiniteLossError",
    "Player",
    "Preempted",
    "TrainConfig",
    "adam",
    "load_checkpoint",
    "save_checkpoint",
]
