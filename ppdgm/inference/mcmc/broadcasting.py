"""Does a model broadcast over a dimension left of its plates? The check the discrete kernels run
before their first step.

:class:`~.gibbs.Gibbs` stacks candidate values, and every kernel stacks vectorized chains, on a
batch dimension left of the model's plates, as Pyro's parallel enumeration does. A model that
builds its tensors with fixed shapes (``torch.zeros(3)`` filled from a site, ``z.sum()`` over every
dimension, ``z[0]``) either fails there with a raw shape error from deep inside torch, or worse,
runs and mixes the stacked values together. :func:`check_broadcasts` runs the model on a few values
of every latent site stacked on that dimension and compares each one's log density with a run of
its own; when they differ, or the stacked run fails, it refuses the model in one line naming the
statement and how to write it.
"""

from __future__ import annotations

import os
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import pyro
import pyro.poutine as poutine
import torch
from pyro.poutine.messenger import Messenger
from torch.utils._pytree import tree_flatten

__all__ = ["STACKED", "check_broadcasts"]

#: Prior draws stacked on the new dimension and compared with their runs one by one.
STACKED = 4

_ADVICE = ("write batch dimensions with pyro.plate and index and reduce from the right "
           "(z[..., i], z.sum(-1), z @ w) so that extra dimensions on the left broadcast, as "
           "Pyro's parallel enumeration needs")
_LIBRARIES = tuple(os.path.dirname(m.__file__) + os.sep for m in (torch, pyro, os)) + (
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep,)


def _users(frames: list[traceback.FrameSummary]) -> traceback.FrameSummary | None:
    """The innermost frame outside torch, Pyro and ppdgm: the model's own statement."""
    for frame in reversed(frames):
        if not os.path.abspath(frame.filename).startswith(_LIBRARIES):
            return frame
    return None


def _where(frame: traceback.FrameSummary | None) -> str:
    if frame is None:
        return "a statement of the model"
    line = f": `{frame.line.strip()}`" if frame.line else ""
    return f"{os.path.basename(frame.filename)}:{frame.lineno}{line}"


class _SiteStatements(Messenger):
    """Remembers the model's statement behind every sample site."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: dict[str, traceback.FrameSummary | None] = {}

    def _pyro_sample(self, msg: dict[str, Any]) -> None:
        self.frames.setdefault(msg["name"], _users(traceback.extract_stack()))


def _nesting(trace: poutine.Trace) -> int:
    dims = [-f.dim for site in trace.nodes.values() if site["type"] == "sample"
            for f in site["cond_indep_stack"] if f.vectorized and f.dim is not None]
    return max(dims, default=0)


def _per_element(log_prob: torch.Tensor, dim: int) -> torch.Tensor:
    if log_prob.dim() < dim:
        return log_prob.sum().expand(STACKED)
    moved = log_prob.movedim(log_prob.dim() - dim, 0)
    return moved.reshape(moved.shape[0], -1).sum(1).expand(STACKED)


#: Programs found to broadcast, by function, with the shapes of the arguments they were run on:
#: a kernel set up again on the same model (a calibration's hundreds of runs) is not checked
#: again. Weak keys: a program that goes away takes its entries with it.
_VERIFIED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _verified_key(model: Callable, args: tuple, kwargs: dict) -> tuple[Any, Any] | None:
    """(the function, the shapes it is run on), or ``None`` for a callable that cannot be
    remembered (a callable object without weak references)."""
    function = getattr(model, "__func__", model)
    owner = id(getattr(model, "__self__", None))
    leaves, spec = tree_flatten((args, kwargs))
    # Tensors by shape; plain numbers and strings by value, as they may set shapes (num_samples).
    layout = tuple((tuple(leaf.shape), leaf.dtype, str(leaf.device)) if isinstance(leaf, torch.Tensor)
                   else repr(leaf) if isinstance(leaf, (int, float, str, bool, type(None)))
                   else type(leaf).__name__ for leaf in leaves)
    try:
        weakref.ref(function)
    except TypeError:
        return None
    return function, (owner, str(spec), layout)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-4, atol=1e-4 * (1 + float(b.abs().max())))


def _pure(model: Callable, runs: list[poutine.Trace], latent: list[str], args: tuple,
          kwargs: dict) -> bool:
    """Whether the model gives each run's log densities again from the same values: a model
    whose output drifts from call to call (a counter, a cache) cannot be judged by comparison."""
    for run in runs:
        again = poutine.trace(poutine.condition(
            model, data={n: run.nodes[n]["value"] for n in latent})).get_trace(*args, **kwargs)
        again.compute_log_prob()
        for name, site in run.nodes.items():
            if site["type"] == "sample" and not _close(
                    again.nodes[name]["log_prob"].sum().reshape(1),
                    site["log_prob"].sum().reshape(1)):
                return False
    return True


def _draws(model: Callable, args: tuple, kwargs: dict,
           is_latent: Callable[[dict], bool]) -> list[poutine.Trace]:
    """:data:`STACKED` prior runs, no two with equal latent values where a few more draws can
    avoid it: equal values, or a pair whose mixture happens to score the same, would hide a
    model that adds the stacked values together."""
    def run() -> poutine.Trace:
        trace = poutine.trace(model).get_trace(*args, **kwargs)
        trace.compute_log_prob()
        return trace

    def same(a: poutine.Trace, b: poutine.Trace) -> bool:
        return all(name in b.nodes and torch.equal(site["value"], b.nodes[name]["value"])
                   for name, site in a.nodes.items() if is_latent(site))

    runs = [run()]
    for _ in range(4 * STACKED):
        if len(runs) == STACKED:
            break
        candidate = run()
        if not any(same(candidate, kept) for kept in runs):
            runs.append(candidate)
    while len(runs) < STACKED:  # too few distinct values: compare what there is
        runs.append(run())
    return runs


def check_broadcasts(model: Callable, args: tuple = (), kwargs: dict | None = None, *,
                     is_latent: Callable[[dict], bool]) -> None:
    """Raise a ``ValueError`` naming the model's statement when ``model(*args, **kwargs)`` does not
    broadcast over a batch dimension left of its plates; return quietly when it does, or when its
    structure or its output changes from run to run with the same values (nothing to compare).
    The global RNG is left as it was.

    Examples:
        >>> import pyro.distributions as dist
        >>> from ppdgm.inference.mcmc.gibbs import is_latent_site
        >>> def model():
        ...     z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(3)).to_event(1))
        ...     pyro.sample("y", dist.Normal(z.sum(), 1.0), obs=torch.tensor(2.0))
        >>> check_broadcasts(model, is_latent=is_latent_site)
        Traceback (most recent call last):
        ...
        ValueError: model: site 'y' mixes values stacked ... (<doctest ...>:3: `pyro.sample("y", ...`); ...
    """
    kwargs = {} if kwargs is None else kwargs
    verified = _verified_key(model, args, kwargs)
    if verified is not None and verified[1] in _VERIFIED.get(verified[0], ()):
        return
    with torch.random.fork_rng(), torch.no_grad():
        runs = _draws(model, args, kwargs, is_latent)
        latent = [n for n, s in runs[0].nodes.items() if is_latent(s)]
        shapes = [{n: tuple(t.nodes[n]["value"].shape) for n in latent if n in t.nodes}
                  for t in runs]
        # A subsampling plate draws other indices each run: the runs cannot be compared.
        subsampled = any(f.full_size is not None and f.full_size != f.size
                         for t in runs for s in t.nodes.values() if s["type"] == "sample"
                         for f in s["cond_indep_stack"])
        if any(shape != shapes[0] for shape in shapes) or len(shapes[0]) != len(latent) or subsampled:
            return
        nesting = _nesting(runs[0])
        dim = nesting + 1
        stacked = {}
        for name in latent:
            site = runs[0].nodes[name]
            pad = nesting - len(site["fn"].batch_shape)
            values = [t.nodes[name]["value"] for t in runs]
            stacked[name] = torch.stack([v.reshape((1,) * pad + tuple(v.shape)) for v in values])

        def together(*a: Any, **k: Any) -> Any:
            with pyro.plate("_stacked", STACKED, dim=-dim):
                return model(*a, **k)

        statements = _SiteStatements()
        try:
            with statements:
                trace = poutine.trace(poutine.condition(together, data=stacked)).get_trace(
                    *args, **kwargs)
            trace.compute_log_prob()
        except Exception as err:  # noqa: BLE001 - any failure here is the model's shape code
            where = _where(_users(traceback.extract_tb(err.__traceback__)))
            summary = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"model: it fails with values stacked on a dimension left of its "
                             f"plates ({where}: {summary}); {_ADVICE}") from err
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or name not in runs[0].nodes:
                continue
            together_lp = _per_element(site["log_prob"], dim)
            alone = torch.stack([t.nodes[name]["log_prob"].sum() for t in runs]).to(together_lp)
            if not _close(together_lp, alone) and _pure(model, runs, latent, args, kwargs):
                raise ValueError(f"model: site {name!r} mixes values stacked on a dimension left "
                                 f"of the model's plates ({_where(statements.frames.get(name))})"
                                 f"; {_ADVICE}")
    if verified is not None:
        _VERIFIED.setdefault(verified[0], set()).add(verified[1])
