"""Objectives by name, as ``ppdgm fit --objective NAME --k K`` selects them."""

from __future__ import annotations

from pyro.infer import ELBO, Trace_ELBO, TraceMeanField_ELBO

from ..._validation import check_choice, check_positive_int
from .iwae import IWAE

__all__ = ["OBJECTIVES", "build_objective"]

#: name -> what it is; ``k`` is the number of particles of each.
OBJECTIVES = {
    "elbo": "Trace_ELBO: the ELBO with a Monte Carlo KL term (k particles averaged)",
    "elbo-analytic": "TraceMeanField_ELBO: the ELBO with the KL term in closed form where it exists",
    "iwae": "IWAE(k): the per-data-point importance-weighted bound with k particles",
}


def build_objective(name: str, k: int = 1) -> ELBO:
    """The objective called ``name`` with ``k`` particles.

    Example:
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
