"""A Gaussian discretized onto the grid of L values of quantized data (Ho et al. 2020, sec. 3.3).

Data quantized to L levels in [low, high] (8-bit images: L = 256; binarized images: L = 2;
scikit-learn's digits: L = 17) takes the values low + k (high - low) / (L - 1). The probability
of a value is the Gaussian mass of its bin: half a grid step either side, the two outer bins
reaching to -inf and +inf. Its log-probability is a proper discrete log-likelihood, so a bound
on it is comparable with other models' negative log-likelihoods in nats or bits per dimension.
"""

from __future__ import annotations

import torch
from pyro.distributions import TorchDistribution
from torch.distributions import constraints
from torch.special import log_ndtr

from .._validation import check_positive_int

__all__ = ["DiscretizedNormal", "log_normal_mass"]

_SCALAR = torch.Size()


def log_normal_mass(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """log(Phi(upper) - Phi(lower)) for lower < upper, accurate far in either tail.

    Bins above zero are measured from the other side (Phi(-lower) - Phi(-upper)), so that the
    difference is never one of two numbers near 1.

    Examples:
        >>> inf = float("inf")
        >>> log_normal_mass(torch.tensor([-inf, 30.0]), torch.tensor([inf, 31.0])).exp()
        tensor([1., 0.])
        >>> round(log_normal_mass(torch.tensor([30.0]), torch.tensor([31.0])).item(), 2)
        -454.32
    """
    flip = lower > 0
    lo = torch.where(flip, -upper, lower)
    hi = torch.where(flip, -lower, upper)
    log_hi, log_lo = log_ndtr(hi), log_ndtr(lo)
    # log(e^a - e^b) = a + log(1 - e^(b - a)); expm1 keeps it exact when b is close to a.
    return log_hi + torch.log(-torch.expm1((log_lo - log_hi).clamp(max=0)))


class DiscretizedNormal(TorchDistribution):
    """N(loc, scale^2) discretized onto ``levels`` equally spaced values in ``[low, high]``.

    ``sample()`` rounds a Gaussian draw to the nearest grid value (clamped into the range), which
    is a draw from exactly this distribution. ``log_prob`` expects grid values; a value off the
    grid is scored as the bin it falls in.

    Examples:
        >>> d = DiscretizedNormal(torch.tensor([0.2]), torch.tensor([0.1]), levels=2)
        >>> d.log_prob(torch.tensor([0.0])).exp().item() > 0.99  # P(N(0.2, 0.1^2) < 0.5)
        True
        >>> d.sample((3,)).shape
        torch.Size([3, 1])
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, levels: int, low: float = 0.0,
                 high: float = 1.0, validate_args: bool | None = None) -> None:
        check_positive_int("levels", levels, minimum=2)
        if not high > low:
            raise ValueError(f"low, high: expected low < high, got {low!r}, {high!r}")
        self.loc, self.scale = torch.broadcast_tensors(loc, scale)
        self.levels, self.low, self.high = levels, float(low), float(high)
        self.step = (self.high - self.low) / (levels - 1)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape: torch.Size, _instance: object = None) -> DiscretizedNormal:
        shape = torch.Size(batch_shape)
        return DiscretizedNormal(self.loc.expand(shape), self.scale.expand(shape), self.levels,
                                 self.low, self.high, validate_args=False)

    def _index(self, value: torch.Tensor) -> torch.Tensor:
        return ((value - self.low) / self.step).round().clamp(0, self.levels - 1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        k = self._index(value)
        centre = self.low + k * self.step
        inf = torch.full_like(centre, float("inf"))
        lower = torch.where(k > 0, centre - self.step / 2, -inf)
        upper = torch.where(k < self.levels - 1, centre + self.step / 2, inf)
        return log_normal_mass((lower - self.loc) / self.scale, (upper - self.loc) / self.scale)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size = _SCALAR) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        draw = self.loc.expand(shape) + self.scale.expand(shape) * torch.randn(
            shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.low + self._index(draw) * self.step

    @property
    def rounded_loc(self) -> torch.Tensor:
        """The grid value nearest ``loc``: a noise-free output, as sample grids show."""
        return self.low + self._index(self.loc) * self.step
