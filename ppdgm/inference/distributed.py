"""Data-parallel training on ``torch.distributed``: one process per device, launched by torchrun.

Every process holds the whole model and trains on its shard of each global batch; PyTorch's
:class:`~torch.nn.parallel.DistributedDataParallel` all-reduces each player's gradients before the
player's optimizer steps, so all replicas stay identical. As in Pyro's Lightning example, DDP
wraps torch modules: here one small module per player that registers that player's parameters
and whose forward computes the player's loss (the parameters themselves stay in the model's
PyroModules). Pyro's losses are sums over the batch and DDP averages gradients, so a sum is scaled
by the number of processes before the backward pass; losses that are batch means (the adversarial
ones say so with ``loss_reduction = "mean"``) are not. Either way each step equals the step one
process would take on the global batch.

    torchrun --nproc_per_node 2 -m ppdgm.cli fit vae --distributed --batch-size 256 ...

``TrainConfig.batch_size`` is the global batch; each of N processes sees ``batch_size / N`` of it.
Gloo is the backend on CPUs, NCCL on GPUs (process r uses ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import atexit
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = ["DistributedContext", "PlayerReplica", "init_distributed", "is_main_process",
           "leave_process_group", "loss_reduction", "replicate"]

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: What rank 0 says when torchrun agents on several machines share their rendezvous store with
#: the workers and may restart them: a restarted group could meet the lost workers' addresses.
SHARED_STORE_ACROSS_AGENTS = (
    "distributed: torchrun --max-restarts across several agents (machines) needs "
    "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in every agent's environment: the rendezvous store "
    "the agents share with the workers keeps a lost group's addresses, and a restarted group "
    "would try to connect to them (pytorch/pytorch#135712)")


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the group: ``rank`` of ``world_size``, ``local_rank`` on its host."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, histories and figures, and shows the progress bar."""
        return self.rank == 0


def is_main_process() -> bool:
    """True unless this is a non-zero rank of an initialized process group.

    Examples:
        >>> is_main_process()
        True
    """
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def launched_by_torchrun() -> bool:
    """Whether the environment variables that torchrun sets are present."""
    return all(name in os.environ for name in _ENV)


def distributed_device(device: torch.device) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` for CUDA, ``device`` otherwise."""
    if device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def init_distributed(device: torch.device) -> DistributedContext:
    """Join (or reuse) the default process group set up by torchrun's environment.

    Raises ``RuntimeError`` naming the missing variables when the process was not launched by
    torchrun (or an equivalent launcher).
    """
    if not dist.is_available():
        raise RuntimeError("distributed: this PyTorch build has no torch.distributed")
    if not dist.is_initialized():
        missing = [name for name in _ENV if name not in os.environ]
        if missing:
            raise RuntimeError(
                f"distributed: expected the environment torchrun sets ({', '.join(missing)} "
                "missing); launch with `torchrun --nproc_per_node N -m ppdgm.cli fit ... "
                "--distributed`"
            )
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        _init_group(backend)
        # The group this process made is left before the interpreter shuts down: a group left to
        # the interpreter's teardown may abort the process (std::terminate on gloo's threads)
        # after a run that had finished well.
        atexit.register(leave_process_group)
    return DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                              local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                              backend=str(dist.get_backend()))


def _init_group(backend: str) -> None:
    """The default group from torchrun's environment, its keys kept apart from a lost attempt's.

    torchrun --max-restarts restarts every worker with the same environment. Under one agent
    (one machine) whose rendezvous store is shared with the workers, the restarted group meets in
    the store the lost one used, whose processes published their addresses there under the same
    keys, and gloo would connect to the dead workers' ports: each attempt
    (``TORCHELASTIC_RESTART_COUNT``, the same for all of one agent's workers) gets keys of its
    own. Across several agents the counts differ (an agent whose workers were healthy restarts
    them without counting), so no attempt's keys can be agreed on; a store that is not shared
    is new for every rendezvous round and needs none."""
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    shared = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == str(True)
    one_agent = os.environ.get("LOCAL_WORLD_SIZE") == os.environ.get("WORLD_SIZE")
    if shared and not one_agent and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0 \
            and os.environ.get("RANK") == "0":
        warnings.warn(SHARED_STORE_ACROSS_AGENTS, RuntimeWarning, stacklevel=3)
    if attempt in (None, "0") or not shared or not one_agent:
        dist.init_process_group(backend=backend)
        return
    from torch.distributed.rendezvous import rendezvous

    store, rank, world_size = next(rendezvous("env://"))
    dist.init_process_group(backend=backend, store=dist.PrefixStore(f"ppdgm/attempt_{attempt}", store),
                            rank=rank, world_size=world_size)


def leave_process_group() -> None:
    """Destroy the default process group if one is open (every rank calls it; a no-op otherwise)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def loss_reduction(objective: Any) -> str:
    """``"mean"`` for objectives that say their losses are batch means, else ``"sum"`` (Pyro's)."""
    reduction = getattr(objective, "loss_reduction", "sum")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"objective: loss_reduction must be 'sum' or 'mean', got {reduction!r}")
    return reduction


class PlayerReplica(torch.nn.Module):
    """One player's parameters as a module, so that DDP can all-reduce their gradients.

    ``forward(*args)`` returns ``loss_fn(*args)``; the loss must be computed from these very
    parameter objects (DDP hooks their gradient accumulation).
    """

    def __init__(self, params: Sequence[torch.Tensor], loss_fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        for i, p in enumerate(params):
            if not isinstance(p, torch.nn.Parameter):
                raise TypeError(
                    "distributed: every trained tensor must be an nn.Parameter of a torch module "
                    "(a PyroModule, or a module given to pyro.module), not a bare pyro.param; "
                    f"got a {type(p).__name__} of shape {tuple(p.shape)}"
                )
            self.register_parameter(f"p{i}", p)
        self._loss_fn = loss_fn

    def forward(self, *args: Any) -> torch.Tensor:
        return self._loss_fn(*args)


def replicate(params: Sequence[torch.Tensor], loss_fn: Callable[..., torch.Tensor],
              device: torch.device, *, find_unused: bool = True) -> DistributedDataParallel:
    """Wrap one player's parameters in DDP (rank 0's values are broadcast to every process).

    ``find_unused=True`` is for a player whose loss leaves some of its parameters out (a
    critic-only term): DDP then traverses the graph on every step to find them, which costs
    time, so the engine asks for it only for such players.
    """
    ids = [device.index] if device.type == "cuda" else None
    # A replica holds parameters only (no buffers), so DDP has no buffers to synchronise.
    return DistributedDataParallel(PlayerReplica(params, loss_fn), device_ids=ids,
                                   find_unused_parameters=find_unused)


def all_reduce_scalar(value: float, *, average: bool, device: torch.device) -> float:
    """The sum (or mean) of a number over all processes."""
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item() / (dist.get_world_size() if average else 1))


def gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (a collective: all processes must call it)."""
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
