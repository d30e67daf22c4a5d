"""The shared training loop, one seam a file.

- :mod:`.config`: :class:`TrainConfig`, the errors that stop a run, what a resume may change;
- :mod:`.loop`: :class:`Engine`, which finds the players' parameters and runs the epochs and
  batches, asking the Pyro program (or a replayed graph, :mod:`ppdgm.inference.compiled`) for
  each player's loss;
- :mod:`.step`: one player's update from its loss or gradients (checks, clipping, optimizer,
  moving average);
- :mod:`.stops`: a SIGTERM that ends the run after a step and a checkpoint, and checkpoints
  due by the clock;
- :mod:`.state`: where a run stands, each player's state, the checkpoint and its checks on
  resuming.

Data-parallel training lives in :mod:`ppdgm.inference.distributed`.
"""

from .config import CHECKPOINT_NAME, DivergedError, NonFiniteLossError, TrainConfig
from .loop import Engine
from .stops import Preempted

__all__ = ["CHECKPOINT_NAME", "DivergedError", "Engine", "NonFiniteLossError", "Preempted",
           "TrainConfig"]
