"""Objectives by name, as ``ppdgm fit --objective NAME --k K`` selects them."""

from __future__ import annotations

from typing import Any

from pyro.infer import ELBO, Trace_ELBO, TraceMeanField_ELBO

from ..._validation import check_choice, check_positive_int
from ..players import Player, adam
from .iwae import IWAE
from .nvil import NVIL
from .rws import ReweightedWakeSleep
from .vimco import VIMCO
from .wake_sleep import WakeSleep

__all__ = ["OBJECTIVES", "PLAYER_OBJECTIVES", "build_objective", "build_player_objective"]

#: name -> what it is; ``k`` is the number of particles of each.
OBJECTIVES = {
    "elbo": "Trace_ELBO: the ELBO with a Monte Carlo KL term (k particles averaged)",
    "elbo-analytic": "TraceMeanField_ELBO: the ELBO with the KL term in closed form where it exists",
    "iwae": "IWAE(k): the per-data-point importance-weighted bound with k particles",
}


def build_objective(name: str, k: int = 1) -> ELBO:
    """The objective called ``name`` with ``k`` particles.

    Examples:
        >>> type(build_objective("iwae", k=50)).__name__, build_objective("iwae", k=50).num_particles
        ('IWAE', 50)
        >>> type(build_objective("elbo-analytic")).__name__
        'TraceMeanField_ELBO'
    """
    check_choice("objective", name, tuple(OBJECTIVES))
    check_positive_int("k", k)
    if name == "iwae":
        return IWAE(num_particles=k)
    cls = Trace_ELBO if name == "elbo" else TraceMeanField_ELBO
    # Vectorized particles: one network pass over a (k, batch) block instead of k passes.
    return cls(num_particles=k, vectorize_particles=k > 1)


#: Objectives for discrete latents (``ppdgm fit sbn``), each with the players it trains.
PLAYER_OBJECTIVES = {
    "wake-sleep": "WakeSleep: wake (model on z ~ q) and sleep (guide on dreams (x, z) ~ p)",
    "rws": "ReweightedWakeSleep(k): model and guide under per-data-point normalized weights",
    "vimco": "VIMCO(k): the k-sample bound with leave-one-out score-function baselines",
    "nvil": "NVIL: local learning signals centred by running means and input-dependent baselines, "
            "and normalised by a running standard deviation (Mnih and Gregor 2014)",
}


def build_player_objective(name: str, k: int = 5, lr: float = 1e-3) -> tuple[Any, list[Player]]:
    """The objective called ``name`` and the players it trains, each with Adam at ``lr``.

    Wake-sleep and RWS train the model and the guide as two players; VIMCO and NVIL are one
    bound, one player (``"svi"``). NVIL needs a model whose guide declares baselines.

    Examples:
        >>> objective, players = build_player_objective("rws", k=10)
        >>> type(objective).__name__, [p.name for p in players]
        ('ReweightedWakeSleep', ['model', 'guide'])
    """
    check_choice("objective", name, tuple(PLAYER_OBJECTIVES))
    check_positive_int("k", k)
    if name == "vimco":
        return VIMCO(num_particles=k), [Player("svi", optimizer=adam(lr))]
    if name == "nvil":
        # The baselines are the guide's own (``SBNConfig.baseline_hidden``); the loss trains them.
        return NVIL(), [Player("svi", optimizer=adam(lr))]
    if name == "wake-sleep":
        objective: Any = WakeSleep()
        names = ("wake", "sleep")
    else:
        objective = ReweightedWakeSleep(num_particles=k)
        names = ("model", "guide")
    players = [Player(names[0], owns="model", optimizer=adam(lr)),
               Player(names[1], owns="guide", optimizer=adam(lr))]
    return objective, players
