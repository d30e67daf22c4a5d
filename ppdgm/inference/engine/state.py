"""The run's state: where it stands, each player's parameters and optimizer, and the checkpoint.

A checkpoint is a dictionary of tensors and plain data (:func:`checkpoint_state`), read back
without running code from the file (:mod:`ppdgm.inference.checkpoint`); before a run continues
from one, :func:`check_resumable` refuses any that could not continue the saved run exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CheckpointError, capture_rng_state
from ..ema import WeightAverage
from ..history import History
from ..params import param_store_state
from ..players import Player
from .config import MAY_CHANGE, MUST_MATCH, TrainConfig

__all__ = ["PlayerState", "Position", "check_resumable", "checkpoint_state", "plain",
           "reset_grads", "saved_position"]

_LOG = logging.getLogger(__name__)


@dataclass
class Position:
    """Where a run stands."""

    epoch: int = 0
    batch: int = 0  # batches of `epoch` already done
    step: int = 0  # batches done over the whole run
    seconds: float = 0.0  # training time spent in `epoch` so far


@dataclass
class PlayerState:
    """One player's share of the run: its parameters, optimizer and scheduler, and its losses."""

    player: Player
    names: list[str] = field(default_factory=list)
    params: list[torch.Tensor] = field(default_factory=list)
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None
    # The name lists handed to the optimizer factory, then to add_param_group, in order: a resumed
    # run rebuilds the same optimizer from them before loading its state.
    groups: list[list[str]] = field(default_factory=list)
    started: bool = False  # whether the player's parameters were discovered by a run of its loss
    running: list[float] = field(default_factory=list)
    replica: Any = None  # DistributedDataParallel around the player's parameters
    first_loss: float | None = None  # what TrainConfig.divergence measures growth against


def reset_grads(state: PlayerState) -> None:
    """Clear a player's gradients before its step, as SVI does: a parameter the optimizer has
    stepped before gets a zero gradient, so that a step on which it is not used still moves it
    by its optimizer's momentum; one never stepped keeps none and stays put. The optimizer's own
    state says which, so a resumed run decides exactly as the uninterrupted one."""
    stepped = state.optimizer.state if state.optimizer is not None else {}
    for p in state.params:
        if p in stepped:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            else:
                p.grad.zero_()
        else:
            p.grad = None


def checkpoint_state(pos: Position, *, params: Mapping[str, torch.Tensor], store_names: list[str],
                     states: Sequence[PlayerState], modules: Sequence[torch.nn.Module],
                     history: History, batches_per_epoch: int, config: TrainConfig,
                     model_spec: dict[str, Any] | None, objective: Any,
                     ema: WeightAverage | None) -> dict[str, Any]:
    """Everything a resumed run needs to continue this one exactly, as tensors and plain data."""
    return {
        "position": {"epoch": pos.epoch, "batch": pos.batch, "step": pos.step,
                     "seconds": pos.seconds},
        "params": {n: p.detach() for n, p in params.items()},
        "param_store": param_store_state(store_names),
        "groups": {s.player.name: s.groups for s in states},
        "modules": [m.state_dict() for m in modules],
        "optimizers": {s.player.name: s.optimizer.state_dict()
                       for s in states if s.optimizer is not None},
        "schedulers": {s.player.name: s.scheduler.state_dict()
                       for s in states if s.scheduler is not None},
        "rng": capture_rng_state(),
        "history": history.state_dict(),
        "batches_per_epoch": batches_per_epoch,
        "train_config": plain(asdict(config)),
        "model_spec": model_spec,
        "objective": _objective_state(objective),
        **({} if ema is None else {"ema": ema.state_dict(),
                                   "ema_modules": _ema_overlays(ema, params, modules)}),
    }


def check_resumable(state: dict[str, Any], where: str, *, params: Mapping[str, torch.Tensor],
                    config: TrainConfig, model_spec: dict[str, Any] | None,
                    batches_per_epoch: int, announce: bool) -> None:
    """Refuse a resume that could not continue the saved run exactly (or at all); log the
    settings it changes (``announce``) that only say how long, where and how visibly it runs."""
    saved_params = state.get("params") if isinstance(state.get("params"), dict) else {}
    for name, leaf in params.items():  # another model first: it explains the rest
        other = saved_params.get(name)
        if isinstance(other, torch.Tensor) and other.shape != leaf.shape:
            raise CheckpointError(
                f"resume: parameter {name!r} has shape {tuple(other.shape)} in {where!r} but "
                f"{tuple(leaf.shape)} in the model: the checkpoint holds another model")
    saved = state.get("train_config") or {}
    now = plain(asdict(config))
    changed = [f"{k}={saved[k]!r} in the checkpoint, {now[k]!r} now" for k in MUST_MATCH
               if k in saved and saved[k] != now[k]]
    if changed:
        raise CheckpointError(
            f"resume: {where!r} was written by a run with other settings ({'; '.join(changed)}); "
            "resume with the same ones, or start afresh in another out_dir")
    spec = state.get("model_spec")
    if spec is not None and model_spec is not None and spec != model_spec:
        raise CheckpointError(f"resume: {where!r} holds another model ({spec.get('name')!r} "
                              "with another configuration); resume with the same model")
    batches = state.get("batches_per_epoch")
    if batches is not None and batches != batches_per_epoch:
        raise CheckpointError(
            f"resume: the data gives {batches_per_epoch} batches per epoch, the run in "
            f"{where!r} had {batches} (other data, or another size); resume on the same data")
    position = state.get("position") or {}
    if not isinstance(position.get("batch"), int) or not \
            0 <= position["batch"] < batches_per_epoch:
        raise CheckpointError(f"resume: {where!r} stopped at batch {position.get('batch')!r} of "
                              f"an epoch of {batches_per_epoch} batches")
    accepted = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in MAY_CHANGE
                if k in saved and saved[k] != now[k]]
    if accepted and announce:
        _LOG.warning("resume: continuing %s with %s", where, ", ".join(accepted))


def saved_position(state: dict[str, Any], where: str) -> Position:
    """The position a checkpoint stopped at, checked."""
    pos = state.get("position")
    fields = ("epoch", "batch", "step")
    if not isinstance(pos, dict) or not all(
            isinstance(pos.get(k), int) and not isinstance(pos.get(k), bool) and pos[k] >= 0
            for k in fields) or not isinstance(pos.get("seconds", 0.0), (int, float)):
        raise CheckpointError(f"resume: {where!r} has a malformed position {pos!r}")
    return Position(pos["epoch"], pos["batch"], pos["step"], float(pos.get("seconds", 0.0)))


def plain(value: Any) -> Any:
    """``value`` with paths as strings and tuples as lists, as a checkpoint stores settings."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _objective_state(objective: Any) -> Any:
    # Objectives that carry state between steps (persistent chains of PCD) expose state_dict().
    state_dict = getattr(objective, "state_dict", None)
    return state_dict() if callable(state_dict) else None


def _ema_overlays(ema: WeightAverage, params: Mapping[str, torch.Tensor],
                  modules: Sequence[torch.nn.Module]) -> list[dict[str, torch.Tensor]]:
    # Each module's entries with their averages, by state-dict key, for a loader that knows
    # the module and not the engine's parameter names.
    by_leaf = {id(leaf): name for name, leaf in params.items()}
    overlays = []
    for module in modules:
        overlay = {}
        for key, value in module.state_dict(keep_vars=True).items():
            name = by_leaf.get(id(value))
            if name is not None and name in ema.shadows:
                overlay[key] = ema.shadows[name].detach()
        overlays.append(overlay)
    return overlays
