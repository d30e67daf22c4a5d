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

__all__ = ["AutoregressiveBernoulli", "AutoregressiveBinary"]

_NO_SHAPE = torch.Size()


class AutoregressiveBernoulli(dist.TorchDistribution):
    """Binary vectors of length w with logits ``base_logits + z @ tril(weight, -1).T``.

    Args:
        base_logits: ``(..., w)``, the part of each unit's logit that comes from below.
        weight: ``(w, w)``; only its strictly lower triangle is used (unit j sees units i < j).

    Examples:
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


class AutoregressiveBinary(dist.TorchDistribution):
    """Binary vectors whose element d, given the elements before it, is Bernoulli(sigmoid(l_d)).

    ``logits_fn(x)`` maps ``(..., size)`` vectors to ``(..., size)`` logits in which logit d may
    depend only on ``x[..., :d]`` (a NADE or a MADE network). Then ``log_prob`` is exact and one
    call of the network; ``sample`` is ancestral sampling, element by element, ``size`` calls.

    Args:
        logits_fn: the autoregressive network.
        prototype: a tensor whose device and dtype the samples take (e.g. a parameter).
        size: the length of the vectors.
        batch_shape: independent vectors drawn at once.
        sampler: a faster ancestral sampler for the same network, ``sampler(shape) -> draws``
            (e.g. NADE's, which keeps its running sums); ``None``, or one returning ``None``,
            leaves the generic one.

    Examples:
        >>> first = lambda x: torch.cat([torch.zeros_like(x[..., :1]), 100 * x[..., :-1] - 50], -1)
        >>> d = AutoregressiveBinary(first, torch.zeros(()), 3)   # each unit copies the one before
        >>> d.sample((4,)).sum(-1).remainder(3).int().tolist()
        [0, 0, 0, 0]
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.boolean, 1)
    has_rsample = False

    def __init__(self, logits_fn, prototype: torch.Tensor, size: int,
                 batch_shape: torch.Size | tuple[int, ...] = (),
                 validate_args: bool | None = None, sampler=None) -> None:
        self.logits_fn = logits_fn
        self.prototype = prototype
        self.sampler = sampler
        super().__init__(torch.Size(batch_shape), torch.Size([size]), validate_args=validate_args)

    def expand(self, batch_shape: torch.Size, _instance: object = None) -> AutoregressiveBinary:
        return AutoregressiveBinary(self.logits_fn, self.prototype, self.event_shape[0],
                                    batch_shape, validate_args=self._validate_args,
                                    sampler=self.sampler)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits = self.logits_fn(value)
        return dist.Bernoulli(logits=logits).log_prob(value).sum(-1)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size = _NO_SHAPE) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        if self.sampler is not None and (drawn := self.sampler(shape)) is not None:
            return drawn
        x = torch.zeros(shape, dtype=self.prototype.dtype, device=self.prototype.device)
        for d in range(shape[-1]):
            x[..., d] = torch.bernoulli(torch.sigmoid(self.logits_fn(x)[..., d]))
        return x
