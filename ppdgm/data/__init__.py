"""Datasets behind one interface: :func:`load_dataset` returns a :class:`Dataset` of tensors.

Examples:
    >>> from ppdgm.data import load_dataset
    >>> batch, = next(iter(load_dataset("digits").loader(batch_size=32)))
    >>> batch.shape
    torch.Size([32, 1, 8, 8])
"""

from __future__ import annotations

from .base import Dataset
from .registry import DATASETS, load_dataset

__all__ = ["DATASETS", "Dataset", "load_dataset"]
