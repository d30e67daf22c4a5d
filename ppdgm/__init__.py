"""ppdgm: deep generative models as Pyro probabilistic programs.

Every model is a Pyro model/guide pair; every way of training it is an objective that the one
engine (:class:`ppdgm.inference.Engine`) runs on any device.
"""

from .device import resolve_device
from .inference import (
    CheckpointError,
    Engine,
    History,
    NonFiniteLossError,
    Player,
    TrainConfig,
    adam,
    load_checkpoint,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "Engine",
    "History",
    "NonFiniteLossError",
    "Player",
    "TrainConfig",
    "__version__",
    "adam",
    "load_checkpoint",
    "resolve_device",
]
