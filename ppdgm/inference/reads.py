"""Direct parameter reads: a training step without one Pyro statement per network weight.

Inside a model, every read of a ``PyroModule`` attribute that is an ``nn.Parameter`` runs a
``param`` statement through Pyro's effect handlers (so that ``SVI`` and ``poutine.trace`` see the
weight), and every read of a submodule runs ``PyroModule.__getattr__``. In a training step those
statements only re-announce tensors the engine already holds and optimizes: a 15-tensor
denoiser spends about as long announcing its weights as multiplying by them.

:class:`DirectReads` puts each such attribute into its module's instance ``__dict__`` for the
length of one loss evaluation, where Python's attribute lookup finds it before
``__getattr__``; leaving the block removes it, so the model is a plain Pyro program again outside
the step (``SVI``, ``Predictive``, ``poutine.trace`` and the engine's own callbacks see every
``param`` site). Only tensors the engine found as param sites in the objective's own first run,
as the very tensors the modules hold, are read directly: a parameter a handler lifts to a
``sample`` site or substitutes keeps its statement. Constrained ``PyroParam`` s keep theirs too.

Examples:
    >>> import torch
    >>> from pyro.nn import PyroModule
    >>> net = PyroModule[torch.nn.Linear](2, 1)
    >>> with DirectReads([net], trained=list(net.parameters())):
    ...     "weight" in vars(net)
    True
    >>> "weight" in vars(net)
    False
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import TracebackType

import torch
from pyro.nn import PyroModule

__all__ = ["DirectReads", "reads_params_as_weights"]


def reads_params_as_weights(objective: object) -> bool:
    """Whether ``objective`` uses ``param`` statements only to find what to train.

    True for Pyro's ELBOs that offer ``differentiable_loss`` (their losses read ``sample`` sites
    only; the JIT variants trace parameters on every call and are excluded) and for ppdgm's own
    objectives. An objective of your own keeps every statement: it may read ``param`` sites.

    Examples:
        >>> from pyro.infer import JitTrace_ELBO, Trace_ELBO
        >>> reads_params_as_weights(Trace_ELBO()), reads_params_as_weights(JitTrace_ELBO())
        (True, False)
    """
    kind = type(objective)
    if kind.__module__.startswith("ppdgm."):
        return True
    return (kind.__module__.startswith("pyro.infer.") and not kind.__name__.startswith("Jit")
            and callable(getattr(objective, "differentiable_loss", None)))


class DirectReads:
    """Shadow the trained parameters and named submodules of PyroModules for one block.

    Args:
        modules: the modules a run trains (their submodules are included).
        trained: the tensors found as param sites; only these are read directly.
    """

    def __init__(self, modules: Sequence[torch.nn.Module], trained: Iterable[torch.Tensor]) -> None:
        wanted = {id(t) for t in trained}
        self._entries: list[tuple[dict, str, object]] = []
        for root in modules:
            for module in root.modules():
                if not isinstance(module, PyroModule):
                    continue
                own = module.__dict__
                for name, param in module._parameters.items():
                    if param is not None and id(param) in wanted and name not in own:
                        self._entries.append((own, name, param))
                for name, child in module._modules.items():
                    # A child PyroModule learns its full name on its first read; a plain child
                    # triggers a pyro.module statement, which is left alone.
                    if isinstance(child, PyroModule) and child._pyro_name and name not in own:
                        self._entries.append((own, name, child))
        self._placed: list[tuple[dict, str, object]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __enter__(self) -> DirectReads:
        for own, name, value in self._entries:
            if name not in own:
                own[name] = value
                self._placed.append((own, name, value))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        # nn.Module.__setattr__ drops an instance entry when a new parameter or module is assigned;
        # only entries still holding what was placed are removed.
        for own, name, value in self._placed:
            if own.get(name) is value:
                del own[name]
        self._placed.clear()
