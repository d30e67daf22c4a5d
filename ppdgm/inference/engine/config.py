"""How a run is carried out (:class:`TrainConfig`) and how it stops when it must (the errors).

The settings a resumed run must share with the saved one, and those it may change, are listed
here beside the fields they name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..._files import check_folder_path
from ..._validation import check_choice, check_positive_int
from ...device import resolve_device
from ..compiled import check_compile
from ..ema import check_ema_decay

__all__ = ["CHECKPOINT_NAME", "MAY_CHANGE", "MUST_MATCH", "PRECISIONS", "VALIDATE_CHOICES",
           "DivergedError", "NonFiniteLossError", "TrainConfig"]

CHECKPOINT_NAME = "checkpoint.pt"
#: Resuming with other values of these would not continue the saved run exactly.
MUST_MATCH = ("batch_size", "seed", "shuffle", "drop_last", "lr", "grad_clip", "precision")
#: These only say how long, where and how visibly the run goes on.
MAY_CHANGE = ("epochs", "max_steps", "checkpoint_every", "checkpoint_seconds", "progress", "device",
              "validate", "compile", "divergence")
VALIDATE_CHOICES = ("first-epoch", "always", "never")
PRECISIONS = ("fp32", "bf16")


def _check_positive_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")



class NonFiniteLossError(FloatingPointError):
    """The objective returned NaN or Inf, or a step made a gradient or parameter so; nothing
    non-finite was checkpointed."""


class DivergedError(FloatingPointError):
    """A player's loss grew by orders of magnitude (``TrainConfig.divergence``): the run stops."""


@dataclass
class TrainConfig:
    """How a run is carried out (the model's own configuration lives with the model).

    Args:
        epochs: passes over the data.
        batch_size: examples per step.
        lr: learning rate of every player whose optimizer is left to the default (Adam).
        seed: seeds torch, Python, NumPy and the batch order; ``None`` leaves the RNGs alone.
        device: ``"auto" | "cpu" | "cuda" | "cuda:N" | "mps"``, resolved by :mod:`ppdgm.device`.
        out_dir: where checkpoints and the history go; ``None`` writes nothing.
        checkpoint_every: also checkpoint every this many steps (checkpoints are always written at
            the end of each epoch and of the run when ``out_dir`` is set).
        resume: ``True`` continues from ``out_dir/checkpoint.pt``, a path continues from that file.
            ``"auto"`` continues from ``out_dir/checkpoint.pt`` when there is one (refused, as
            with ``True``, when it holds another run) and starts afresh when there is none: the
            one command a launcher can repeat on every restart (``torchrun --max-restarts``).
            The continued run ends with the same parameters as an uninterrupted one. With an
            ``out_dir``, a SIGTERM during training (a scheduler's preemption; torchrun forwards
            it) finishes the current step, writes a checkpoint and raises
            :class:`~ppdgm.inference.engine.stops.Preempted` (``ppdgm fit`` exits with status
            75); the next launch with ``"auto"`` continues exactly there.
        max_steps: stop (and checkpoint) after this many steps in total, counting resumed ones.
        progress: show a tqdm bar (``tqdm.auto``: a widget in Jupyter, text in a terminal);
            ``None`` shows it when stderr is a terminal or the run is in a Jupyter kernel.
        grad_clip: clip each player's gradient norm to this value before its step.
        shuffle: draw the batches in a new random order each epoch.
        drop_last: drop a last batch shorter than ``batch_size``.
        data_on_device: move tensor data to the device once instead of batch by batch.
        validate: when Pyro's argument and support checks (and ppdgm models' input checks) run:
            ``"first-epoch"`` checks every batch once, during the first epoch, and then trains
            without them, which is what makes a step as fast as a hand-written PyTorch one;
            ``"always"`` keeps them on; ``"never"`` turns them off. A process that disabled
            Pyro's validation (``pyro.enable_validation(False)``) is never switched back on.
        precision: ``"fp32"`` or ``"bf16"``: the objective's forward pass runs under
            ``torch.autocast`` with bfloat16 (matrix products and convolutions in bf16, reductions
            and log-densities in fp32; parameters, gradients and optimizer state stay fp32). It
            pays on GPUs with bf16 units; on CPUs it is mostly slower. Losses differ from fp32 in
            the third significant digit, which the denoising and adversarial losses tolerate; for
            likelihood figures (ELBO, bounds) evaluate in fp32, as the runs do.
        distributed: data-parallel training in a process group launched by torchrun (see
            :mod:`ppdgm.inference.distributed`): ``batch_size`` is then the global batch, split
            among the processes; gradients are all-reduced by DDP; rank 0 alone writes
            checkpoints and histories and shows progress; every rank's random state is
            checkpointed, so a resumed run continues exactly.
        divergence: stop with :class:`DivergedError` when a player's loss exceeds this many
            times the size of its first loss (at least 1) in magnitude; ``None`` (the default, as
            with ``pyro.infer.SVI``) never stops a finite run. The ``ppdgm fit`` recipes set 1e6.
            Independently of it, a NaN or Inf loss, gradient or parameter always stops the run
            (:class:`NonFiniteLossError`) before anything non-finite is checkpointed.
        tensorboard: a folder to log the run to TensorBoard in (:mod:`ppdgm.inference.tracking`):
            each player's loss every step, epoch means, and sample grids of a model with
            ``sample(n)`` every 5 epochs. Needs the ``tensorboard`` package.
        ema: keep an exponential moving average of every trained weight at this decay (e.g.
            0.999; :mod:`ppdgm.inference.ema`), updated after each optimizer step. The average is
            checkpointed and resumed exactly, and written beside the weights so that loading a
            checkpoint (``ppdgm sample``, ``evaluate``) uses it; :meth:`Engine.ema_weights`
            puts it in place for a block. ``None`` keeps no average.
        compile: ``"replay"`` traces each player's loss and gradients once through the Pyro
            program and replays that graph on later steps, without running Pyro's effect
            handlers again (:mod:`ppdgm.inference.compiled`); ``"inductor"`` (or ``True``) also
            compiles the graph with ``torch.compile``; ``"off"`` (or ``False``, the default) runs
            every step eagerly. Graphs are traced only for steps that run without validation
            (so from the second epoch with ``validate="first-epoch"``), are kept per batch shape,
            and give the eager run's losses; a branch on a tensor's value is a guard (a step that
            branches otherwise runs eagerly); a program that reads a float into Python runs
            eagerly with a logged reason, as do data-parallel runs. With ``"inductor"`` a player
            whose optimizer is left to the default gets PyTorch's fused Adam (the same update to
            float rounding); the gradient checks and the moving average stay eager.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int | None = 0
    device: str = "auto"
    out_dir: str | None = None
    checkpoint_every: int | None = None
    checkpoint_seconds: float | None = None
    resume: bool | str = False
    max_steps: int | None = None
    progress: bool | None = None
    grad_clip: float | None = None
    shuffle: bool = True
    drop_last: bool = False
    data_on_device: bool = True
    validate: str = "first-epoch"
    precision: str = "fp32"
    distributed: bool = False
    divergence: float | None = None
    ema: float | None = None
    tensorboard: str | None = None
    compile: bool | str = False

    def __post_init__(self) -> None:
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        _check_positive_number("lr", self.lr)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise TypeError(f"seed: expected an int or None, got {type(self.seed).__name__}")
        if self.seed is not None and not 0 <= self.seed < 2**32:
            raise ValueError(f"seed: expected an int in [0, 2**32) (NumPy's range), got {self.seed}")
        for name in ("shuffle", "drop_last", "data_on_device", "distributed"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}: expected a bool, got {getattr(self, name)!r}")
        if self.progress is not None and not isinstance(self.progress, bool):
            raise TypeError(f"progress: expected a bool or None, got {self.progress!r}")
        if self.divergence is not None:
            _check_positive_number("divergence", self.divergence)
            if not self.divergence > 1:
                raise ValueError(f"divergence: expected a factor > 1 or None, got {self.divergence!r}")
        if self.tensorboard is not None:
            check_folder_path("tensorboard", self.tensorboard)
        if self.out_dir is not None:
            check_folder_path("out_dir", self.out_dir)
        if self.checkpoint_every is not None:
            check_positive_int("checkpoint_every", self.checkpoint_every)
        if self.checkpoint_seconds is not None:
            _check_positive_number("checkpoint_seconds", self.checkpoint_seconds)
        if self.max_steps is not None:
            check_positive_int("max_steps", self.max_steps)
        if self.grad_clip is not None:
            _check_positive_number("grad_clip", self.grad_clip)
        if not isinstance(self.resume, (bool, str, Path)):
            raise TypeError(f"resume: expected a bool or a path, got {type(self.resume).__name__}")
        if isinstance(self.resume, str) and not self.resume.strip():
            raise ValueError("resume: expected True, False or a checkpoint's path, got an empty "
                             "string")
        if (self.resume is True or self.resume == "auto") and self.out_dir is None:
            raise ValueError(f"resume: resume={self.resume!r} needs out_dir (or pass the "
                             "checkpoint's path)")
        check_ema_decay(self.ema)
        check_compile(self.compile)
        check_choice("validate", self.validate, VALIDATE_CHOICES)
        check_choice("precision", self.precision, PRECISIONS)
        resolve_device(self.device)  # fail at configuration time, not after data loading
