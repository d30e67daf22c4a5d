"""Small discrete distributions whose every state can be enumerated, and the total variation of
draws from them: what the discrete kernels' tests compare against.

With N effectively independent draws over S states the total variation of the empirical
distribution from the truth is about sqrt(S / N) / 2.5.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch


def total_variation(codes: torch.Tensor, exact: torch.Tensor) -> float:
    """Total variation between the draws' codes (state indices) and the exact probabilities."""
    counts = torch.bincount(codes.reshape(-1), minlength=exact.numel()).double()
    return 0.5 * (counts / counts.sum() - exact.double()).abs().sum().item()


def codes(bits: torch.Tensor) -> torch.Tensor:
    """The index of each binary vector (last dimension) among :func:`binary_states`."""
    weights = 2 ** torch.arange(bits.shape[-1] - 1, -1, -1)
    return (bits.long() * weights).sum(-1)


def binary_states(width: int) -> torch.Tensor:
    """Every binary vector of ``width`` units, in :func:`codes` order."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=width)))


def rbm(seed: int = 1) -> tuple[Callable[[], None], torch.Tensor]:
    """A 4-visible, 3-hidden RBM as a Pyro program over ``v`` and ``h``, and its exact joint
    distribution over the 128 states of ``(v, h)``."""
    generator = torch.Generator().manual_seed(seed)
    weights = 1.5 * torch.randn(4, 3, generator=generator)
    visible_bias, hidden_bias = torch.randn(4, generator=generator), torch.randn(3, generator=generator)

    def log_joint(v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return ((v @ weights) * h).sum(-1) + v @ visible_bias + h @ hidden_bias

    def model() -> None:
        v = pyro.sample("v", dist.Bernoulli(0.5 * torch.ones(4)).to_event(1))
        h = pyro.sample("h", dist.Bernoulli(0.5 * torch.ones(3)).to_event(1))
        pyro.factor("energy", log_joint(v, h))

    states = binary_states(7)
    return model, log_joint(states[:, :4], states[:, 4:]).softmax(0)
