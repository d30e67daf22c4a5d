"""Make a PyroModule's ``nn.Parameter`` s usable by ``pyro.infer.SVI`` under module-local params.

``SVI.step`` finds what to optimize as ``site["value"].unconstrained()`` for every ``param`` site
of a trace. A ``PyroParam`` (or ``pyro.param``) value carries that method, but under
``module_local_params=True`` (how ppdgm builds and runs its models) a PyroModule reports its plain
``nn.Parameter`` s as the site values themselves, and ``SVI.step`` fails with
``AttributeError: 'Parameter' object has no attribute 'unconstrained'`` (Pyro 1.9). Giving those
parameters an ``unconstrained()`` that returns themselves fixes it without changing what they
are: still ``nn.Parameter`` s, the same objects, with the same state dicts, copies and pickles.
"""

from __future__ import annotations

import torch

__all__: list[str] = []


class _Parameter(torch.nn.Parameter):
    """An ``nn.Parameter`` that is its own unconstrained value (its constraint is ``real``)."""

    def unconstrained(self) -> torch.Tensor:
        return self

    def __repr__(self) -> str:
        return torch.nn.Parameter.__repr__(torch.nn.Parameter(self.data, self.requires_grad))

    def __reduce_ex__(self, protocol: int) -> tuple:
        # nn.Parameter pickles as a plain Parameter; keep the class across torch.save(module).
        return (_rebuild, (self.data, self.requires_grad))


def _rebuild(data: torch.Tensor, requires_grad: bool) -> _Parameter:
    param = torch.nn.Parameter(data, requires_grad)
    param.__class__ = _Parameter
    return param


def svi_compatible_(module: torch.nn.Module) -> torch.nn.Module:
    """Give every ``nn.Parameter`` of ``module`` an ``unconstrained()`` method, in place.

    The parameters keep their identity (optimizers and hooks already holding them still work).
    """
    for param in module.parameters():
        if type(param) is torch.nn.Parameter:
            param.__class__ = _Parameter
    return module
