"""The one training loop every ppdgm model runs on.

``Engine(model, guide, objective, players, config).fit(data)`` trains a model/guide pair on any
device with any objective that ``pyro.infer.SVI`` accepts: an ``ELBO`` instance, or a callable
``loss(model, guide, *batch)`` returning a loss tensor, or a mapping ``{player name: loss}``
when several players take turns (generator/discriminator, wake/sleep).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import ELBO
from pyro.infer.util import is_validation_enabled
from tqdm.auto import tqdm

from .._pyro import built_for_local_params, forget_stale_params, local_params
from .._validation import check_choice, check_positive_int
from ..device import resolve_device
from .batches import BatchFeed
from .checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from .distributed import (
    DistributedContext,
    all_reduce_scalar,
    distributed_device,
    gather_objects,
    init_distributed,
    loss_reduction,
    replicate,
)
from .history import History
from .params import DiscoveredParams, discover_params, owning_modules
from .players import Player, adam

__all__ = ["Engine", "TrainConfig", "NonFiniteLossError", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"
VALIDATE_CHOICES = ("first-epoch", "always", "never")
PRECISIONS = ("fp32", "bf16")


class NonFiniteLossError(FloatingPointError):
    """The objective returned NaN or Inf; the parameters were not updated with it."""


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
            The continued run ends with the same parameters as an uninterrupted one.
        max_steps: stop (and checkpoint) after this many steps in total, counting resumed ones.
        progress: show a tqdm bar; ``None`` shows it only when stderr is a terminal.
        grad_clip: clip each player's gradient norm to this value before its step.
        shuffle, drop_last: batch order and whether a last short batch is dropped.
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
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int | None = 0
    device: str = "auto"
    out_dir: str | None = None
    checkpoint_every: int | None = None
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

    def __post_init__(self) -> None:
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ValueError(f"lr: expected a positive number, got {self.lr!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise TypeError(f"seed: expected an int or None, got {type(self.seed).__name__}")
        if self.checkpoint_every is not None:
            check_positive_int("checkpoint_every", self.checkpoint_every)
        if self.max_steps is not None:
            check_positive_int("max_steps", self.max_steps)
        if self.grad_clip is not None and not (
            isinstance(self.grad_clip, (int, float)) and self.grad_clip > 0
        ):
            raise ValueError(f"grad_clip: expected a positive number or None, got {self.grad_clip!r}")
        if not isinstance(self.resume, (bool, str, Path)):
            raise TypeError(f"resume: expected a bool or a path, got {type(self.resume).__name__}")
        if self.resume is True and self.out_dir is None:
            raise ValueError("resume: resume=True needs out_dir (or pass the checkpoint's path)")
        check_choice("validate", self.validate, VALIDATE_CHOICES)
        check_choice("precision", self.precision, PRECISIONS)
        resolve_device(self.device)  # fail at configuration time, not after data loading


@dataclass
class _Position:
    epoch: int = 0
    batch: int = 0  # batches of `epoch` already done
    step: int = 0  # batches done over the whole run
    seconds: float = 0.0  # training time spent in `epoch` so far


@dataclass
class _PlayerState:
    player: Player
    names: list[str]
    params: list[torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    running: list[float] = field(default_factory=list)
    replica: Any = None  # DistributedDataParallel around the player's parameters


class Engine:
    """Train a model/guide pair: device placement, players, checkpoints, exact resume, history.

    Args:
        model, guide: Pyro callables of the same signature, called with each batch's tensors as
            positional arguments (PyroModules, their bound methods, or plain functions that use
            ``pyro.module``/``pyro.param``).
        objective: an ``ELBO`` (e.g. ``Trace_ELBO()``) or a callable ``loss(model, guide, *batch)``
            returning a tensor, or a ``{player name: tensor}`` mapping for several players. An
            objective with a method ``player_loss(name, model, guide, *batch)`` is asked for
            the loss of the player whose turn it is alone. An objective that keeps state between
            steps (the persistent chains of PCD) and offers ``state_dict()``/``load_state_dict()``
            has that state checkpointed and restored with the run. An objective that always
            calls the model and guide with extra keyword arguments names them in a
            ``call_kwargs`` mapping (the denoising loss: ``{"step": True}``), so that the one
            traced run that finds the parameters calls them the same way (a diffusion model's
            full chain would cost T network calls).
        players: who updates what; default one player ``"svi"`` owning every parameter. Players
            take turns in list order, and each turn evaluates the objective afresh, so a
            discriminator's update is seen by the generator's loss on the same batch.
        config: a :class:`TrainConfig`.
        modules: extra ``nn.Module`` s to move to the device and checkpoint (those owning ``model``
            and ``guide`` are found automatically).
        model_spec: plain data stored in checkpoints so that tools can rebuild the model, e.g.
            ``{"name": "vae", "config": {...}}``.
        callbacks: functions ``callback(engine, epoch)`` called after each epoch (after its
            checkpoint and its players' learning-rate schedulers), e.g. to evaluate on held-out
            data; what they print or store is their own.

    Example:
        >>> import pyro.distributions as dist
        >>> from pyro.infer import Trace_ELBO
        >>> def model(x):
        ...     loc = pyro.param("loc", torch.zeros(()))
        ...     with pyro.plate("data", x.shape[0]):
        ...         pyro.sample("x", dist.Normal(loc, 1.0), obs=x)
        >>> def guide(x):
        ...     pass
        >>> cfg = TrainConfig(epochs=100, batch_size=50, lr=0.1, device="cpu", progress=False)
        >>> history = Engine(model, guide, Trace_ELBO(), config=cfg).fit(torch.full((100,), 3.0))
        >>> abs(pyro.param("loc").item() - 3.0) < 0.1
        True
    """

    def __init__(
        self,
        model: Callable[..., Any],
        guide: Callable[..., Any],
        objective: ELBO | Callable[..., Any],
        players: Sequence[Player] | None = None,
        config: TrainConfig | None = None,
        *,
        modules: Sequence[torch.nn.Module] = (),
        model_spec: Mapping[str, Any] | None = None,
        callbacks: Sequence[Callable[[Engine, int], Any]] = (),
    ) -> None:
        if not callable(model):
            raise TypeError(f"model: expected a callable, got {type(model).__name__}")
        if not callable(guide):
            raise TypeError(f"guide: expected a callable, got {type(guide).__name__}")
        if not (isinstance(objective, ELBO) or callable(objective)):
            raise TypeError(
                "objective: expected a pyro.infer.ELBO or a callable loss(model, guide, *args), "
                f"got {type(objective).__name__}"
            )
        self.config = config if config is not None else TrainConfig()
        if not isinstance(self.config, TrainConfig):
            raise TypeError(f"config: expected a TrainConfig, got {type(self.config).__name__}")
        players = list(players) if players is not None else [Player("svi")]
        if not players or not all(isinstance(p, Player) for p in players):
            raise TypeError("players: expected a non-empty sequence of Player")
        names = [p.name for p in players]
        if len(set(names)) != len(names):
            raise ValueError(f"players: names must be distinct, got {names}")
        # ELBOs such as RenyiELBO only offer loss_and_grads, which differentiates everything at once.
        self._grads_inside = isinstance(objective, ELBO) and not hasattr(objective, "differentiable_loss")
        if self._grads_inside and len(players) > 1:
            raise ValueError(
                f"objective: {type(objective).__name__} only provides loss_and_grads, which "
                "cannot route gradients to several players; use one player"
            )
        self.model, self.guide, self.objective = model, guide, objective
        self._mean_loss = loss_reduction(objective) == "mean"  # a batch mean is per example already
        self.players = players
        self.device = resolve_device(self.config.device)
        if self.config.distributed:
            self.device = distributed_device(self.device)
        self._dist: DistributedContext | None = None
        self.modules = owning_modules(model, guide, *modules)
        # ppdgm's models are built for module-local parameters; PyroModules built in Pyro's
        # default mode cannot switch later, so the run then stays in the default (global) mode.
        self.local_params = all(built_for_local_params(m) for m in self.modules)
        self.model_spec = dict(model_spec) if model_spec is not None else None
        self.callbacks = list(callbacks)
        if not all(callable(c) for c in self.callbacks):
            raise TypeError("callbacks: expected callables callback(engine, epoch)")
        self.history = History()
        self._states: list[_PlayerState] | None = None
        self._discovered: DiscoveredParams | None = None

    # ------------------------------------------------------------------ public API

    @property
    def _is_main(self) -> bool:
        return self._dist is None or self._dist.is_main

    @property
    def objective_name(self) -> str:
        return getattr(self.objective, "__name__", type(self.objective).__name__)

    @property
    def checkpoint_path(self) -> Path | None:
        """Where this run's checkpoint lives (``None`` when nothing is written)."""
        if self.config.out_dir is None:
            return None
        return Path(self.config.out_dir) / CHECKPOINT_NAME

    def fit(self, data: Any) -> History:
        """Train on ``data`` (tensor, tuple of tensors, Dataset or DataLoader); returns the history."""
        cfg = self.config
        for module in self.modules:
            module.to(self.device)
        if cfg.distributed:
            self._dist = init_distributed(self.device)
        feed = BatchFeed(
            data,
            batch_size=cfg.batch_size,
            device=self.device,
            shuffle=cfg.shuffle,
            drop_last=cfg.drop_last,
            on_device=cfg.data_on_device,
            shard=None if self._dist is None else (self._dist.rank, self._dist.world_size),
        )
        if len(feed) == 0:
            raise ValueError(
                f"batch_size: {cfg.batch_size} with drop_last=True leaves no batch in the data"
            )
        self._validation_default = is_validation_enabled()
        seed = cfg.seed if cfg.seed is not None else 0
        if cfg.seed is not None:
            pyro.set_rng_seed(cfg.seed)
        with self._param_mode():
            if not self.local_params:
                for module in self.modules:
                    forget_stale_params(module)
            self._setup(next(iter(feed.epoch(0, seed=seed))))
            if self._dist is not None and cfg.seed is not None:
                # Each process draws its own noise; rank 0's stream is a single process's.
                pyro.set_rng_seed(cfg.seed + 1_000_003 * self._dist.rank)
            self._train(feed, seed, self._maybe_resume())
        if cfg.out_dir is not None and self._is_main:
            self.history.save(cfg.out_dir)
        if self._dist is not None:
            torch.distributed.barrier()  # the files are written before any rank reads them
        return self.history

    def parameters(self, player: str | None = None) -> dict[str, torch.Tensor]:
        """The trained tensors by name (of one player, or all), available after ``fit``."""
        if self._discovered is None or self._states is None:
            raise RuntimeError("parameters: call fit() first")
        if player is None:
            return dict(self._discovered.params)
        for state in self._states:
            if state.player.name == player:
                return dict(zip(state.names, state.params))
        raise ValueError(f"player: expected one of {[s.player.name for s in self._states]}, got {player!r}")

    # ------------------------------------------------------------------ set-up

    def _param_mode(self) -> contextlib.AbstractContextManager:
        return local_params() if self.local_params else contextlib.nullcontext()

    def _setup(self, batch: tuple[Any, ...]) -> None:
        args, kwargs = _call_args(batch)
        extra = getattr(self.objective, "call_kwargs", None)
        if isinstance(extra, Mapping):
            kwargs = {**kwargs, **extra}
        found = discover_params(self.model, self.guide, args, kwargs)
        for name, leaf in found.params.items():
            if leaf.device != self.device:
                raise ValueError(
                    f"model: parameter {name!r} is on {leaf.device} but the run is on {self.device}; "
                    "create it from the data's device or pass its module in Engine(modules=...)"
                )
        names = list(found.params)
        states = []
        for player in self.players:
            owned = player.select(names, found.model_names, found.guide_names)
            if not owned:
                raise ValueError(
                    f"players: player {player.name!r} (owns={player.owns!r}) owns no parameter; "
                    f"parameters found: {names} (a PyroModule's model/guide methods need the "
                    "@pyro.nn.pyro_method decorator for their parameters to be seen)"
                )
            params = [found.params[n] for n in owned]
            factory = player.optimizer or adam(self.config.lr)
            optimizer = factory(params)
            scheduler = player.scheduler(optimizer) if player.scheduler is not None else None
            states.append(_PlayerState(player, owned, params, optimizer, scheduler))
        if self._dist is not None:
            for state in states:
                state.replica = replicate(state.params, self._loss_of(state), self.device)
        self._discovered, self._states = found, states

    def _maybe_resume(self) -> _Position:
        resume = self.config.resume
        if resume is False:
            return _Position()
        path = self.checkpoint_path if resume is True else Path(resume)
        assert path is not None
        state = load_checkpoint(path, map_location=self.device)
        self._load_state(state, path)
        pos = state["position"]
        return _Position(pos["epoch"], pos["batch"], pos["step"], pos.get("seconds", 0.0))

    # ------------------------------------------------------------------ the loop

    def _train(self, feed: BatchFeed, seed: int, pos: _Position) -> None:
        cfg = self.config
        per_epoch = len(feed)
        total = cfg.epochs * per_epoch
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        show = (cfg.progress if cfg.progress is not None else sys.stderr.isatty()) and self._is_main
        bar = tqdm(total=total, initial=min(pos.step, total), disable=not show,
                   desc="ppdgm", dynamic_ncols=True, leave=True)
        try:
            while pos.epoch < cfg.epochs and pos.step < total:
                started = time.perf_counter() - pos.seconds
                finished = None
                with pyro.validation_enabled(self._validating(pos.epoch)):
                    for batch in feed.epoch(pos.epoch, seed=seed, start=pos.batch):
                        self._step(batch, pos)
                        pos.batch += 1
                        pos.step += 1
                        bar.update(1)
                        if show:
                            bar.set_postfix(self._postfix(), refresh=False)
                        pos.seconds = time.perf_counter() - started
                        if pos.batch == per_epoch:
                            finished = pos.epoch
                            self._close_epoch(pos)
                        elif cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0:
                            self._checkpoint(pos)
                        if pos.step >= total or finished is not None:
                            break
                if finished is not None:
                    for callback in self.callbacks:
                        callback(self, finished)
            if pos.batch != 0:
                self._checkpoint(pos)  # stopped by max_steps mid-epoch
        finally:
            bar.close()

    def _validating(self, epoch: int) -> bool:
        mode = self.config.validate
        wanted = mode == "always" or (mode == "first-epoch" and epoch == 0)
        return wanted and self._validation_default

    def _close_epoch(self, pos: _Position) -> None:
        assert self._states is not None
        self.history.close_epoch(epoch=pos.epoch, seconds=pos.seconds)
        for state in self._states:
            if state.scheduler is not None:
                state.scheduler.step()
        pos.epoch, pos.batch, pos.seconds = pos.epoch + 1, 0, 0.0
        self._checkpoint(pos)

    def _step(self, batch: tuple[Any, ...], pos: _Position) -> None:
        assert self._states is not None
        args, kwargs = _call_args(batch)
        batch_size = _batch_size(batch)
        for state in self._states:
            if not state.player.scheduled(pos.step):
                continue
            for _ in range(state.player.repeats):
                for p in state.params:
                    p.grad = None
                with self._autocast():
                    if state.replica is not None:
                        loss, value = self._replica_loss(state, args, kwargs, pos)
                    else:
                        loss = self._player_loss(state, args, kwargs, pos)
                        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
                if not math.isfinite(value):
                    raise NonFiniteLossError(self._nan_message(state, value, pos))
                if isinstance(loss, torch.Tensor) and loss.requires_grad:
                    loss.backward(inputs=state.params)
                if self.config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(state.params, self.config.grad_clip)
                state.optimizer.step()
                self.history.record_step(step=pos.step, epoch=pos.epoch, player=state.player.name,
                                         loss=value, batch_size=batch_size)
                per_example = value if self._mean_loss else value / max(batch_size, 1)
                state.running = (state.running + [per_example])[-50:]

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _replica_loss(self, state: _PlayerState, args: tuple, kwargs: dict, pos: _Position
                      ) -> tuple[torch.Tensor, float]:
        # DDP averages gradients over processes; a loss summed over the batch is scaled by their
        # number so that the step is the one a single process takes on the global batch.
        assert self._dist is not None
        loss = state.replica(args, kwargs)
        mean = loss_reduction(self.objective) == "mean"
        local = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        value = all_reduce_scalar(local, average=mean, device=self.device)
        if not mean and isinstance(loss, torch.Tensor):
            loss = loss * self._dist.world_size
        return loss, value

    def _loss_of(self, state: _PlayerState) -> Callable[[tuple, dict], Any]:
        def loss(args: tuple, kwargs: dict) -> Any:
            return self._player_loss(state, args, kwargs, None)

        return loss

    def _player_loss(self, state: _PlayerState, args: tuple, kwargs: dict,
                     pos: _Position | None) -> Any:
        objective = self.objective
        if self._grads_inside:
            # Pyro differentiates inside loss_and_grads; the NaN check below still runs before the step.
            value = objective.loss_and_grads(self.model, self.guide, *args, **kwargs)
            return torch.as_tensor(value)
        if isinstance(objective, ELBO):
            return objective.differentiable_loss(self.model, self.guide, *args, **kwargs)
        if hasattr(objective, "player_loss"):
            # Several-player objectives may compute one player's loss alone, not all of them.
            out = objective.player_loss(state.player.name, self.model, self.guide, *args, **kwargs)
            return self._check_loss(out)
        out = objective(self.model, self.guide, *args, **kwargs)
        if isinstance(out, Mapping):
            if state.player.name not in out:
                raise ValueError(
                    f"objective: {self.objective_name} returned losses for {sorted(out)} but not for "
                    f"player {state.player.name!r}"
                )
            out = out[state.player.name]
        return self._check_loss(out)

    def _check_loss(self, out: Any) -> Any:
        if not isinstance(out, (torch.Tensor, float, int)):
            raise TypeError(
                f"objective: {self.objective_name} must return a tensor or a mapping of tensors, "
                f"got {type(out).__name__}"
            )
        return out

    def _nan_message(self, state: _PlayerState, value: float, pos: _Position) -> str:
        where = (f"at step {pos.step} (epoch {pos.epoch}, batch {pos.batch}) for player "
                 f"{state.player.name!r}")
        kept = (f"; the last good checkpoint is {self.checkpoint_path}"
                if self.checkpoint_path is not None and self.checkpoint_path.exists()
                else "")
        return (f"objective {self.objective_name} returned {value} {where}; the parameters were "
                f"not updated with it{kept}")

    def _postfix(self) -> dict[str, str]:
        assert self._states is not None
        return {
            s.player.name: f"{sum(s.running) / len(s.running):.4g}"
            for s in self._states if s.running
        }

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(self, pos: _Position) -> None:
        path = self.checkpoint_path
        if path is None:
            return
        state = self._state_dict(pos)
        if self._dist is not None:
            state["rng_by_rank"] = gather_objects(state["rng"])  # every rank takes part
        if self._is_main:
            save_checkpoint(state, path)

    def _state_dict(self, pos: _Position) -> dict[str, Any]:
        assert self._discovered is not None and self._states is not None
        return {
            "position": {"epoch": pos.epoch, "batch": pos.batch, "step": pos.step,
                         "seconds": pos.seconds},
            "params": {n: p.detach() for n, p in self._discovered.params.items()},
            "modules": [m.state_dict() for m in self.modules],
            "optimizers": {s.player.name: s.optimizer.state_dict() for s in self._states},
            "schedulers": {s.player.name: s.scheduler.state_dict()
                           for s in self._states if s.scheduler is not None},
            "rng": capture_rng_state(),
            "history": self.history.state_dict(),
            "train_config": _plain(asdict(self.config)),
            "model_spec": self.model_spec,
            "objective": _objective_state(self.objective),
        }

    def _load_state(self, state: dict[str, Any], path: Path) -> None:
        assert self._discovered is not None and self._states is not None
        try:
            saved = state["params"]
            ours = self._discovered.params
            if set(saved) != set(ours):
                missing, extra = sorted(set(ours) - set(saved)), sorted(set(saved) - set(ours))
                raise CheckpointError(
                    f"resume: {str(path)!r} was written for another model "
                    f"(missing parameters {missing}, unexpected {extra})"
                )
            for name, leaf in ours.items():
                if saved[name].shape != leaf.shape:
                    raise CheckpointError(
                        f"resume: parameter {name!r} has shape {tuple(saved[name].shape)} in "
                        f"{str(path)!r} but {tuple(leaf.shape)} in the model"
                    )
            if len(state["modules"]) != len(self.modules):
                raise CheckpointError(
                    f"resume: {str(path)!r} holds {len(state['modules'])} module state(s), the run has "
                    f"{len(self.modules)}"
                )
            for module, module_state in zip(self.modules, state["modules"]):
                module.load_state_dict(module_state)
            with torch.no_grad():
                for name, leaf in ours.items():
                    leaf.copy_(saved[name])
            for s in self._states:
                s.optimizer.load_state_dict(state["optimizers"][s.player.name])
                if s.scheduler is not None:
                    s.scheduler.load_state_dict(state["schedulers"][s.player.name])
            if state.get("objective") is not None and hasattr(self.objective, "load_state_dict"):
                self.objective.load_state_dict(state["objective"])
            by_rank = state.get("rng_by_rank")
            if self._dist is not None and by_rank is not None and len(by_rank) == self._dist.world_size:
                restore_rng_state(by_rank[self._dist.rank])
            else:
                restore_rng_state(state["rng"])
            self.history = History.from_state_dict(state["history"])
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"resume: {str(path)!r} is missing {err} or is malformed") from err


def _objective_state(objective: Any) -> Any:
    # Objectives that carry state between steps (persistent chains of PCD) expose state_dict().
    state_dict = getattr(objective, "state_dict", None)
    return state_dict() if callable(state_dict) else None


def _call_args(batch: Any) -> tuple[tuple, dict]:
    if isinstance(batch, Mapping):
        return (), dict(batch)
    if isinstance(batch, (tuple, list)):
        return tuple(batch), {}
    return (batch,), {}


def _batch_size(batch: Any) -> int:
    args, kwargs = _call_args(batch)
    for value in [*args, *kwargs.values()]:
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return 1


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
