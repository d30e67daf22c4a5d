"""Build a model's config dataclass from an optional instance plus keyword overrides."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

__all__: list[str] = []

C = TypeVar("C")


def resolve_config(cls: type[C], config: C | None, overrides: dict[str, Any],
                   tuple_fields: Sequence[str]) -> C:
    """``config`` (or the defaults) with ``overrides`` applied, validated, lists made tuples.

    Lists arrive from JSON and checkpoints; configs use tuples throughout. The caller's object is
    left untouched.
    """
    if config is not None and not isinstance(config, cls):
        raise TypeError(f"config: expected a {cls.__name__} or None, got {type(config).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(
            f"overrides: unknown {cls.__name__} fields {unknown}; expected some of {sorted(names)}"
        )
    resolved = dataclasses.replace(config or cls(), **overrides)
    resolved.validate()
    return dataclasses.replace(resolved, **{f: tuple(getattr(resolved, f)) for f in tuple_fields})
