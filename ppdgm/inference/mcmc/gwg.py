"""Gibbs-with-Gradients (Grathwohl, Swersky, Hashemi, Duvenaud and Maddison, 2021) for the
Bernoulli and one-hot sites of any Pyro model, as a ``pyro.infer.MCMC`` kernel.

Each step changes one variable of each chain's state. The gradient of the joint log density gives
delta(v, k), the first-order estimate of how much setting variable v to option k changes it
(:mod:`.gradients`); the move (v, k) is proposed with probability softmax(delta / 2) over every
variable and every option other than its current one, so moves the density favours are tried
first, and the whole state is scanned in one model run instead of one run per unit as Gibbs does.
The move is accepted by Metropolis-Hastings with the exact densities and the reverse move's
proposal probability, computed from the gradient at the proposed state. There is no step size.

Examples:
    >>> import pyro
    >>> import pyro.distributions as dist
    >>> from pyro.infer import MCMC
    >>> def model():
    ...     z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(6)).to_event(1))
    ...     pyro.factor("agree", 2.0 * (z[..., 1:] == z[..., :-1]).float().sum(-1))
    >>> mcmc = MCMC(GibbsWithGradients(model, chains=8), num_samples=50, warmup_steps=10,
    ...             disable_progbar=True)
    >>> mcmc.run()
    >>> mcmc.get_samples()["z"].shape  # (draws, chains, units)
    torch.Size([50, 8, 6])
"""

from __future__ import annotations

import torch

from .gradients import GradientKernel, Proposal, one_hot_options

__all__ = ["GibbsWithGradients", "gwg_log_q", "gwg_propose"]


def _flat_logits(current: list[torch.Tensor], deltas: list[torch.Tensor]) -> torch.Tensor:
    # Every (variable, option) of every site in one row per unit; staying put is not a move.
    rows = []
    for options, delta in zip(current, deltas):
        here = one_hot_options(options, delta.shape[-1])
        rows.append((delta / 2).masked_fill(here, -torch.inf).flatten(1))
    return torch.cat(rows, 1)


def gwg_propose(current: list[torch.Tensor], deltas: list[torch.Tensor]) -> list[torch.Tensor]:
    """One move per unit drawn from softmax(delta / 2): the new option indices of every site."""
    logits = _flat_logits(current, deltas)
    gumbel = -(-torch.rand_like(logits).clamp_(min=torch.finfo(logits.dtype).tiny).log()).log()
    chosen = (logits + gumbel).argmax(1)
    proposed, offset = [], 0
    for options, delta in zip(current, deltas):
        variables, k = delta.shape[1], delta.shape[2]
        within = chosen - offset
        inside = (within >= 0) & (within < variables * k)
        where = within.clamp(0, variables * k - 1)
        new = options.clone()
        rows = torch.arange(len(new), device=new.device)
        new[rows, where // k] = torch.where(inside, where % k, new[rows, where // k])
        proposed.append(new)
        offset += variables * k
    return proposed


def gwg_log_q(start: list[torch.Tensor], deltas: list[torch.Tensor],
              end: list[torch.Tensor]) -> torch.Tensor:
    """log q(end | start) per unit for a one-variable move, ``deltas`` taken at ``start``."""
    log_p = _flat_logits(start, deltas).log_softmax(1)
    chosen = []
    for s, e, delta in zip(start, end, deltas):
        moved = (s != e).unsqueeze(-1)
        chosen.append((moved & one_hot_options(e, delta.shape[-1])).flatten(1))
    return log_p.masked_fill(~torch.cat(chosen, 1), 0.0).sum(1)


class GibbsWithGradients(GradientKernel):
    """Gibbs-with-Gradients over a model's Bernoulli and one-hot sites (see the module docstring).

    Args:
        model: a Pyro model whose latent sites are Bernoulli or ``OneHotCategorical``.
        sites: the sites to move (default: every discrete latent site).
        chains: run this many chains as one batch dimension, as :class:`~.gibbs.Gibbs` does.
        compile: trace the move once and replay it (``"replay"``, ``"inductor"``), as for
            :class:`~.gradients.GradientKernel`.

    ``diagnostics()`` reports the acceptance rate and each site's flip rate.
    """

    def _propose(self, current: list[torch.Tensor], deltas: list[torch.Tensor],
                 step: torch.Tensor) -> Proposal:
        proposed = gwg_propose(current, deltas)
        return Proposal(proposed, gwg_log_q(current, deltas, proposed))

    def _log_q(self, start: list[torch.Tensor], deltas: list[torch.Tensor],
               end: list[torch.Tensor], step: torch.Tensor) -> torch.Tensor:
        return gwg_log_q(start, deltas, end)
