"""Finding the parameters a model/guide pair trains, the way ``pyro.infer.SVI`` finds them.

SVI runs its objective under a ``param_only`` trace and trains whatever ``pyro.param`` statements
(``pyro.module``, PyroModule attributes, autoguides) ran, so parameters appear where the
objective's own run makes them, with its enumeration, vectorized particles and lazy
initialisation. :class:`ParamRecorder` is that trace, cut down to what the engine needs; wrapping
the model and the guide in :func:`recording_role` tells which of the two read each parameter
(for players that own ``"model"`` or ``"guide"`` parameters).

The Pyro param store may also hold objective state that no gradient reaches (the decaying-average
baselines of ``TraceGraph_ELBO``); :func:`param_store_state` and :func:`restore_param_store`
checkpoint such entries by name, with their constraints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pyro
import torch
from pyro.poutine.messenger import Messenger
from torch.distributions import constraints

from .checkpoint import CheckpointError, capture_rng_state, restore_rng_state

__all__ = [
    "ParamRecorder",
    "RoleProgram",
    "owning_modules",
    "param_store_state",
    "preserved_rng",
    "restore_param_store",
    "trainable_count",
]


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without consuming the random streams that training will read."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


def _leaf(value: Any) -> Any:
    unconstrained = getattr(value, "unconstrained", None)
    return unconstrained() if callable(unconstrained) else value


class ParamRecorder(Messenger):
    """Record the ``param`` sites that run inside the block: name -> trainable leaf, in order.

    ``seen`` lists every name read, trainable or not (objective state such as baselines).

    Examples:
        >>> with ParamRecorder() as recorder:
        ...     _ = pyro.param("recorded_scale", torch.ones(2))
        >>> list(recorder.found)
        ['recorded_scale']
    """

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, torch.Tensor] = {}
        self.seen: list[str] = []

    def _pyro_post_param(self, msg: dict[str, Any]) -> None:
        name = msg["name"]
        if name not in self.seen:
            self.seen.append(name)
        # The last tensor read under a name is the live one: a PyroModule in Pyro's global mode
        # swaps the store's first tensor for an nn.Parameter right after creating it.
        leaf = _leaf(msg["value"])
        if isinstance(leaf, torch.Tensor) and leaf.requires_grad:
            self.found[name] = leaf


class RoleProgram:
    """A model or guide that notes the names of the parameters it reads into ``names``.

    Attribute access goes to the wrapped program, so objectives that look at ``model.__self__``
    see the module behind a bound method as before.
    """

    def __init__(self, program: Callable[..., Any], names: set[str]) -> None:
        self._program = program
        self._names = names

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _NameCollector(self._names):
            return self._program(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._program, name)


class _NameCollector(Messenger):
    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self._names = names

    def _pyro_post_param(self, msg: dict[str, Any]) -> None:
        self._names.add(msg["name"])


def trainable_count(modules: list[torch.nn.Module]) -> int:
    """How many parameters the param store and ``modules`` hold: a cheap signal of new ones."""
    return len(pyro.get_param_store()) + sum(
        len(sub._parameters) for module in modules for sub in module.modules())


def owning_modules(*fns: Any) -> list[torch.nn.Module]:
    """The distinct ``nn.Module`` s behind callables (modules themselves or their bound methods)."""
    modules: list[torch.nn.Module] = []
    for fn in fns:
        module = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
        if isinstance(module, torch.nn.Module) and all(module is not m for m in modules):
            modules.append(module)
    return modules


# ---------------------------------------------------------------------------- param store state

_CONSTRAINT_NAMES = {id(c): name for name, c in vars(constraints).items()
                     if isinstance(c, constraints.Constraint)}
_CONSTRAINTS_BY_NAME = {name: c for name, c in vars(constraints).items()
                        if isinstance(c, constraints.Constraint)}


def _constraint_name(constraint: constraints.Constraint) -> str | None:
    if isinstance(constraint, type(constraints.real)):
        return "real"
    return _CONSTRAINT_NAMES.get(id(constraint))


def param_store_state(names: list[str]) -> dict[str, dict[str, Any]]:
    """The param store's entries among ``names`` as plain data: unconstrained value and constraint.

    Examples:
        >>> _ = pyro.param("stored_rate", torch.ones(1), constraint=constraints.positive)
        >>> param_store_state(["stored_rate"])["stored_rate"]["constraint"]
        'positive'
    """
    store = pyro.get_param_store()
    state = store.get_state()
    out = {}
    for name in names:
        if name in state["params"]:
            out[name] = {"value": state["params"][name].detach().clone(),
                         "constraint": _constraint_name(state["constraints"][name])}
    return out


def restore_param_store(saved: dict[str, dict[str, Any]], path: str) -> None:
    """Put checkpointed param-store entries back, bit for bit, without breaking trained tensors.

    An entry whose live tensor the engine trains is copied into in place (the optimizer keeps
    its tensor); any other entry is replaced. An entry absent from the store is created with its
    recorded constraint, which must then be one of ``torch.distributions.constraints``' named
    constraints.
    """
    store = pyro.get_param_store()
    state = store.get_state()
    for name, entry in saved.items():
        value = entry["value"]
        live = state["params"].get(name)
        if live is not None and live.shape == value.shape:
            with torch.no_grad():
                live.copy_(value)
            continue
        if name in state["constraints"]:
            constraint = state["constraints"][name]
        else:
            constraint = _CONSTRAINTS_BY_NAME.get(entry["constraint"] or "")
            if constraint is None:
                raise CheckpointError(
                    f"resume: param store entry {name!r} in {path!r} was created with a constraint "
                    f"that cannot be recorded by name ({entry['constraint']!r}); create it in the "
                    "first step of the run so that resuming finds it")
        state["params"][name] = value.clone().requires_grad_(True)
        state["constraints"][name] = constraint
    store.set_state(state)
