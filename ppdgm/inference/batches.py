"""Feeding batches to the engine so that every epoch's order is a function of (seed, epoch).

That makes a resumed run see exactly the batches the uninterrupted run would have seen: the
checkpoint stores the epoch and how many batches of it were done, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._validation import check_positive_int
from ..device import loader_kwargs, move_to_device

__all__ = ["BatchFeed", "as_arguments", "batch_length", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of the shuffling generator in ``epoch`` (distinct, deterministic per epoch)."""
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)


class BatchFeed:
    """Batches of a tensor, a tuple of tensors, a ``Dataset`` or a ``DataLoader``.

    Tensors are moved to the device once (``on_device=True``) and sliced there, which is what a
    hand-written training loop does; datasets get a DataLoader with pinned memory on CUDA.
    A user's DataLoader is used as given, except that its order is made a function of
    ``(seed, epoch)``: its own generator, when it has one, is re-seeded at the start of every
    epoch, and one without draws its order from a fork of the global RNG seeded the same way
    (so a resumed run sees the same batches and leaves the restored RNG untouched).

    ``shard=(rank, world_size)`` (data-parallel training) yields this process's part of each
    global batch of ``batch_size``: tensors are cut into ``world_size`` contiguous, near-equal
    pieces of the same global order on every process, and a last batch with fewer rows than
    processes is dropped; a Dataset gets a :class:`~torch.utils.data.DistributedSampler` and
    ``batch_size / world_size`` per process (which must divide evenly).

    Examples:
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
        # A DataLoader draws its shuffling seed (and its workers' base seed) from the global RNG
        # when it has no generator, and a dataset may draw from it in __getitem__: starting the
        # epoch and skipping the batches a resumed run already did happen on a fork of the global
        # RNG, seeded per epoch, so that a resumed run leaves the restored RNG exactly as it was.
        end = object()
        with torch.random.fork_rng(devices=[]):
            if self._loader.generator is None:
                torch.manual_seed(epoch_seed(seed, epoch))
            batches = iter(self._loader)
            for _ in range(start):
                if next(batches, end) is end:
                    return
            first = next(batches, end)
        if first is end:
            return
        yield as_arguments(move_to_device(first, self.device))
        for batch in batches:
            yield as_arguments(move_to_device(batch, self.device))


def as_arguments(batch: Any) -> tuple[Any, ...]:
    """The positional arguments a batch from a DataLoader is passed to the model and guide as.

    A tuple, list or namedtuple is spread (``model(*batch)``, as ``svi.step(*batch)``); a structure
    that moves as a whole (a ``PackedSequence``), a tensor, a mapping or any other object is one
    argument.

    Examples:
        >>> as_arguments([torch.zeros(1), torch.ones(1)])
        (tensor([0.]), tensor([1.]))
        >>> as_arguments({"x": 1})
        ({'x': 1},)
    """
    if isinstance(batch, (tuple, list)) and not hasattr(batch, "is_cuda"):
        return tuple(batch)
    return (batch,)


def batch_length(args: Sequence[Any]) -> int:
    """The number of examples in a batch's arguments: the first leading dimension found.

    A ``PackedSequence`` counts its sequences (its first ``batch_sizes`` entry); a batch with no
    tensor counts as one example.

    Examples:
        >>> batch_length((torch.zeros(5, 2), torch.zeros(5)))
        5
    """
    for value in args:
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
        sizes = getattr(value, "batch_sizes", None)
        if isinstance(sizes, torch.Tensor) and sizes.numel() > 0:
            return int(sizes[0])
    return 1


def _is_tensor_tuple(data: Any) -> bool:
    return (
        isinstance(data, Sequence)
        and not isinstance(data, str)
        and len(data) > 0
        and all(isinstance(t, torch.Tensor) for t in data)
    )
