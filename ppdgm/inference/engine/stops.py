"""Stopping between steps: a stop signal, and checkpoints that fall due by the clock.

A cluster scheduler sends SIGTERM before it reclaims a node, and torchrun forwards it to every
worker it stops. During :meth:`Engine.fit <ppdgm.inference.Engine.fit>` (when the run has an
``out_dir``) the first SIGTERM does not kill the process: the current step finishes, a checkpoint
is written, and :class:`Preempted` is raised, so that nothing done is lost and the next launch
(``resume="auto"``) continues exactly there. The bound on the time that takes is one step and
one checkpoint; a second SIGTERM kills the process as usual.

In a data-parallel run the processes must stop after the same step, and a checkpoint is a
collective (every rank's random state is gathered), so after each step they agree on what to do:
one all-reduce of a small integer (the largest request wins). A signal that reached any process
stops them all; rank 0's clock decides when a checkpoint is due by ``checkpoint_seconds``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["CHECKPOINT", "CONTINUE", "PREEMPTED_EXIT_STATUS", "STOP", "Preempted", "StopRequests"]

_LOG = logging.getLogger(__name__)

CONTINUE, CHECKPOINT, STOP = 0, 1, 2
#: What ``ppdgm fit`` exits with after a stop signal: sysexits' EX_TEMPFAIL ("try again later").
PREEMPTED_EXIT_STATUS = 75


class Preempted(Exception):  # noqa: N818 - the run was preempted; it did not fail
    """A stop signal ended the run after ``step`` steps, with a checkpoint at ``checkpoint``.

    Run the same training again with ``resume="auto"`` (``--resume auto``) to continue it.
    ``ppdgm`` exits with ``exit_status`` (75) when it ends a command.

    Examples:
        >>> stop = Preempted("SIGTERM", 40, "run/checkpoint.pt")
        >>> stop.exit_status, str(stop).split(";")[0]
        (75, 'stopped by SIGTERM after step 40')
    """

    exit_status = PREEMPTED_EXIT_STATUS

    def __init__(self, signal_name: str, step: int, checkpoint: str) -> None:
        super().__init__(f"stopped by {signal_name} after step {step}; the checkpoint {checkpoint} "
                         "holds it: run the same command with --resume auto to continue")
        self.signal_name = signal_name
        self.step = step
        self.checkpoint = checkpoint


class StopRequests:
    """What the loop should do after a step: go on, checkpoint, or checkpoint and stop.

    Used as a context manager around the training loop: inside it SIGTERM is caught (in the main
    thread only; elsewhere Python cannot install a handler and the signal keeps its default).

    Args:
        every_seconds: a checkpoint falls due this many seconds after the last one; ``None``
            never by the clock.
        catch_signals: catch SIGTERM (a run with nowhere to checkpoint lets it kill the process).
        group_device: in a data-parallel run, the device of the all-reduce that makes the
            processes agree (``None`` for a single process).
    """

    def __init__(self, every_seconds: float | None, *, catch_signals: bool,
                 group_device: torch.device | None) -> None:
        self.every_seconds = every_seconds
        self.catch_signals = catch_signals
        self.group_device = group_device
        self.signal_name: str | None = None
        self._previous: Any = None
        self._last = time.monotonic()

    def __enter__(self) -> StopRequests:
        self._last = time.monotonic()
        if self.catch_signals and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._caught)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _caught(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None:  # the second one: do what it would have done
            signal.signal(signum, self._previous if self._previous is not None else signal.SIG_DFL)
            self._previous = None
            os.kill(os.getpid(), signum)
            return
        self.signal_name = signal.Signals(signum).name
        _LOG.warning("%s: finishing this step, then writing a checkpoint and stopping (send it "
                     "again to stop at once)", self.signal_name)

    def checkpointed(self) -> None:
        """A checkpoint was just written: the clock starts again."""
        self._last = time.monotonic()

    def after_step(self, *, is_main: bool) -> int:
        """:data:`CONTINUE`, :data:`CHECKPOINT` or :data:`STOP`, the same on every process."""
        wanted = CONTINUE
        if self.signal_name is not None:
            wanted = STOP
        elif (is_main and self.every_seconds is not None
              and time.monotonic() - self._last >= self.every_seconds):
            wanted = CHECKPOINT
        if self.group_device is None:
            return wanted
        agreed = torch.tensor([wanted], dtype=torch.int32, device=self.group_device)
        dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
        decided = int(agreed.item())
        if decided == STOP and self.signal_name is None:
            self.signal_name = "SIGTERM (sent to another process)"
        return decided

    def stopping_together(self) -> None:
        """Wait, before :class:`Preempted` is raised, until every process has got here.

        Rank 0 is still writing the stop's checkpoint when the others would already exit. Leaving
        together keeps one process from tearing down its connections while a peer still uses
        them (gloo may then abort the peer, and torchrun reports the first exit status it sees,
        which should be the preemption's).
        """
        if self.group_device is not None:
            dist.barrier()
