"""A layer of binary units that are autoregressive within the layer, as a Pyro distribution.

q(z | h) = prod_j Bernoulli(z_j | sigmoid(a_j(h) + sum_{i<j} U_ji z_i)): the units of a layer
are sampled one after the other, each seeing the ones before it, and the log-density is one
masked matrix product. Used by the sigmoid belief net's recognition network
(``SBNConfig(autoregressive=True)``), where it lets q(z | x) represent correlations between the
units of a layer that a factorized Bernoulli cannot (Mnih and Gregor 2014; Bornschein and Bengio
2015).
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch.distributions import constraints

__all__ = ["AutoregressiveBernoulli"]

_NO_SHAPE = torch.Size()


class AutoregressiveBernoulli(dist.TorchDistribution):
    """Binary vectors of length w with logits ``base_logits + z @ tril(weight, -1).T``.

    Args:
        base_logits: ``(..., w)``, the part of each unit's logit that comes from below.
        weight: ``(w, w)``; only its strictly lower triangle is used (unit j sees units i < j).

    Example:
        >>> d = AutoregressiveBernoulli(torch.zeros(3), torch.ones(3, 3))
        >>> d.sample((5,)).shape, d.log_prob(torch.ones(3)).shape
        (torch.Size([5, 3]), torch.Size([]))
    """

    arg_constraints = {"base_logits": constraints.real, "weight": constraints.real}
    support = constraints.independent(constraints.boolean, 1)
    has_rsample = False

    def __init__(self, base_logits: torch.Tensor, weight: torch.Tensor,
                 validate_args: bool | None = None) -> None:
        w = base_logits.shape[-1]
        if weight.shape != (w, w):
            raise ValueError(f"weight: expected shape ({w}, {w}), got {tuple(weight.shape)}")
        self.base_logits = base_logits
        self.weight = weight
        super().__init__(base_logits.shape[:-1], base_logits.shape[-1:], validate_args=validate_args)

    def _mask(self) -> torch.Tensor:
        return torch.tril(self.weight, diagonal=-1)

    def expand(self, batch_shape: torch.Size, _instance: object = None) -> AutoregressiveBernoulli:
        shape = torch.Size(batch_shape) + self.event_shape
        return AutoregressiveBernoulli(self.base_logits.expand(shape), self.weight)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits = self.base_logits + value @ self._mask().T
        return dist.Bernoulli(logits=logits).log_prob(value).sum(-1)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size = _NO_SHAPE) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        base = self.base_logits.expand(shape)
        mask = self._mask()
        z = torch.zeros(shape, dtype=base.dtype, device=base.device)
        for j in range(shape[-1]):
            logits = base[..., j] + z[..., :j] @ mask[j, :j]
            z[..., j] = torch.bernoulli(torch.sigmoid(logits))
        return z
