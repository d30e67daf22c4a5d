"""The Gibbs row of ``benchmarks/compiled.py``: Metropolized Gibbs sweeps over an SBN posterior.

The posterior is p(z1, z2 | x) of 16 binary 64-pixel points under a sigmoid belief net 64-8-8,
with 64 chains carried as one batch dimension (the setting of ``benchmarks/gibbs_ess.py``). The
hand-written sweep updates the 16 units one at a time as ppdgm's kernel does: for each unit, the
log-density of the unit's Markov blanket with the unit flipped against as it is, a flip accepted
with probability min(1, ratio) (Liu's Metropolized Gibbs for a binary unit). It is timed eager
and under ``torch.compile``; ppdgm's ``Gibbs(metropolized=True)`` is timed eager, replayed and
compiled by Inductor. Both leave the same posterior invariant: their posterior means after the
timed sweeps are compared (``mean_check``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F

from ppdgm._pyro import local_params
from ppdgm.inference.mcmc import Gibbs
from ppdgm.models import SBNConfig, SigmoidBeliefNet

CHAINS, POINTS = 64, 16


def _bernoulli(logits: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return (value * logits - F.softplus(logits)).sum(-1)


def hand_sweep_fn(sbn: SigmoidBeliefNet, x: torch.Tensor) -> Callable[..., tuple[torch.Tensor, ...]]:
    top = sbn.top_logits.detach()
    w1, b1 = sbn.generative[0].weight.detach(), sbn.generative[0].bias.detach()
    w2, b2 = sbn.generative[1].weight.detach(), sbn.generative[1].bias.detach()

    def blanket1(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return _bernoulli(top, z1) + _bernoulli(z1 @ w1.T + b1, z2)

    def blanket2(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return _bernoulli(z1 @ w1.T + b1, z2) + _bernoulli(z2 @ w2.T + b2, x)

    def flip(z: torch.Tensor, j: int) -> torch.Tensor:
        out = z.clone()
        out[..., j] = 1 - out[..., j]
        return out

    def sweep(z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for j in range(z1.shape[-1]):
            other = flip(z1, j)
            accept = torch.rand(z1.shape[:-1]).log() < blanket1(other, z2) - blanket1(z1, z2)
            z1 = torch.where(accept.unsqueeze(-1), other, z1)
        for j in range(z2.shape[-1]):
            other = flip(z2, j)
            accept = torch.rand(z2.shape[:-1]).log() < blanket2(z1, other) - blanket2(z1, z2)
            z2 = torch.where(accept.unsqueeze(-1), other, z2)
        return z1, z2

    return sweep


def gibbs_row_runners(sweeps: int) -> tuple[dict[str, Callable[[], float]], Callable[[], dict[str, Any]]]:
    """Per column, a function that runs ``sweeps`` sweeps and returns seconds per sweep; and the
    check of the posterior means (hand eager against ppdgm eager) over what they drew."""
    torch.manual_seed(0)
    with local_params():
        sbn = SigmoidBeliefNet(SBNConfig(x_shape=(64,), layers=(8, 8)))
    with torch.no_grad():
        for p in sbn.parameters():
            p.mul_(3.0)  # a posterior far from the prior
    x = (torch.rand(POINTS, 64) < 0.3).float()
    means: dict[str, list[torch.Tensor]] = {}
    runners: dict[str, Callable[[], float]] = {}
    for column, compiled in (("hand_eager_ms", False), ("hand_compiled_ms", True)):
        sweep = hand_sweep_fn(sbn, x)
        step = torch.compile(sweep) if compiled else sweep
        state = [torch.zeros(CHAINS, POINTS, 8), torch.zeros(CHAINS, POINTS, 8)]

        def run(step: Callable[..., Any] = step, state: list[torch.Tensor] = state,
                column: str = column) -> float:
            started = time.perf_counter()
            total = torch.zeros(CHAINS, POINTS, 8)
            for _ in range(sweeps):
                state[0], state[1] = step(state[0], state[1])
                total += state[0]
            means.setdefault(column, []).append(total / sweeps)
            return (time.perf_counter() - started) / sweeps

        runners[column] = run
    for column, mode in (("ppdgm_eager_ms", False), ("ppdgm_replay_ms", "replay"),
                         ("ppdgm_compiled_ms", "inductor")):
        kernel = Gibbs(sbn.model, chains=CHAINS, metropolized=True, compile=mode)
        with local_params():
            kernel.setup(0, x)
        params = [dict(kernel.initial_params)]

        def run(kernel: Gibbs = kernel, params: list[dict] = params, column: str = column) -> float:
            started = time.perf_counter()
            total = torch.zeros(CHAINS, POINTS, 8)
            with local_params():
                for _ in range(sweeps):
                    params[0] = kernel.sample(params[0])
                    total += params[0]["z1"]
            means.setdefault(column, []).append(total / sweeps)
            return (time.perf_counter() - started) / sweeps

        runners[column] = run

    def mean_check() -> dict[str, Any]:
        # The rounds after the first, averaged over chains and rounds: each point's p(z1 = 1 | x).
        def mean(column: str) -> torch.Tensor:
            return torch.stack(means[column][1:]).mean((0, 1))

        gaps = {c: round(float((mean(c) - mean("hand_eager_ms")).abs().max()), 3) for c in means}
        return {"max_posterior_mean_difference_to_hand_eager": gaps}

    return runners, mean_check
