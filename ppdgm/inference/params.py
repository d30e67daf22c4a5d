"""Finding the parameters a model/guide pair trains, whatever way they were declared.

Parameters come from ``pyro.param``/``pyro.module`` statements (Pyro's global store), from
PyroModules (their own attributes) and from ``torch.nn.Module`` s that own the model or guide.
One traced run of each finds them all, in a deterministic order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyro.poutine as poutine
import torch

from .checkpoint import capture_rng_state, restore_rng_state

__all__ = ["DiscoveredParams", "discover_params", "owning_modules", "preserved_rng"]


@dataclass
class DiscoveredParams:
    """Leaf tensors by name, and which names the model and the guide read."""

    params: dict[str, torch.Tensor]
    model_names: set[str]
    guide_names: set[str]


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without consuming the random streams that training will read."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


def _param_sites(fn: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
    with poutine.trace(param_only=True) as capture, torch.no_grad():
        fn(*args, **kwargs)
    found: dict[str, torch.Tensor] = {}
    for name, site in capture.trace.nodes.items():
        value = site["value"]
        unconstrained = getattr(value, "unconstrained", None)
        leaf = unconstrained() if callable(unconstrained) else value
        if isinstance(leaf, torch.Tensor) and leaf.requires_grad:
            found[name] = leaf
    return found


def discover_params(
    model: Callable[..., Any], guide: Callable[..., Any], args: tuple, kwargs: dict
) -> DiscoveredParams:
    """Trace ``model`` and ``guide`` once on a batch and return the parameters they read.

    A tensor reached under two names (a PyroModule parameter shared by model and guide) is
    kept once, under the first name seen.
    """
    with preserved_rng():
        model_params = _param_sites(model, args, kwargs)
        guide_params = _param_sites(guide, args, kwargs)
    params: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, leaf in [*model_params.items(), *guide_params.items()]:
        if id(leaf) not in seen and name not in params:
            params[name] = leaf
            seen.add(id(leaf))
    return DiscoveredParams(params, set(model_params), set(guide_params))


def owning_modules(*fns: Any) -> list[torch.nn.Module]:
    """The distinct ``nn.Module`` s behind callables (modules themselves or their bound methods)."""
    modules: list[torch.nn.Module] = []
    for fn in fns:
        module = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
        if isinstance(module, torch.nn.Module) and all(module is not m for m in modules):
            modules.append(module)
    return modules
