"""An exponential moving average of a run's weights, kept beside them and checkpointed with them.

After every optimizer step, each averaged weight w has its shadow moved towards it:
shadow <- decay * shadow + (1 - decay) * w, the update of PyTorch's
``torch.optim.swa_utils.get_ema_multi_avg_fn`` (which does the arithmetic here); a shadow starts
as the weight after its first step, as ``AveragedModel`` starts. Diffusion models and GAN
generators sample better from the average than from the last iterate (Ho et al. 2020 use 0.9999;
Karras et al.'s GANs 0.999).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn

__all__ = ["WeightAverage", "check_ema_decay"]


def check_ema_decay(decay: object) -> float | None:
    """``None`` (no averaging) or a decay in (0, 1); anything else is a ``ValueError``."""
    if decay is None:
        return None
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not (
            math.isfinite(decay) and 0 < decay < 1):
        raise ValueError(f"ema: expected None or a decay in (0, 1) such as 0.999, got {decay!r}")
    return float(decay)


class WeightAverage:
    """Shadows of named weights, updated after each step; ``swapped`` puts them in for a while.

    Examples:
        >>> w = torch.nn.Parameter(torch.zeros(2))
        >>> ema = WeightAverage(0.5)
        >>> for value in (1.0, 3.0):
        ...     with torch.no_grad():
        ...         _ = w.fill_(value)
        ...     ema.update(["w"], [w])
        >>> ema.shadows["w"].tolist()           # 1 after the first step, then (1 + 3) / 2
        [2.0, 2.0]
        >>> with ema.swapped({"w": w}):
        ...     w.tolist()
        [2.0, 2.0]
        >>> w.tolist()
        [3.0, 3.0]
    """

    def __init__(self, decay: float) -> None:
        self.decay = check_ema_decay(decay)
        if self.decay is None:
            raise ValueError("ema: expected a decay in (0, 1), got None")
        self.shadows: dict[str, torch.Tensor] = {}
        self._average = get_ema_multi_avg_fn(self.decay)

    @torch.no_grad()
    def update(self, names: Sequence[str], params: Sequence[torch.Tensor]) -> None:
        """Move the shadows of ``names`` towards ``params`` (start the ones not seen before)."""
        old = [(n, p) for n, p in zip(names, params) if n in self.shadows]
        for name, param in zip(names, params):
            if name not in self.shadows:
                self.shadows[name] = param.detach().clone()
        if old:
            self._average([self.shadows[n] for n, _ in old], [p.detach() for _, p in old], None)

    @contextlib.contextmanager
    def swapped(self, params: Mapping[str, torch.Tensor]) -> Iterator[None]:
        """Inside the block the named ``params`` hold their averages; after it, their values."""
        kept = {n: p.detach().clone() for n, p in params.items() if n in self.shadows}
        try:
            with torch.no_grad():
                for name in kept:
                    params[name].copy_(self.shadows[name])
            yield
        finally:
            with torch.no_grad():
                for name, value in kept.items():
                    params[name].copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "shadows": {n: t.detach() for n, t in self.shadows.items()}}

    def load_state_dict(self, state: Mapping[str, Any], where: str) -> None:
        """Restore saved shadows; a checkpoint averaged at another decay is refused."""
        if state.get("decay") != self.decay:
            raise ValueError(f"ema: {where!r} averaged with decay {state.get('decay')!r}, this run "
                             f"asks for {self.decay!r}; resume with the same ema")
        self.shadows = {n: t.clone() for n, t in state["shadows"].items()}
