"""The one container every dataset comes in, and the DataLoader it hands out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from .._validation import check_choice, check_positive_int, check_tensor

__all__ = ["Dataset", "SPLITS", "SUPPORTS", "head_rows", "to_binary"]

SPLITS: tuple[str, ...] = ("train", "valid", "test")
SUPPORTS: tuple[str, ...] = ("binary", "unit", "real")


# eq=False: tensors have no single truth value, so compare datasets by identity.
@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Train/valid/test tensors of one dataset, with labels and what is known about it.

    Every tensor is ``(N, *event_shape)`` floating point; images are ``(N, C, H, W)``.
    ``support`` says which likelihood fits: ``"binary"`` (values in {0, 1}, Bernoulli),
    ``"unit"`` ([0, 1]) or ``"real"``. Labels are int64 ``(N,)`` class or mixture-component
    indices. ``centres`` (K, *event_shape) and ``scale`` describe known mixture modes.
    The constructor checks all of this, so a hand-made dataset is as safe as a loaded one.

    Examples:
        >>> ds = Dataset("toy", train=torch.zeros(6, 2), test=torch.ones(3, 2))
        >>> ds.event_shape, ds.split("test").shape
        ((2,), torch.Size([3, 2]))
        >>> next(iter(ds.loader(batch_size=4)))[0].shape
        torch.Size([4, 2])
    """

    name: str
    train: torch.Tensor
    test: torch.Tensor
    valid: torch.Tensor | None = None
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    valid_labels: torch.Tensor | None = None
    support: str = "real"
    centres: torch.Tensor | None = None
    scale: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name: expected a non-empty str, got {self.name!r}")
        check_choice("support", self.support, SUPPORTS)
        support = None if self.support == "real" else self.support
        train = check_tensor("train", self.train, floating=True, support=support)
        if train.dim() < 2 or train.shape[0] == 0:
            raise ValueError(
                f"train: expected shape (N, *event_shape) with N >= 1, got {tuple(train.shape)}"
            )
        event_shape = tuple(train.shape[1:])
        for which in SPLITS:
            x = getattr(self, which)
            if which != "train" and x is not None:
                check_tensor(which, x, event_shape=event_shape, floating=True, support=support)
            y = getattr(self, f"{which}_labels")
            if y is not None:
                _check_labels(f"{which}_labels", y, x)
        if self.centres is not None:
            check_tensor("centres", self.centres, event_shape=event_shape, floating=True)
        if self.scale is not None:
            s = self.scale
            if isinstance(s, bool) or not isinstance(s, (int, float)):
                raise TypeError(f"scale: expected a float, got {type(s).__name__}")
            if not (math.isfinite(s) and s > 0):
                raise ValueError(f"scale: expected a finite float > 0, got {s}")

    @property
    def event_shape(self) -> tuple[int, ...]:
        """The shape of one example, ``train.shape[1:]``.

        Examples:
            >>> ds = Dataset("toy", train=torch.zeros(4, 1, 2, 2), test=torch.zeros(1, 1, 2, 2))
            >>> ds.event_shape
            (1, 2, 2)
        """
        return tuple(self.train.shape[1:])

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits present, in the order train, valid, test.

        Examples:
            >>> Dataset("toy", train=torch.zeros(4, 2), test=torch.zeros(1, 2)).splits
            ('train', 'test')
        """
        return tuple(w for w in SPLITS if getattr(self, w) is not None)

    def split(self, which: str) -> torch.Tensor:
        """The data of split ``which`` (``"train"``, ``"valid"`` or ``"test"``).

        Examples:
            >>> Dataset("toy", train=torch.zeros(4, 2), test=torch.zeros(1, 2)).split("train").shape
            torch.Size([4, 2])
        """
        check_choice("which", which, SPLITS)
        x = getattr(self, which)
        if x is None:
            raise ValueError(
                f"which: dataset {self.name!r} has no {which!r} split; "
                f"expected one of {', '.join(map(repr, self.splits))}"
            )
        return x

    def labels(self, which: str) -> torch.Tensor:
        """The int64 labels of split ``which``; raises when the dataset has none.

        Examples:
            >>> ds = Dataset("toy", train=torch.zeros(2, 1), test=torch.zeros(1, 1),
            ...              train_labels=torch.tensor([0, 1]), test_labels=torch.tensor([1]))
            >>> ds.labels("train")
            tensor([0, 1])
        """
        self.split(which)
        y = getattr(self, f"{which}_labels")
        if y is None:
            raise ValueError(f"which: dataset {self.name!r} has no labels for the {which!r} split")
        return y

    def loader(
        self,
        which: str = "train",
        batch_size: int = 128,
        shuffle: bool | None = None,
        generator: torch.Generator | None = None,
        *,
        with_labels: bool = False,
        **kwargs: Any,
    ) -> DataLoader:
        """A DataLoader over ``TensorDataset(x)``, or ``TensorDataset(x, y)`` with labels.

        Batches are lists ``[x]`` (or ``[x, y]``). ``shuffle`` defaults to ``which == "train"``.
        A shuffled loader without a ``generator`` gets its own ``torch.Generator`` seeded with 0,
        so its batch order is reproducible rather than drawn from the global RNG.
        Other keyword arguments (``drop_last``, ``pin_memory``, ...) go to the DataLoader.

        Examples:
            >>> ds = Dataset("toy", train=torch.zeros(10, 3), test=torch.zeros(2, 3))
            >>> [b[0].shape[0] for b in ds.loader(batch_size=4)]
            [4, 4, 2]
        """
        x = self.split(which)
        check_positive_int("batch_size", batch_size)
        if shuffle is None:
            shuffle = which == "train"
        elif not isinstance(shuffle, bool):
            raise TypeError(f"shuffle: expected a bool or None, got {type(shuffle).__name__}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator: expected a torch.Generator or None, got {type(generator).__name__}"
            )
        if not isinstance(with_labels, bool):
            raise TypeError(f"with_labels: expected a bool, got {type(with_labels).__name__}")
        tensors = (x, self.labels(which)) if with_labels else (x,)
        if shuffle and generator is None:
            generator = torch.Generator().manual_seed(0)
        return DataLoader(
            TensorDataset(*tensors),
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            **kwargs,
        )

    def __repr__(self) -> str:
        # The default repr would print every pixel; shapes are what a reader wants.
        parts = [f"name={self.name!r}", f"support={self.support!r}"]
        for which in self.splits:
            labelled = "+labels" if getattr(self, f"{which}_labels") is not None else ""
            parts.append(f"{which}={tuple(getattr(self, which).shape)}{labelled}")
        if self.centres is not None:
            parts.append(f"centres={tuple(self.centres.shape)}, scale={self.scale}")
        return f"Dataset({', '.join(parts)})"


def _check_labels(name: str, y: object, x: torch.Tensor | None) -> None:
    if x is None:
        raise ValueError(f"{name}: expected None because its split is None, got a tensor")
    y = check_tensor(name, y, ndim=1)
    if y.dtype != torch.int64:
        raise TypeError(f"{name}: expected dtype torch.int64, got {y.dtype}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name}: expected {x.shape[0]} labels (one per example), got {y.shape[0]}"
        )


def head_rows(x: torch.Tensor, n: int | None, name: str) -> torch.Tensor:
    """The first ``n`` rows of ``x`` (all when ``n`` is None); asking for more is an error."""
    if n is None:
        return x
    if n > x.shape[0]:
        raise ValueError(f"{name}: expected at most {x.shape[0]} (the split's size), got {n}")
    return x[:n]


def to_binary(x: torch.Tensor) -> torch.Tensor:
    """Threshold [0, 1] intensities at 0.5 (strictly above -> 1), keeping the dtype."""
    return (x > 0.5).to(x.dtype)
