"""The discrete Langevin proposal with its Metropolis-Hastings correction, DMALA (Zhang, Liu and
Liu, 2022), for the Bernoulli and one-hot sites of any Pyro model, as a ``pyro.infer.MCMC`` kernel.

Langevin's proposal, written for a discrete state: every variable moves at once and
independently, to option k with probability proportional to

    exp(delta(v, k) / 2 - ||x(v = k) - x||^2 / (2 alpha)),

where delta is the gradient's estimate of the change in log density (:mod:`.gradients`) and the
squared distance is 1 for a Bernoulli flip and 2 between two one-hot vectors. The step size alpha
sets how many variables move per step; during warm-up it is adapted by Robbins-Monro steps on
log alpha toward ``target_accept`` (0.574, the optimal acceptance of Langevin proposals), and it
stays fixed afterwards. The move is accepted with the exact Metropolis-Hastings ratio, the
reverse proposal taken from the gradient at the proposed state.

Examples:
    >>> import pyro
    >>> import pyro.distributions as dist
    >>> from pyro.infer import MCMC
    >>> def model(y):
    ...     with pyro.plate("data", len(y)):
    ...         z = pyro.sample("z", dist.OneHotCategorical(torch.ones(3) / 3))
    ...         pyro.sample("y", dist.Normal(z @ torch.tensor([-2.0, 0.0, 2.0]), 0.5), obs=y)
    >>> kernel = DMALA(model, chains=8)
    >>> mcmc = MCMC(kernel, num_samples=50, warmup_steps=20, disable_progbar=True)
    >>> mcmc.run(torch.tensor([-1.9, 0.2, 2.1, 2.0]))
    >>> mcmc.get_samples()["z"].shape  # (draws, chains, data, categories)
    torch.Size([50, 8, 4, 3])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..._validation import check_flag, check_number
from .gradients import GradientKernel, Proposal, one_hot_options

__all__ = ["DMALA", "dmala_log_q", "dmala_logits", "dmala_propose"]


def dmala_logits(current: list[torch.Tensor], deltas: list[torch.Tensor],
                 step_size: float | torch.Tensor,
                 one_hot: Sequence[bool]) -> list[torch.Tensor]:
    """Per site, the unnormalised log-probability of each option of each variable."""
    out = []
    for options, delta, hot in zip(current, deltas, one_hot):
        here = one_hot_options(options, delta.shape[-1]).to(delta.dtype)
        distance = (2.0 if hot else 1.0) * (1.0 - here)
        out.append(delta / 2 - distance / (2 * step_size))
    return out


def dmala_propose(logits: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every variable's new option, drawn independently from its logits."""
    drawn = []
    for site in logits:
        gumbel = -(-torch.rand_like(site).clamp_(min=torch.finfo(site.dtype).tiny).log()).log()
        drawn.append((site + gumbel).argmax(-1))
    return drawn


def dmala_log_q(logits: list[torch.Tensor], end: list[torch.Tensor]) -> torch.Tensor:
    """log q(end | start) per unit, ``logits`` taken at ``start``."""
    total = None
    for site, options in zip(logits, end):
        term = site.log_softmax(-1).gather(-1, options.unsqueeze(-1)).squeeze(-1).sum(1)
        total = term if total is None else total + term
    assert total is not None
    return total


class DMALA(GradientKernel):
    """The discrete Metropolis-adjusted Langevin kernel (see the module docstring).

    Args:
        model: a Pyro model whose latent sites are Bernoulli or ``OneHotCategorical``.
        sites: the sites to move (default: every discrete latent site).
        chains: run this many chains as one batch dimension, as :class:`~.gibbs.Gibbs` does.
        step_size: alpha at the start of warm-up.
        adapt_step_size: adapt alpha during warm-up (it is fixed afterwards either way).
        target_accept: the acceptance probability the adaptation aims at.
        compile: trace the move once and replay it (``"replay"``, ``"inductor"``), as for
            :class:`~.gradients.GradientKernel`.
    """

    def __init__(self, model: Callable, sites: Sequence[str] | None = None,
                 chains: int | None = None, step_size: float = 0.2,
                 adapt_step_size: bool = True, target_accept: float = 0.574,
                 compile: bool | str = False) -> None:
        super().__init__(model, sites, chains, compile)
        self.initial_step_size = check_number("step_size", step_size, above=0)
        self.adapt_step_size = check_flag("adapt_step_size", adapt_step_size)
        self.target_accept = check_number("target_accept", target_accept, above=0)
        if not self.target_accept < 1:
            raise ValueError(f"target_accept: expected a number in (0, 1), got {target_accept!r}")
        self._log_step = math.log(self.initial_step_size)

    def setup(self, warmup_steps: int, *args, **kwargs) -> None:
        self._log_step = math.log(self.initial_step_size)
        super().setup(warmup_steps, *args, **kwargs)

    @property
    def step_size(self) -> float:
        return math.exp(self._log_step)

    def _adapt(self, accept_prob: torch.Tensor) -> None:
        if self.adapt_step_size and self._t < self._warmup_steps:
            # Robbins-Monro on log alpha: the gain decays so that alpha settles.
            gain = (self._t + 1) ** -0.6
            self._log_step += gain * (float(accept_prob) - self.target_accept)

    def _hot(self) -> list[bool]:
        return [layout.one_hot for layout in self.layouts]

    def _propose(self, current: list[torch.Tensor], deltas: list[torch.Tensor],
                 step: torch.Tensor) -> Proposal:
        logits = dmala_logits(current, deltas, step, self._hot())
        proposed = dmala_propose(logits)
        return Proposal(proposed, dmala_log_q(logits, proposed))

    def _log_q(self, start: list[torch.Tensor], deltas: list[torch.Tensor],
               end: list[torch.Tensor], step: torch.Tensor) -> torch.Tensor:
        return dmala_log_q(dmala_logits(start, deltas, step, self._hot()), end)
