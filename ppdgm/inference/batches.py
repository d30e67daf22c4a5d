"""Feeding batches to the engine so that every epoch's order is a function of (seed, epoch).

That makes a resumed run see exactly the batches the uninterrupted run would have seen: the
checkpoint stores the epoch and how many batches of it were done, nothing else.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from .._validation import check_positive_int
from ..device import loader_kwargs, move_to_device

__all__ = ["BatchFeed", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of the shuffling generator in ``epoch`` (distinct, deterministic per epoch)."""
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)


class BatchFeed:
    """Batches of a tensor, a tuple of tensors, a ``Dataset`` or a ``DataLoader``.

    Tensors are moved to the device once (``on_device=True``) and sliced there, which is what a
    hand-written training loop does; datasets get a DataLoader with pinned memory on CUDA.
    A user's DataLoader is used as given, except that its shuffling generator (when it has one)
    is re-seeded at the start of every epoch.

    ``shard=(rank, world_size)`` (data-parallel training) yields this process's part of each
    global batch of ``batch_size``: tensors are cut into ``world_size`` contiguous, near-equal
    pieces of the same global order on every process, and a last batch with fewer rows than
    processes is dropped; a Dataset gets a :class:`~torch.utils.data.DistributedSampler` and
    ``batch_size / world_size`` per process (which must divide evenly).

    Example:
        >>> feed = BatchFeed(torch.arange(10.).unsqueeze(1), batch_size=4, device=torch.device("cpu"))
        >>> [b[0].shape[0] for b in feed.epoch(0, seed=0)]
        [4, 4, 2]
    """

    def __init__(
        self,
        data: Any,
        *,
        batch_size: int,
        device: torch.device,
        shuffle: bool = True,
        drop_last: bool = False,
        on_device: bool = True,
        shard: tuple[int, int] | None = None,
    ) -> None:
        check_positive_int("batch_size", batch_size)
        self.device = device
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.shard = shard
        self._sampler: DistributedSampler | None = None
        if shard is not None and not (0 <= shard[0] < shard[1]):
            raise ValueError(f"shard: expected (rank, world_size) with 0 <= rank < world_size, got {shard}")
        self._tensors: tuple[torch.Tensor, ...] | None = None
        self._loader: DataLoader | None = None
        if isinstance(data, torch.Tensor) or _is_tensor_tuple(data):
            tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
            n = tensors[0].shape[0] if tensors[0].dim() > 0 else 0
            if n == 0:
                raise ValueError("data: expected at least one example, got an empty tensor")
            if any(t.dim() == 0 or t.shape[0] != n for t in tensors):
                shapes = [tuple(t.shape) for t in tensors]
                raise ValueError(f"data: tensors must share their first dimension, got {shapes}")
            self._tensors = tuple(t.to(device) if on_device else t for t in tensors)
            self._n = n
        elif isinstance(data, DataLoader):
            if shard is not None:
                raise TypeError(
                    "data: distributed training shards the data itself; pass the Dataset (or "
                    "tensors) instead of a DataLoader")
            self._loader = data
            if isinstance(data.sampler, RandomSampler) and data.generator is None:
                warnings.warn(
                    "data: this DataLoader shuffles without a generator of its own, so its batch "
                    "order follows the global RNG; pass DataLoader(..., generator=torch.Generator()) "
                    "for exactly reproducible and resumable runs",
                    UserWarning,
                    stacklevel=3,
                )
        elif isinstance(data, Dataset) and shard is not None:
            rank, world = shard
            if batch_size % world:
                raise ValueError(f"batch_size: the global batch {batch_size} must be a multiple of "
                                 f"the {world} processes when the data is a Dataset")
            self._sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=shuffle,
                                               drop_last=drop_last)
            self._loader = DataLoader(data, batch_size=batch_size // world, sampler=self._sampler,
                                      drop_last=drop_last, **loader_kwargs(device))
        elif isinstance(data, Dataset):
            self._loader = DataLoader(
                data,
                batch_size=batch_size,
                shuffle=shuffle,
                drop_last=drop_last,
                generator=torch.Generator(),
                **loader_kwargs(device),
            )
        else:
            raise TypeError(
                "data: expected a torch.Tensor, a tuple of tensors, a torch Dataset or a "
                f"DataLoader, got {type(data).__name__}"
            )

    def __len__(self) -> int:
        if self._loader is not None:
            return len(self._loader)
        full, rest = divmod(self._n, self.batch_size)
        world = 1 if self.shard is None else self.shard[1]
        return full if (self.drop_last or rest == 0 or rest < world) else full + 1

    def epoch(self, epoch: int, *, seed: int, start: int = 0) -> Iterator[tuple[Any, ...]]:
        """Yield the batches of ``epoch`` from batch index ``start`` on, already on the device."""
        if self._loader is not None:
            yield from self._loader_epoch(epoch, seed=seed, start=start)
            return
        assert self._tensors is not None
        first = self._tensors[0]
        if self.shuffle:
            generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
            order = torch.randperm(self._n, generator=generator).to(first.device)
        else:
            order = torch.arange(self._n, device=first.device)
        for index in range(start, len(self)):
            idx = order[index * self.batch_size : (index + 1) * self.batch_size]
            if self.shard is not None:
                idx = idx.tensor_split(self.shard[1])[self.shard[0]]
            yield tuple(move_to_device(t[idx], self.device) for t in self._tensors)

    def _loader_epoch(self, epoch: int, *, seed: int, start: int) -> Iterator[tuple[Any, ...]]:
        assert self._loader is not None
        if self._sampler is not None:
            self._sampler.seed = seed
            self._sampler.set_epoch(epoch)
        elif self._loader.generator is not None:
            self._loader.generator.manual_seed(epoch_seed(seed, epoch))
        for index, batch in enumerate(self._loader):
            if index < start:
                continue
            batch = move_to_device(batch, self.device)
            yield batch if isinstance(batch, (tuple, list)) and not isinstance(batch, str) else (batch,)


def _is_tensor_tuple(data: Any) -> bool:
    return (
        isinstance(data, Sequence)
        and not isinstance(data, str)
        and len(data) > 0
        and all(isinstance(t, torch.Tensor) for t in data)
    )
