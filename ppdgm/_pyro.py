"""How ppdgm keeps each model's parameters its own under Pyro.

In Pyro's default (global) mode a PyroModule mirrors its parameters into the global param store
and, when a parameter of the same name is already there, trains or reads that one instead: two
instances of one model class silently share weights. With module-local parameters each
PyroModule owns its parameters like an ``nn.Module``. Pyro decides a module's mode when the
module is built, so ppdgm's models are built under :func:`local_params`, and the engine runs
them under it. Importing ppdgm changes no Pyro setting: PyroModules of your own built in the
default mode keep Pyro's default behaviour, and the engine guards them against stale entries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pyro
import torch
from pyro.nn import PyroModule

__all__: list[str] = []

_SUFFIX = "_unconstrained"


@contextlib.contextmanager
def local_params() -> Iterator[None]:
    """Build or run PyroModules with module-local parameters for the duration of the block."""
    with pyro.settings.context(module_local_params=True):
        yield


def built_for_local_params(module: torch.nn.Module) -> bool:
    """Whether every PyroModule inside ``module`` was built with module-local parameters."""
    return all(
        hasattr(sub._pyro_context, "param_state")
        for sub in module.modules()
        if isinstance(sub, PyroModule)
    )


def forget_stale_params(module: torch.nn.Module) -> list[str]:
    """Drop global-store entries that carry ``module``'s parameter names but other tensors.

    Such entries are left by another instance of the same class; in Pyro's global mode the module
    would otherwise train or read them instead of its own weights. The module stays the source
    of truth and re-registers its own tensors on next use. Returns the names dropped.
    """
    store = pyro.get_param_store()
    dropped = []
    for name, param in module.named_parameters():
        key = name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else name
        if key in store:
            stored = store[key]
            leaf = stored.unconstrained() if hasattr(stored, "unconstrained") else stored
            if leaf is not param:
                del store[key]
                dropped.append(key)
    return dropped
