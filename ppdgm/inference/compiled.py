"""The compiled step: a player's loss and gradients traced once through Pyro, replayed as one graph.

Every eager step runs the Pyro program through its effect handlers again: each ``sample``,
``plate`` and ``param`` statement of model and guide is interpreted anew, and on small models
(and on GPUs) that interpretation is most of the step. :class:`StepGraphs` runs the player's loss
and its ``torch.autograd.grad`` once under ``torch.fx.experimental.proxy_tensor.make_fx``: the
handlers run at trace time only, and what is left is the graph of tensor operations, forward and
backward, which later steps replay. The parameters enter the graph as references to the very
tensors the optimizer updates in place, so every replay reads their current values; random
draws are recorded as the same random operations, so a replay draws from torch's global
generator exactly as the eager step would (``mode="replay"`` gives the eager run's numbers, bit
for bit). ``mode="inductor"`` also compiles each graph with ``torch.compile``.

**Never a stale graph.** A graph is used only for the batch it was traced for: the same tensor
shapes, dtypes and devices, the same non-tensor arguments, the same parameters; anything else
traces again (at most ``cache_size`` graphs are kept per player). A branch on a tensor's truth
(``if x.sum() > 0``, Pyro's ``if not mask.all()``) or on an integer tensor's value becomes a
*guard*: the graph follows the way the program went when it was traced, and returns the tensors
it branched on beside its result; a replay whose guards come out otherwise is thrown away (its
random draws too) and that step runs eagerly, and after a few such steps the program runs
eagerly for good. A program that reads a float into Python (``.item()`` of a float, ``float(t)``,
``.tolist()``) cannot be traced: it runs eagerly from then on, and one logged line says why. The
objective's plain settings are part of the key (:func:`settings_key`), and the tensors it keeps
from step to step (``step_state``) go in and out of the graph. A program may also read other
Python state that a graph would freeze (a float updated every step in a closure): so the second
time a graph is used, it is checked against the eager program on the same random numbers, and a
disagreement sends that player back to eager steps, saying so.

Pyro's ELBOs turn their loss into a Python float on the way (``torch_item``) and check it for NaN
(``warn_if_nan``); while tracing, both are made to keep tensors, which leaves the value and the
gradient as they are. Validation (argument and support checks, which read values) is off in a
traced step; :class:`~ppdgm.inference.engine.Engine` traces only steps that run without it.

Examples:
    >>> import pyro, pyro.distributions as dist
    >>> from pyro.infer import Trace_ELBO
    >>> loc = torch.zeros((), requires_grad=True)
    >>> def model(x):
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("x", dist.Normal(loc, 1.0), obs=x)
    >>> def loss(args, kwargs):
    ...     return Trace_ELBO().differentiable_loss(model, lambda x: None, *args, **kwargs)
    >>> graphs = StepGraphs("replay")
    >>> value, grads = graphs.loss_and_grads("svi", loss, [loc], (torch.ones(3),), {})
    >>> float(value), float(grads[0])              # -sum log N(1 | 0, 1) and d/dloc of it
    (4.2568..., -3.0)
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyro
import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

__all__ = ["COMPILE_MODES", "Graphs", "NotTraceable", "StepGraphs", "check_compile", "layout_key",
           "settings_key"]

#: What ``TrainConfig(compile=...)`` takes: no graphs, replayed graphs, graphs compiled by Inductor.
COMPILE_MODES = ("off", "replay", "inductor")
_LOG = logging.getLogger(__name__)
# The uses of a graph on which it is checked against the eager program: soon after tracing, then
# ever more rarely, so a program whose Python state drifts is caught at little cost.
_CHECKED_USES = frozenset({1, 10, 100, 1_000, 10_000, 100_000})
# Tensor methods that turn a value into Python, which a replayed graph would keep frozen.
_VALUE_READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__",
                "__array__")
# Reads of an integer (or boolean) scalar that become guards, as a tensor's truth does.
_INTEGER_READS = ("item", "__int__", "__index__")


def check_compile(value: object) -> str:
    """``TrainConfig.compile`` as one of :data:`COMPILE_MODES` (``False`` is ``"off"``, ``True``
    is ``"inductor"``); anything else is refused, naming the argument.

    Examples:
        >>> check_compile(True), check_compile(False), check_compile("replay")
        ('inductor', 'off', 'replay')
    """
    if value is True:
        return "inductor"
    if value is False or value is None:
        return "off"
    if isinstance(value, str) and value in COMPILE_MODES:
        return value
    raise ValueError(f"compile: expected True, False or one of {list(COMPILE_MODES)}, got {value!r}")


class NotTraceable(Exception):
    """The step cannot be a graph; the message says why."""


# A program whose guards fail this many times runs eagerly from then on.
_GUARD_MISSES = 3
# From this many traces on, a name traced on more than half its calls runs eagerly.
_RETRACES = 16


@dataclass
class _Graph:
    run: Callable[..., Any]
    expected: tuple[Any, ...] = ()  # the guards' values when traced
    uses: int = 0
    misses: int = 0


class Graphs:
    """Functions of tensors traced once through Pyro and replayed as graphs, one cache per name.

    :meth:`run` gives ``fn(*inputs)`` (a tuple, list or dict of tensors and ``None`` s) from a
    graph traced for the key it is given, tracing on a new key; ``None`` means that the caller
    runs ``fn`` itself this time: ``name`` runs eagerly from now on (:attr:`eager` says why), or
    the graph's guards went another way on this call. :class:`StepGraphs` (a player's loss
    and gradients) and :class:`~ppdgm.inference.mcmc.Gibbs` (a sweep) are its users.

    Args:
        mode: ``"replay"`` (replay the traced graph) or ``"inductor"`` (compile it with
            ``torch.compile`` first).
        cache_size: graphs kept per name (each batch shape, e.g. an epoch's last shorter batch,
            has its own); the least recently used goes first.
        subject: what a name is, in the line logged when one runs eagerly.
    """

    subject = "function"

    def __init__(self, mode: str, *, cache_size: int = 8, subject: str | None = None) -> None:
        if mode not in ("replay", "inductor"):
            raise ValueError(f"mode: expected 'replay' or 'inductor', got {mode!r}")
        self.mode = mode
        self.cache_size = cache_size
        if subject is not None:
            self.subject = subject
        self._graphs: dict[str, OrderedDict[Any, _Graph]] = {}
        #: Names that run eagerly, with the reason.
        self.eager: dict[str, str] = {}
        #: How many graphs were traced, per name.
        self.traces: dict[str, int] = {}
        #: How many calls asked for a graph, per name.
        self.calls: dict[str, int] = {}

    def run(self, name: str, fn: Callable[..., Any], inputs: Sequence[torch.Tensor], key: Any, *,
            params: Iterable[torch.Tensor] = ()) -> Any:
        """``fn(*inputs)``, from the graph traced for ``key`` (which must say everything ``fn``
        depends on besides the values of ``inputs`` and of ``params``); ``None`` when this call
        must run eagerly (random draws as they were before it). ``params`` are the tensors
        ``fn`` reads besides its inputs, by identity (the graph reads their current values)."""
        if name in self.eager:
            return None
        if key is None:
            return self._give_up(name, "its inputs hold something other than tensors and plain "
                                       "numbers, strings or tuples of them")
        inputs = list(inputs)
        self.calls[name] = self.calls.get(name, 0) + 1
        cache = self._graphs.setdefault(name, OrderedDict())
        graph = cache.get(key)
        params = list(params)
        if graph is None:
            try:
                with _plain_parameters([*params, *inputs]):
                    traced, expected = _trace(fn, inputs, params)
                graph = _Graph(self._compiled(traced), expected)
            except NotTraceable as err:
                return self._give_up(name, str(err))
            cache[key] = graph
            self.traces[name] = self.traces.get(name, 0) + 1
            if self.traces[name] >= _RETRACES and 2 * self.traces[name] > self.calls.get(name, 0):
                # A key that changes on most calls (a counter among the objective's settings,
                # ever new shapes) would trace on every step, far slower than eager steps.
                return self._give_up(name, f"it was traced anew on {self.traces[name]} of "
                                           f"{self.calls[name]} calls (what its graphs are keyed "
                                           "by keeps changing)")
            while len(cache) > self.cache_size:
                cache.popitem(last=False)
        cache.move_to_end(key)
        graph.uses += 1
        if graph.uses - 1 in _CHECKED_USES:
            result, agrees = _checked(graph, fn, inputs, params)
            if agrees is None:
                return self._missed(name, graph, result)
            if not agrees:
                cache.clear()
                self._give_up(name, "its graph disagreed with the program on a later step (the "
                                    "program reads Python state that a graph would freeze)")
            return result
        # The graph holds its backward operations itself: autograd has nothing to record.
        devices = _cuda_devices([*inputs, *params])
        state = torch.random.get_rng_state()
        cuda_states = [torch.cuda.get_rng_state(d) for d in devices]
        try:
            with torch.no_grad():
                out, guards = graph.run(*inputs)
        except Exception as err:  # noqa: BLE001 - a graph that fails must not end the run
            _set_rng(state, devices, cuda_states)  # the eager call draws what the graph would have
            return self._give_up(name, f"its graph failed when replayed ({_reason(err)})")
        if not _guards_hold(guards, graph.expected):
            _set_rng(state, devices, cuda_states)
            return self._missed(name, graph, None)
        return out

    def _missed(self, name: str, graph: _Graph, result: Any) -> Any:
        """A call whose guards went another way than when traced: it runs eagerly (``result``
        is its eager result when there is one already), and the program for good after a few."""
        graph.misses += 1
        if graph.misses >= _GUARD_MISSES:
            self._give_up(name, f"it branches on tensor values that went another way than when "
                                f"traced on {graph.misses} calls")
        return result

    def _compiled(self, traced: torch.fx.GraphModule) -> Callable[..., Any]:
        return _inductor(traced) if self.mode == "inductor" else traced

    def _give_up(self, name: str, reason: str) -> None:
        self.eager[name] = reason
        self._graphs.pop(name, None)
        _LOG.warning("compile: %s %r runs eagerly: %s", self.subject, name, reason)
        return None


class StepGraphs(Graphs):
    """Per player, the traced graphs of its loss and gradients, keyed by what they were traced
    from: the batch's structure, tensor layouts and plain values, and the parameters."""

    subject = "player"

    def loss_and_grads(self, player: str, loss_fn: Callable[[tuple, dict], Any],
                       params: Sequence[torch.Tensor], args: tuple, kwargs: dict, *,
                       others: Iterable[torch.Tensor] = (), owner: Any = None
                       ) -> tuple[torch.Tensor, list[torch.Tensor | None]] | None:
        """The loss and the gradient of each of ``params`` (``None`` for one the loss does not
        reach), from a graph; ``None`` when this player must run eagerly. ``others`` are the
        run's other parameters, which the program may read too (looked at only when tracing).

        ``owner`` is the objective: its plain settings (``vars`` entries that are numbers,
        strings or booleans, such as CD's sweeps, which ``anneal`` grows) are part of the key,
        so a changed setting traces anew; and when it keeps tensors from step to step
        (:meth:`step_state` and :meth:`load_step_state`, as NVIL's running statistics and
        PCD's chains do), they are inputs and outputs of the graph, loaded back after each
        replay."""
        leaves, spec = tree_flatten((args, kwargs))
        positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        params = list(params)
        carried = _carried_state(owner)
        names = sorted(carried)

        def step(*tensors: torch.Tensor) -> tuple[Any, ...]:
            held, batch = tensors[:len(names)], tensors[len(names):]
            filled = list(leaves)
            for i, tensor in zip(positions, batch):
                filled[i] = tensor
            a, k = tree_unflatten(filled, spec)
            if names:
                owner.load_step_state(dict(zip(names, held)))
            try:
                loss = loss_fn(a, k)
                after = _carried_state(owner)
            finally:
                if names:  # the object keeps real tensors; the caller loads the new ones
                    owner.load_step_state(carried)
            if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
                raise NotTraceable("its loss is not one tensor with a gradient")
            if sorted(after) != names:
                raise NotTraceable("the objective's step state changed its entries during a step")
            grads = list(torch.autograd.grad(loss, params, allow_unused=True))
            return loss.detach(), grads, [after[n] for n in names]

        key = layout_key(args, kwargs, params)
        if key is not None:
            key = (key, settings_key(owner),
                   tuple((n, tuple(carried[n].shape), carried[n].dtype, carried[n].device)
                         for n in names))
        out = self.run(player, step, [*(carried[n] for n in names),
                                      *(leaves[i] for i in positions)],
                       key, params=[*params, *others])
        if out is None:
            return None
        if names:
            owner.load_step_state(dict(zip(names, out[2])))
        return out[0], list(out[1])


def _carried_state(owner: Any) -> dict[str, torch.Tensor]:
    read = getattr(owner, "step_state", None)
    return dict(read()) if callable(read) else {}


def settings_key(owner: Any) -> tuple[tuple[str, Any], ...]:
    """An object's plain settings, as part of a graph's key: its attributes that are numbers,
    strings, booleans or ``None`` (a changed one means another program).

    Examples:
        >>> from ppdgm import ContrastiveDivergence
        >>> cd = ContrastiveDivergence(k=1, k_final=3)
        >>> before = settings_key(cd); _ = cd.anneal(1.0); before == settings_key(cd)
        False
    """
    if owner is None:
        return ()
    return tuple(sorted((name, value) for name, value in vars(owner).items()
                        if isinstance(value, _PLAIN) and value == value))


def _trace(fn: Callable[..., Any], inputs: list[torch.Tensor], params: list[torch.Tensor]
           ) -> tuple[torch.fx.GraphModule, tuple[Any, ...]]:
    """``fn`` traced by make_fx on ``inputs``, as a graph returning ``(fn's result, guards)``,
    and the guards' values then. Pyro's float reads are kept as tensors, branches on tensors
    become guards, and any other value read is refused (:class:`NotTraceable`)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    guards: list[tuple[torch.Tensor, Any]] = []

    def traced(*tensors: torch.Tensor) -> Any:
        guards.clear()  # make_fx may run the function more than once
        with _tensor_items(), _value_reads_refused(guards), pyro.validation_enabled(False):
            out = fn(*tensors)
        return out, [tensor for tensor, _ in guards]

    try:
        # The trace runs the program once: its random draws must not move the real stream.
        with torch.random.fork_rng(devices=_cuda_devices([*inputs, *params])):
            graph = make_fx(traced)(*inputs)
    except NotTraceable:
        raise
    except Exception as err:  # noqa: BLE001 - any failure to trace means "run eagerly"
        raise NotTraceable(_reason(err)) from err
    return graph, tuple(value for _, value in guards)


def _checked(graph: _Graph, fn: Callable[..., Any], inputs: list[torch.Tensor],
             params: list[torch.Tensor]) -> tuple[Any, bool | None]:
    """This call run by the eager program, and whether the graph, replayed from the same random
    state, agrees with it (``None`` when the graph's guards went another way: nothing to
    compare). The eager result is the call's either way, so the program runs once for it, as it
    would without graphs."""
    with torch.random.fork_rng(devices=_cuda_devices([*inputs, *params])), torch.no_grad():
        replayed, guards = graph.run(*inputs)
    try:
        with pyro.validation_enabled(False):
            eager = fn(*inputs)
    except NotTraceable:
        return None, False
    if not _guards_hold(guards, graph.expected):
        return eager, None
    ours, ours_spec = tree_flatten(replayed)
    theirs, theirs_spec = tree_flatten(eager)
    agrees = ours_spec == theirs_spec and all(
        (a is None and b is None) or (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                                      and _close(a, b.detach()))
        for a, b in zip(ours, theirs))
    return eager, agrees


# --------------------------------------------------------------------------- helpers


def _guards_hold(guards: Sequence[torch.Tensor], expected: tuple[Any, ...]) -> bool:
    # One read of all of them at once: on a GPU, one synchronisation a step.
    if not guards:
        return True
    values = torch.stack([g.reshape(()).to(torch.int64) for g in guards]).tolist()
    return values == [int(v) for v in expected]


def _set_rng(state: torch.Tensor, devices: list[int], cuda_states: list[torch.Tensor]) -> None:
    torch.random.set_rng_state(state)
    for device, cuda_state in zip(devices, cuda_states):
        torch.cuda.set_rng_state(cuda_state, device)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float rounding, measured against each tensor's scale: a compiled graph sums in
    another order, so an entry that nearly cancels may differ in relative terms, while a frozen
    value (a stale counter, a parameter read as a number) moves the whole tensor."""
    if a.shape != b.shape:
        return False
    if not bool(torch.isfinite(b).all()):
        return bool(torch.equal(torch.isnan(a), torch.isnan(b)))
    scale = float(b.abs().max()) if b.numel() else 0.0
    return float((a - b).abs().max()) <= 1e-3 * scale + 1e-6 if b.numel() else True


_PLAIN = (int, float, bool, str, type(None))


def layout_key(args: tuple, kwargs: dict, params: Sequence[torch.Tensor] = ()) -> Any:
    """What a graph is traced from: the arguments' structure and tensor layouts, their plain
    values, and the parameters' identities and shapes. ``None`` when the arguments hold other
    objects (which a key cannot compare).

    Examples:
        >>> layout_key((torch.zeros(2, 3),), {"n": 4}) == layout_key((torch.ones(2, 3),), {"n": 4})
        True
        >>> layout_key((torch.zeros(2, 3),), {"n": 4}) == layout_key((torch.zeros(1, 3),), {"n": 4})
        False
    """
    leaves, spec = tree_flatten((args, kwargs))
    parts = []
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            parts.append(("tensor", tuple(leaf.shape), leaf.dtype, leaf.device, leaf.requires_grad))
        elif isinstance(leaf, _PLAIN):
            if isinstance(leaf, float) and not math.isfinite(leaf):
                return None
            parts.append((type(leaf).__name__, leaf))
        else:
            return None
    layout = tuple((id(p), tuple(p.shape), p.dtype, p.device) for p in params)
    return (str(spec), tuple(parts), layout)


def _inductor(graph: torch.fx.GraphModule) -> Callable[..., Any]:
    """``graph`` compiled by Inductor, its random operations drawing from torch's generator as
    the eager ones do (``fallback_random``), so that a compiled step is the eager step."""
    import torch._inductor.config as inductor_config

    compiled = torch.compile(graph, dynamic=False)

    def run(*inputs: torch.Tensor) -> Any:
        with inductor_config.patch(fallback_random=True):
            return compiled(*inputs)

    return run


def _cuda_devices(inputs: Sequence[torch.Tensor]) -> list[int]:
    return sorted({t.device.index or 0 for t in inputs if t.device.type == "cuda"})


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split())
    if "_local_scalar_dense" in text or "data-dependent" in text or "item()" in text:
        return ("it reads a tensor's value in Python (.item(), float(), a branch on a tensor), "
                "which a graph cannot replay")
    return f"it could not be traced ({type(err).__name__}: {text[:200]})"


@contextlib.contextmanager
def _plain_parameters(tensors: Sequence[torch.Tensor]) -> Iterator[None]:
    """Inside the block, parameters of an ``nn.Parameter`` subclass are plain ``nn.Parameter`` s:
    the tracer handles that class and plain tensors only. They are the same objects throughout
    (their class comes back on leaving), so the graph reads the optimizer's tensors."""
    changed = [(t, type(t)) for t in tensors
               if isinstance(t, torch.nn.Parameter) and type(t) is not torch.nn.Parameter]
    for tensor, _ in changed:
        tensor.__class__ = torch.nn.Parameter
    try:
        yield
    finally:
        for tensor, kind in changed:
            tensor.__class__ = kind


class _ValueRead(NotTraceable):
    pass


@contextlib.contextmanager
def _value_reads_refused(guards: list[tuple[torch.Tensor, Any]]) -> Iterator[None]:
    """Inside the block, a tensor's truth (``if t:``, ``if x.sum() > 0``) and an integer
    tensor's value (``.item()``, ``int(t)``) are read from the tensor being traced and recorded in
    ``guards``, the tensor with the value; any other read of a value into Python (a float's
    ``.item()``, ``float(t)``, ``.tolist()``, ``.numpy()``) stops the trace. A parameter read so
    would be frozen at its value of the tracing step (make_fx records operations, not Python),
    and a batch's values read so would be the traced batch's forever; torch's own code (the
    tracer) is left alone."""
    from torch.fx.experimental.proxy_tensor import disable_proxy_modes_tracing

    originals = {name: getattr(torch.Tensor, name) for name in _VALUE_READS
                 if hasattr(torch.Tensor, name)}

    def guarded(name: str, tensor: torch.Tensor) -> bool:
        if tensor.numel() != 1:
            return False
        if name == "__bool__":
            return True
        return name in _INTEGER_READS and (tensor.dtype == torch.bool
                                            or not tensor.dtype.is_floating_point
                                            and not tensor.dtype.is_complex)

    def refusing(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def read(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller == "torch" or caller.startswith("torch."):
                return original(self, *args, **kwargs)
            if guarded(name, self):
                with disable_proxy_modes_tracing():
                    value = original(self, *args, **kwargs)
                guards.append((self, value))
                return value
            raise _ValueRead(f"it reads a tensor's value in Python (Tensor.{name.strip('_')} "
                             f"in {caller or 'the program'}), which a graph cannot replay")

        return read

    for name, original in originals.items():
        setattr(torch.Tensor, name, refusing(name, original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


@contextlib.contextmanager
def _tensor_items() -> Iterator[None]:
    """Inside the block Pyro's ``torch_item`` keeps a detached tensor and ``warn_if_nan`` checks
    nothing: their Python floats and NaN tests would read values a graph cannot replay. The
    objective's value and gradient are unchanged (the engine checks finiteness itself)."""
    from pyro import util
    from pyro.infer import util as infer_util

    def keep(value: Any) -> Any:
        return value.detach() if isinstance(value, torch.Tensor) else value

    def unchecked(value: Any, *_: Any, **__: Any) -> Any:
        return value

    replaced: list[tuple[Any, str, Any]] = []
    swaps = {"torch_item": (infer_util.torch_item, keep),
             "warn_if_nan": (util.warn_if_nan, unchecked)}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("pyro.", "ppdgm.")):
            continue
        for attr, (original, replacement) in swaps.items():
            if getattr(module, attr, None) is original:
                replaced.append((module, attr, original))
                setattr(module, attr, replacement)
    try:
        yield
    finally:
        for module, attr, original in replaced:
            setattr(module, attr, original)
