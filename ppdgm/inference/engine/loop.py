"""The one training loop every ppdgm model runs on.

``Engine(model, guide, objective, players, config).fit(data)`` trains a model/guide pair on any
device with any objective that ``pyro.infer.SVI`` accepts: an ``ELBO`` instance, or a callable
``loss(model, guide, *batch)`` returning a loss tensor, or a mapping ``{player name: loss}``
when several players take turns (generator/discriminator, wake/sleep).

The loop finds each player's parameters, runs the epochs and batches, asks the Pyro program (or
a replayed graph, :mod:`ppdgm.inference.compiled`) for each player's loss, and hands it to the
update of :mod:`.step`; the run's state and its checks on resuming live in :mod:`.state`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import ELBO
from pyro.infer.util import is_validation_enabled
from tqdm.auto import tqdm

from ..._files import make_folder
from ..._jupyter import in_notebook
from ..._pyro import built_for_local_params, forget_stale_params, local_params
from ...device import resolve_device
from ..batches import BatchFeed, batch_length
from ..checkpoint import (
    CheckpointError,
    check_weights,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from ..compiled import StepGraphs, check_compile
from ..distributed import (
    DistributedContext,
    all_reduce_scalar,
    distributed_device,
    gather_objects,
    init_distributed,
    loss_reduction,
    replicate,
)
from ..ema import WeightAverage
from ..history import History
from ..objectives.base import PlayerObjective
from ..params import (
    ParamRecorder,
    RoleProgram,
    owning_modules,
    preserved_rng,
    restore_param_store,
    trainable_count,
)
from ..players import Player, adam
from ..reads import DirectReads, reads_params_as_weights
from ..tracking import TensorBoard
from .config import CHECKPOINT_NAME, TrainConfig
from .state import (
    PlayerState,
    Position,
    check_resumable,
    checkpoint_state,
    reset_grads,
    saved_position,
)
from .step import check_divergence, check_finite_losses, loss_values, update
from .stops import CONTINUE, STOP, Preempted, StopRequests

__all__ = ["Engine"]

_LOG = logging.getLogger(__name__)


class Engine:
    """Train a model/guide pair: device placement, players, checkpoints, exact resume, history.

    Args:
        model: a Pyro callable, called with each batch's tensors as positional arguments (a
            PyroModule, its bound method, or a plain function that uses
            ``pyro.module``/``pyro.param``).
        guide: a Pyro callable of the model's signature.
        objective: an ``ELBO`` (e.g. ``Trace_ELBO()``) or a callable ``loss(model, guide, *batch)``
            returning a tensor, or a ``{player name: tensor}`` mapping for several players. An
            objective with a method ``player_loss(name, model, guide, *batch)`` is asked for
            the loss of the player whose turn it is alone. An objective that keeps state between
            steps (the persistent chains of PCD) and offers ``state_dict()``/``load_state_dict()``
            has that state checkpointed and restored with the run. An ``ELBO`` that offers only
            ``loss_and_grads`` (``RenyiELBO``, Pyro's ``ReweightedWakeSleep``) is run through it,
            as ``SVI`` does; when it returns several losses (RWS: model and guide) the first is
            the one recorded in the history, and every one is checked for NaN.

            Parameters are found as ``pyro.infer.SVI`` finds them: by recording the ``param``
            statements of the objective's own run, at each player's first turn (so
            enumeration, vectorized particles and lazily initialised autoguides behave as under
            SVI), and again whenever the param store or the modules gain a parameter later in
            the run. Param-store entries the run touches (the decaying-average baselines of
            ``TraceGraph_ELBO``) are checkpointed by name. For Pyro's ELBOs with
            ``differentiable_loss`` and ppdgm's objectives, later steps read the PyroModule
            weights found then without a ``param`` statement each (:mod:`ppdgm.inference.reads`);
            the programs are unchanged outside the step.
        players: who updates what; default one player ``"svi"`` owning every parameter. Players
            take turns in list order, and each turn evaluates the objective afresh, so a
            discriminator's update is seen by the generator's loss on the same batch.
        config: a :class:`TrainConfig`.
        modules: extra ``nn.Module`` s to move to the device and checkpoint (those owning ``model``
            and ``guide`` are found automatically).
        model_spec: plain data stored in checkpoints so that tools can rebuild the model, e.g.
            ``{"name": "vae", "config": {...}}``.
        callbacks: functions ``callback(engine, epoch)`` called after each epoch, after its
            players' learning-rate schedulers and before the epoch's checkpoint, so that what
            they change (a parameter clipped, a random number drawn) is in the checkpoint and a
            resumed run continues exactly; e.g. to evaluate on held-out data.
        step_callbacks: functions ``callback(engine, step)`` called after every step (all
            players' updates on a batch; ``step`` counts from 0), before a ``checkpoint_every``
            checkpoint, e.g. to clip or project parameters after each update.

    Examples:
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
        step_callbacks: Sequence[Callable[[Engine, int], Any]] = (),
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
        self._model_names: set[str] = set()
        self._guide_names: set[str] = set()
        # The programs the objective sees while parameters are being found, recording whose
        # parameters they read. An objective that compiles the program (Pyro's Jit* ELBOs) caches
        # its compiled loss by the programs' identity, so it is handed these same objects on every
        # step, as SVI hands it the same model and guide.
        self._role_model = RoleProgram(model, self._model_names)
        self._role_guide = RoleProgram(guide, self._guide_names)
        self._stable_programs = type(objective).__name__.startswith("Jit")
        self._per_player = isinstance(objective, PlayerObjective)
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
        self.step_callbacks = list(step_callbacks)
        if not all(callable(c) for c in self.step_callbacks):
            raise TypeError("step_callbacks: expected callables callback(engine, step)")
        self.history = History()
        self._states: list[PlayerState] | None = None
        self._params: dict[str, torch.Tensor] = {}
        self._store_names: list[str] = []  # param-store names the run's objective touched
        self._known_count = -1
        self._batches_per_epoch = 0
        self._reads_directly = (self.local_params and not self._grads_inside
                                and reads_params_as_weights(objective))
        self._direct_reads: DirectReads | None = None
        self._ema = WeightAverage(self.config.ema) if self.config.ema is not None else None
        mode = check_compile(self.config.compile)
        self._graphs = StepGraphs(mode) if mode != "off" else None
        self._no_graphs = "compile is off"  # why no player has graphs, when none has
        self._stops: StopRequests | None = None
        self._checkpointed_at = -1

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
        if cfg.out_dir is not None:
            make_folder("out_dir", cfg.out_dir)  # before any training, not at the first checkpoint
        for module in self.modules:
            module.to(self.device)
        if cfg.distributed:
            self._dist = init_distributed(self.device)
            if self._graphs is not None:
                self._no_graphs = ("data-parallel steps run eagerly (DDP all-reduces gradients "
                                   "in hooks of the eager backward pass)")
                _LOG.warning("compile: %s", self._no_graphs)
                self._graphs = None
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
            self._states = [PlayerState(player) for player in self.players]
            if cfg.resume is not False or self._dist is not None:
                # The parameters must exist before a checkpoint is loaded into them or DDP wraps
                # them: one run of every player's loss finds them, leaving no trace in the RNGs.
                self._discover(next(iter(feed.epoch(0, seed=seed))))
            if self._dist is not None and cfg.seed is not None:
                # Each process draws its own noise; rank 0's stream is a single process's.
                pyro.set_rng_seed(cfg.seed + 1_000_003 * self._dist.rank)
            self._batches_per_epoch = len(feed)
            with self._tracking(), self._stop_requests():
                self._train(feed, seed, self._maybe_resume())
        if cfg.out_dir is not None and self._is_main:
            self.history.save(cfg.out_dir)
        if self._dist is not None:
            torch.distributed.barrier()  # the files are written before any rank reads them
        return self.history

    def parameters(self, player: str | None = None) -> dict[str, torch.Tensor]:
        """The trained tensors by name (of one player, or all), available after ``fit``."""
        if self._states is None or not self._params:
            raise RuntimeError("parameters: call fit() first")
        if player is None:
            return dict(self._params)
        for state in self._states:
            if state.player.name == player:
                return dict(zip(state.names, state.params))
        raise ValueError(f"player: expected one of {[s.player.name for s in self._states]}, got {player!r}")

    def ema_weights(self) -> contextlib.AbstractContextManager:
        """A block in which every averaged weight holds its moving average (``TrainConfig.ema``).

        Examples:
            >>> from pyro.infer import Trace_ELBO
            >>> pyro.clear_param_store()
            >>> def model(x):
            ...     loc = pyro.param("loc", torch.tensor(0.0))
            ...     with pyro.plate("data", x.shape[0]):
            ...         pyro.sample("x", pyro.distributions.Normal(loc, 1.0), obs=x)
            >>> engine = Engine(model, lambda x: None, Trace_ELBO(),
            ...                 config=TrainConfig(epochs=3, batch_size=4, lr=0.1, ema=0.9,
            ...                                    device="cpu", progress=False))
            >>> _ = engine.fit(torch.full((8,), 2.0))
            >>> with engine.ema_weights():
            ...     averaged = pyro.param("loc").item()
            >>> 0 < averaged < pyro.param("loc").item()
            True
        """
        if self._ema is None:
            raise RuntimeError("ema_weights: the run keeps no average; set TrainConfig(ema=...)")
        if self._states is None:
            raise RuntimeError("ema_weights: call fit() first")
        return self._ema.swapped(self._params)

    @torch.no_grad()
    def use_ema_weights(self) -> None:
        """Copy the moving averages into the weights for good, e.g. after ``fit`` to evaluate and
        sample the average (the checkpoint keeps the trained weights and their averages both)."""
        if self._ema is None:
            raise RuntimeError("use_ema_weights: the run keeps no average; set TrainConfig(ema=...)")
        for name, shadow in self._ema.shadows.items():
            self._params[name].copy_(shadow)

    # ------------------------------------------------------------------ set-up

    @contextlib.contextmanager
    def _tracking(self) -> Iterator[None]:
        if self.config.tensorboard is None or not self._is_main:
            yield
            return
        sample = next((m.sample for m in self.modules if callable(getattr(m, "sample", None))), None)
        board = TensorBoard(self.config.tensorboard, sample=sample)
        self.callbacks.append(board.on_epoch)
        self.step_callbacks.append(board.on_step)
        try:
            yield
        finally:
            self.callbacks.remove(board.on_epoch)
            self.step_callbacks.remove(board.on_step)
            board.close()

    def _param_mode(self) -> contextlib.AbstractContextManager:
        return local_params() if self.local_params else contextlib.nullcontext()

    def _discover(self, batch: tuple[Any, ...]) -> None:
        assert self._states is not None
        args, kwargs = _call_args(batch)
        unused: dict[str, bool] = {}
        with preserved_rng(), pyro.validation_enabled(self._validating(0)):
            for state in self._states:
                loss = self._recorded_loss(state, args, kwargs)
                if self._dist is not None:
                    unused[state.player.name] = self._leaves_params_out(state, loss)
        for p in self._params.values():
            p.grad = None  # an objective that differentiates inside its loss left gradients
        if self._dist is not None:
            for state in self._states:
                state.replica = replicate(state.params, self._loss_of(state), self.device,
                                          find_unused=unused[state.player.name])

    def _leaves_params_out(self, state: PlayerState, loss: Any) -> bool:
        # DDP must search the graph for unused parameters on every step unless none are: one
        # backward of the discovery run says which (tuple losses and losses without a graph are
        # assumed to leave some out, which is always safe).
        if self._grads_inside:
            return any(p.grad is None for p in state.params)
        if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
            return True
        grads = torch.autograd.grad(loss, state.params, allow_unused=True)
        return any(g is None for g in grads)

    def _recorded_loss(self, state: PlayerState, args: tuple, kwargs: dict) -> Any:
        # The objective's own run, recorded as SVI records it; model and guide report their reads.
        recorder = ParamRecorder()
        with recorder:
            loss = self._player_loss(state, args, kwargs, model=self._role_model,
                                     guide=self._role_guide)
        self._store_names += [n for n in recorder.seen if n not in self._store_names]
        self._register(recorder.found)
        state.started = True
        if not state.params:
            raise ValueError(
                f"players: player {state.player.name!r} (owns={state.player.owns!r}) owns no "
                f"parameter; parameters found: {list(self._params)} (a PyroModule's model/guide "
                "methods need the @pyro.nn.pyro_method decorator for their parameters to be seen)"
            )
        return loss

    def _register(self, found: Mapping[str, torch.Tensor]) -> None:
        assert self._states is not None
        known = {id(p) for p in self._params.values()}
        new = []
        for name, leaf in found.items():
            if name in self._params or id(leaf) in known:
                continue  # a PyroModule parameter shared by model and guide is kept once
            if leaf.device != self.device:
                raise ValueError(
                    f"model: parameter {name!r} is on {leaf.device} but the run is on {self.device}; "
                    "create it from the data's device or pass its module in Engine(modules=...)"
                )
            self._params[name] = leaf
            known.add(id(leaf))
            new.append(name)
        for state in self._states:
            owned = state.player.select(new, self._model_names, self._guide_names)
            if owned:
                self._give(state, owned)
        self._known_count = trainable_count(self.modules)
        self._direct_reads = None

    def _give(self, state: PlayerState, names: list[str]) -> None:
        params = [self._params[n] for n in names]
        state.names += names
        state.params += params
        state.groups.append(list(names))
        if state.optimizer is None:
            factory = state.player.optimizer or adam(self.config.lr, **self._adam_options(params))
            state.optimizer = factory(params)
            if state.player.scheduler is not None:
                state.scheduler = state.player.scheduler(state.optimizer)
        else:
            state.optimizer.add_param_group({"params": params})

    def _adam_options(self, params: list[torch.Tensor]) -> dict[str, Any]:
        # With compiled steps the default Adam is PyTorch's fused one (one kernel for every
        # tensor): the same update to float rounding, several times faster on small models.
        fused = (self._graphs is not None and self._graphs.mode == "inductor" and all(
            p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params))
        return {"fused": True} if fused else {}

    def _adopt_late_params(self) -> None:
        """Take in parameters created after their player's first turn, as SVI would train them."""
        known = {id(p) for p in self._params.values()}
        found: dict[str, torch.Tensor] = {}
        store = pyro.get_param_store()
        for name in list(store.keys()):
            leaf = store.get_param(name).unconstrained()
            if leaf.requires_grad and id(leaf) not in known and name not in self._params:
                found[name] = leaf
        for index, module in enumerate(self.modules):
            for name, leaf in module.named_parameters():
                if id(leaf) not in known and id(leaf) not in {id(v) for v in found.values()}:
                    found[f"modules.{index}.{name}"] = leaf
        by_role = [s.player.name for s in self._states or [] if s.player.owns in ("model", "guide")]
        if found and by_role:
            raise ValueError(
                f"model: parameters {sorted(found)} were created after the first step, but players "
                f"{by_role} own parameters by role ('model'/'guide'), which is known only for the "
                "parameters of the first step; create them in the first step or give those "
                "players a predicate on parameter names")
        self._store_names += [n for n in found if n in store and n not in self._store_names]
        self._register(found)

    def _maybe_resume(self) -> Position:
        resume = self.config.resume
        if resume == "auto":
            found = self.checkpoint_path
            if found is None or not found.exists():
                if self._is_main:
                    _LOG.info("resume: no checkpoint in %s yet; starting afresh", self.config.out_dir)
                return Position()
            resume = True
        if resume is False:
            return Position()
        path = self.checkpoint_path if resume is True else Path(resume)
        assert path is not None
        state = load_checkpoint(path, map_location=self.device)
        check_resumable(state, str(path), params=self._params, config=self.config,
                        model_spec=self.model_spec, batches_per_epoch=self._batches_per_epoch,
                        announce=self._is_main)
        pos = saved_position(state, str(path))
        self._load_state(state, path)
        self._new_world(state, str(path), pos)
        return pos

    def _new_world(self, state: dict[str, Any], where: str, pos: Position) -> None:
        """A run resumed on another number of processes keeps its global batch and its global
        data order (each process's share of a batch changes); rank 0 continues the saved
        random stream of rank 0, every other rank starts a stream of its own. It says so."""
        saved = state.get("world_size")
        if not isinstance(saved, int):
            saved = len(state["rng_by_rank"]) if isinstance(state.get("rng_by_rank"), list) else 1
        now = 1 if self._dist is None else self._dist.world_size
        if saved == now:
            return
        if self._is_main:
            _LOG.warning("resume: %s was written by %d process(es) and continues on %d: the global "
                         "batch (%d) and the data order are kept, each process's random draws "
                         "are not those of the saved run", where, saved, now,
                         self.config.batch_size)
        rank = 0 if self._dist is None else self._dist.rank
        if rank > 0:
            seed = 0 if self.config.seed is None else self.config.seed
            pyro.set_rng_seed(seed + 1_000_003 * rank + 9_973 * pos.step)

    # ------------------------------------------------------------------ the loop

    def _train(self, feed: BatchFeed, seed: int, pos: Position) -> None:
        cfg = self.config
        per_epoch = len(feed)
        total = cfg.epochs * per_epoch
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        show = (cfg.progress if cfg.progress is not None
                else sys.stderr.isatty() or in_notebook()) and self._is_main
        bar = tqdm(total=total, initial=min(pos.step, total), disable=not show,
                   desc="ppdgm", dynamic_ncols=True, leave=True)
        try:
            while pos.epoch < cfg.epochs and pos.step < total:
                started = time.perf_counter() - pos.seconds
                finished = None
                before = pos.step
                with pyro.validation_enabled(self._validating(pos.epoch)):
                    for batch in feed.epoch(pos.epoch, seed=seed, start=pos.batch):
                        self._step(batch, pos)
                        pos.batch += 1
                        pos.step += 1
                        bar.update(1)
                        if show:
                            bar.set_postfix(self._postfix(), refresh=False)
                        for callback in self.step_callbacks:
                            callback(self, pos.step - 1)
                        pos.seconds = time.perf_counter() - started
                        if pos.batch == per_epoch:
                            finished = pos.epoch
                            self._close_epoch(pos)
                        elif cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0:
                            self._checkpoint(pos)
                        self._stop_if_asked(pos)
                        if pos.step >= total or finished is not None:
                            break
                if pos.step == before:  # never loop on an epoch that yields nothing
                    raise RuntimeError(f"data: epoch {pos.epoch} gave no batch from batch {pos.batch} "
                                       f"on (expected {per_epoch} per epoch)")
            if pos.batch != 0:
                self._checkpoint(pos)  # stopped by max_steps mid-epoch
        finally:
            bar.close()

    @contextlib.contextmanager
    def _stop_requests(self) -> Iterator[None]:
        """Catch SIGTERM and keep the checkpoint clock while the loop runs (with an out_dir)."""
        if self.checkpoint_path is None:
            yield
            return
        group = None if self._dist is None else self.device
        self._stops = StopRequests(self.config.checkpoint_seconds, catch_signals=True,
                                   group_device=group)
        try:
            with self._stops:
                yield
        finally:
            self._stops = None

    def _stop_if_asked(self, pos: Position) -> None:
        if self._stops is None:
            return
        request = self._stops.after_step(is_main=self._is_main)
        if request != CONTINUE and self._checkpointed_at != pos.step:
            self._checkpoint(pos)
        if request == STOP:
            self._stops.stopping_together()
            raise Preempted(self._stops.signal_name or "SIGTERM", pos.step,
                            str(self.checkpoint_path))

    def _validating(self, epoch: int) -> bool:
        mode = self.config.validate
        wanted = mode == "always" or (mode == "first-epoch" and epoch == 0)
        return wanted and self._validation_default

    def _close_epoch(self, pos: Position) -> None:
        assert self._states is not None
        self.history.close_epoch(epoch=pos.epoch, seconds=pos.seconds)
        for state in self._states:
            if state.scheduler is not None:
                state.scheduler.step()
        finished = pos.epoch
        pos.epoch, pos.batch, pos.seconds = pos.epoch + 1, 0, 0.0
        for callback in self.callbacks:
            callback(self, finished)
        self._checkpoint(pos)

    def _step(self, batch: tuple[Any, ...], pos: Position) -> None:
        assert self._states is not None
        args, kwargs = _call_args(batch)
        batch_size = batch_length(args)
        for state in self._states:
            if not state.player.scheduled(pos.step):
                continue
            for _ in range(state.player.repeats):
                reset_grads(state)
                with self._autocast(), self._reads(state):
                    graph = self._graph_step(state, args, kwargs, pos)
                    if graph is not None:
                        loss, values = None, [float(graph[0])]
                    elif state.replica is not None:
                        loss, values = self._replica_loss(state, args, kwargs)
                    else:
                        if state.started:
                            loss = self._player_loss(state, args, kwargs)
                            if trainable_count(self.modules) != self._known_count:
                                self._adopt_late_params()
                        else:
                            loss = self._recorded_loss(state, args, kwargs)
                        values = loss_values(loss, self.objective_name)
                check_finite_losses(values, state, pos, objective_name=self.objective_name,
                                    kept=self._kept())
                update(state, pos, loss=loss, grads=None if graph is None else graph[1],
                       grad_clip=self.config.grad_clip, ema=self._ema, kept=self._kept())
                value = values[0]
                if self.config.divergence is not None:
                    check_divergence(state, value, pos, factor=self.config.divergence,
                                     first_loss=self.history.first_loss(state.player.name,
                                                                        default=value),
                                     kept=self._kept())
                self.history.record_step(step=pos.step, epoch=pos.epoch, player=state.player.name,
                                         loss=value, batch_size=batch_size)
                per_example = value if self._mean_loss else value / max(batch_size, 1)
                state.running = (state.running + [per_example])[-50:]

    def _graph_step(self, state: PlayerState, args: tuple, kwargs: dict, pos: Position
                    ) -> tuple[torch.Tensor, list[torch.Tensor | None]] | None:
        """The step's loss and gradients from a traced graph, or ``None`` for an eager step."""
        if (self._graphs is None or not state.started or state.replica is not None
                or self._grads_inside or self._validating(pos.epoch)):
            return None
        traced = sum(self._graphs.traces.values())
        result = self._graphs.loss_and_grads(state.player.name, self._loss_of(state), state.params,
                                             args, kwargs, others=self._params.values(),
                                             owner=self.objective)
        if (result is not None and sum(self._graphs.traces.values()) != traced
                and trainable_count(self.modules) != self._known_count):
            # Tracing ran the program, which made a parameter: take it in, and trace anew next
            # step (the graph's key names the parameters it was traced with).
            self._adopt_late_params()
        return result

    @property
    def compiled_players(self) -> dict[str, str]:
        """Per player, how its steps run: ``"graph"`` or ``"eager: <reason>"``."""
        if self._graphs is None:
            return {p.name: f"eager: {self._no_graphs}" for p in self.players}
        if self._grads_inside:
            return {p.name: f"eager: {self.objective_name} differentiates inside loss_and_grads"
                    for p in self.players}
        return {p.name: (f"eager: {self._graphs.eager[p.name]}" if p.name in self._graphs.eager
                         else "graph") for p in self.players}

    def _kept(self) -> str:
        path = self.checkpoint_path
        return f"; the last good checkpoint is {path}" if path is not None and path.exists() else ""

    def _reads(self, state: PlayerState) -> contextlib.AbstractContextManager:
        # A player's first run is recorded with every param statement; later ones read the
        # weights found then directly (see ppdgm.inference.reads).
        if not (state.started and self._reads_directly):
            return contextlib.nullcontext()
        if self._direct_reads is None:
            self._direct_reads = DirectReads(self.modules, self._params.values())
        return self._direct_reads

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _replica_loss(self, state: PlayerState, args: tuple, kwargs: dict
                      ) -> tuple[torch.Tensor, list[float]]:
        # DDP averages gradients over processes; a loss summed over the batch is scaled by their
        # number so that the step is the one a single process takes on the global batch.
        assert self._dist is not None
        loss = state.replica(args, kwargs)
        mean = loss_reduction(self.objective) == "mean"
        local = loss_values(loss, self.objective_name)
        values = [all_reduce_scalar(v, average=mean, device=self.device) for v in local]
        if not mean and isinstance(loss, torch.Tensor):
            loss = loss * self._dist.world_size
        return loss, values

    def _loss_of(self, state: PlayerState) -> Callable[[tuple, dict], Any]:
        def loss(args: tuple, kwargs: dict) -> Any:
            return self._player_loss(state, args, kwargs)

        return loss

    def _player_loss(self, state: PlayerState, args: tuple, kwargs: dict, *,
                     model: Callable[..., Any] | None = None,
                     guide: Callable[..., Any] | None = None) -> Any:
        objective = self.objective
        if model is None:
            model = self._role_model if self._stable_programs else self.model
        if guide is None:
            guide = self._role_guide if self._stable_programs else self.guide
        if self._grads_inside:
            # Pyro differentiates inside loss_and_grads; the NaN check still runs before the step.
            return objective.loss_and_grads(model, guide, *args, **kwargs)
        if isinstance(objective, ELBO):
            return objective.differentiable_loss(model, guide, *args, **kwargs)
        if self._per_player:
            # Several-player objectives may compute one player's loss alone, not all of them.
            out = objective.player_loss(state.player.name, model, guide, *args, **kwargs)
            return self._check_loss(out)
        out = objective(model, guide, *args, **kwargs)
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

    def _postfix(self) -> dict[str, str]:
        assert self._states is not None
        return {
            s.player.name: f"{sum(s.running) / len(s.running):.4g}"
            for s in self._states if s.running
        }

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(self, pos: Position) -> None:
        path = self.checkpoint_path
        if path is None:
            return
        state = self._state_dict(pos)
        # The processes that wrote it; --batch-size is the global batch, recorded with it.
        state["world_size"] = 1 if self._dist is None else self._dist.world_size
        if self._dist is not None:
            state["rng_by_rank"] = gather_objects(state["rng"])  # every rank takes part
        if self._is_main:
            save_checkpoint(state, path)
        self._checkpointed_at = pos.step
        if self._stops is not None:
            self._stops.checkpointed()

    def _state_dict(self, pos: Position) -> dict[str, Any]:
        assert self._states is not None
        return checkpoint_state(pos, params=self._params, store_names=self._store_names,
                                states=self._states, modules=self.modules, history=self.history,
                                batches_per_epoch=self._batches_per_epoch, config=self.config,
                                model_spec=self.model_spec, objective=self.objective, ema=self._ema)

    def _load_state(self, state: dict[str, Any], path: Path) -> None:
        assert self._states is not None
        where = str(path)
        try:
            saved = state["params"]
            if len(state["modules"]) != len(self.modules):
                raise CheckpointError(
                    f"resume: {where!r} holds {len(state['modules'])} module state(s), the run has "
                    f"{len(self.modules)}"
                )
            for name, leaf in self._params.items():
                if name in saved and saved[name].shape != leaf.shape:
                    raise CheckpointError(
                        f"resume: parameter {name!r} has shape {tuple(saved[name].shape)} in "
                        f"{where!r} but {tuple(leaf.shape)} in the model"
                    )
            for module, module_state in zip(self.modules, state["modules"]):
                check_weights(module_state, module, f"resume: {where!r}")
                try:
                    module.load_state_dict(module_state)
                except RuntimeError as err:
                    raise CheckpointError(
                        f"resume: {where!r} does not fit {type(module).__name__}: "
                        f"{' '.join(str(err).split())}") from err
            # Entries created after the first step exist only once the store is restored.
            restore_param_store(state.get("param_store", {}), where)
            for name in saved:
                if name not in self._params:
                    leaf = self._late_param(name)
                    if leaf is not None:
                        self._params[name] = leaf
            if set(saved) != set(self._params):
                ours = set(self._params)
                missing, extra = sorted(ours - set(saved)), sorted(set(saved) - ours)
                raise CheckpointError(
                    f"resume: {where!r} was written for another model "
                    f"(missing parameters {missing}, unexpected {extra})"
                )
            for name, leaf in self._params.items():
                if saved[name].shape != leaf.shape:
                    raise CheckpointError(
                        f"resume: parameter {name!r} has shape {tuple(saved[name].shape)} in "
                        f"{where!r} but {tuple(leaf.shape)} in the model"
                    )
            with torch.no_grad():
                for name, leaf in self._params.items():
                    leaf.copy_(saved[name])
            restore_param_store(state.get("param_store", {}), where)  # the store's latest values win
            self._store_names = list(state.get("param_store", {})) or self._store_names
            self._known_count = trainable_count(self.modules)
            groups = state.get("groups")
            for s in self._states:
                if groups is not None:
                    self._rebuild_player(s, groups[s.player.name], where)
                s.optimizer.load_state_dict(state["optimizers"][s.player.name])
                if s.scheduler is not None:
                    s.scheduler.load_state_dict(state["schedulers"][s.player.name])
            if state.get("objective") is not None and hasattr(self.objective, "load_state_dict"):
                self.objective.load_state_dict(state["objective"])
            self._load_ema(state.get("ema"), where)
            by_rank = state.get("rng_by_rank")
            if self._dist is not None and by_rank is not None and len(by_rank) == self._dist.world_size:
                restore_rng_state(by_rank[self._dist.rank])
            else:
                restore_rng_state(state["rng"])
            self.history = History.from_state_dict(state["history"])
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
            # Optimizer, RNG or history entries of the wrong shape or kind fail inside torch,
            # random or numpy in many ways; all of them mean the same thing here.
            raise CheckpointError(f"resume: {where!r} is missing {err} or is malformed"
                                  if isinstance(err, KeyError) else
                                  f"resume: {where!r} is malformed: {type(err).__name__}: "
                                  f"{' '.join(str(err).split())[:300]}") from err

    def _load_ema(self, saved: Any, where: str) -> None:
        if (saved is None) != (self._ema is None):
            raise CheckpointError(
                f"resume: {where!r} was written {'without' if saved is None else 'with'} a moving "
                f"average of the weights and this run has "
                f"{'one' if saved is None else 'none'} (TrainConfig.ema); resume with the same ema")
        if self._ema is not None:
            try:
                self._ema.load_state_dict(saved, where)
            except ValueError as err:
                raise CheckpointError(f"resume: {err}") from err

    def _late_param(self, name: str) -> torch.Tensor | None:
        store = pyro.get_param_store()
        if name in store:
            return store.get_param(name).unconstrained()
        for index, module in enumerate(self.modules):
            prefix = f"modules.{index}."
            if name.startswith(prefix):
                return dict(module.named_parameters()).get(name[len(prefix):])
        return None

    def _rebuild_player(self, state: PlayerState, groups: list[list[str]], where: str) -> None:
        # The saved run may have met its parameters in another order (players' first turns, late
        # parameters); its optimizer state fits only an optimizer built in that order.
        if groups == state.groups:
            return
        unknown = sorted({n for group in groups for n in group} - set(self._params))
        if unknown:
            raise CheckpointError(f"resume: {where!r} trains parameters {unknown} that the run lacks")
        state.names, state.params, state.groups = [], [], []
        state.optimizer = state.scheduler = None
        for group in groups:
            self._give(state, list(group))
        if state.replica is not None:
            state.replica = replicate(state.params, self._loss_of(state), self.device,
                                      find_unused=True)


def _call_args(batch: tuple[Any, ...]) -> tuple[tuple, dict]:
    return tuple(batch), {}
