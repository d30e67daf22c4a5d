"""TARP: the coverage of a posterior's balls around random points (Lemos et al., 2023), a
calibration test that looks at all latent coordinates at once, such as a VAE's whole z.

For each simulated data set, a reference point is drawn from the prior (an independent
simulation) and the fraction f of posterior draws closer to it than the true latents is taken.
For an exact posterior f is uniform, so the expected coverage of the ball of credibility
``1 - a`` is ``1 - a`` for every ``a``: the curve of expected against nominal coverage is the
diagonal. A posterior too narrow or too wide bends it into an S (f piles up at the ends, or in
the middle), a biased one pushes it to one side; ``deviation`` is the largest distance from the
diagonal.
Distances are measured after each coordinate is standardized by the spread of the true latents
over the simulations, so that no coordinate dominates by its units. The verdict is
:func:`~ppdgm.diagnostics.uniformity.ecdf_uniformity_test` of the counts behind f.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyro
import torch

from ..inference.params import preserved_rng
from .calibration import Sampler, check_simulation_inputs, simulated_posteriors
from .uniformity import UniformityTest, check_level, ecdf_uniformity_test

__all__ = ["TARPResult", "tarp"]


@dataclass(frozen=True)
class TARPResult:
    """Expected coverage against nominal coverage, and the verdict.

    Attributes:
        nominal: credibility levels from 0 to 1.
        expected: the fraction of simulations whose true latents lie inside the posterior ball of
            each level (the diagonal for an exact posterior).
        counts: per simulation, how many of the ``num_draws`` draws are closer to the reference
            point than the true latents (uniform on 0..num_draws when calibrated).
        test: the uniformity test of ``counts``.
        deviation: the largest distance of the curve from the diagonal.
    """

    nominal: np.ndarray
    expected: np.ndarray
    counts: np.ndarray
    test: UniformityTest
    deviation: float

    @property
    def calibrated(self) -> bool:
        return self.test.calibrated


def tarp(model: Callable, guide: Callable | None = None, *, sampler: Sampler | None = None,
         num_simulations: int = 200, num_draws: int = 99, args: tuple = (),
         kwargs: dict[str, Any] | None = None, alpha: float = 0.05, seed: int = 0) -> TARPResult:
    """Test the coverage of ``guide`` (or ``sampler``) on data simulated from ``model``.

    The arguments are those of :func:`~ppdgm.diagnostics.calibration.sbc`.

    Examples:
        >>> import pyro.distributions as dist
        >>> def model(x=None):
        ...     mu = pyro.sample("mu", dist.Normal(torch.zeros(3), 1.0).to_event(1))
        ...     return pyro.sample("x", dist.Normal(mu, 1.0).to_event(1), obs=x)
        >>> def guide(x):  # the exact posterior: N(x / 2, 1 / 2)
        ...     pyro.sample("mu", dist.Normal(x / 2, 0.5 ** 0.5).to_event(1))
        >>> result = tarp(model, guide, num_simulations=200, seed=0)
        >>> result.calibrated, result.deviation < 0.15
        (True, True)
    """
    kwargs = check_simulation_inputs(model, guide, sampler, num_simulations, num_draws, args,
                                     kwargs, seed)
    alpha = check_level("alpha", alpha)
    with preserved_rng():
        pyro.set_rng_seed(seed)
        pairs = list(simulated_posteriors(model, guide, sampler, num_simulations=num_simulations,
                                          num_draws=num_draws, args=args, kwargs=kwargs))
        references = [truth for truth, _ in simulated_posteriors(
            model, guide, sampler, num_simulations=num_simulations, num_draws=1, args=args,
            kwargs=kwargs)]
        truths = torch.stack([truth for truth, _ in pairs])
        scale = truths.std(0).clamp_min(1e-12)
        counts = []
        for (truth, draws), reference in zip(pairs, references):
            to_truth = ((truth - reference) / scale).norm()
            to_draws = ((draws - reference) / scale).norm(dim=1)
            closer = int((to_draws < to_truth).sum())
            ties = int((to_draws == to_truth).sum())
            counts.append(closer + int(torch.randint(ties + 1, ())))
    counts_array = np.asarray(counts, dtype=np.int64)
    nominal = np.linspace(0.0, 1.0, 101)
    fraction = counts_array / num_draws
    expected = np.array([(fraction < level).mean() for level in nominal])
    test = ecdf_uniformity_test(counts_array, num_draws, alpha=alpha, seed=seed)
    return TARPResult(nominal=nominal, expected=expected, counts=counts_array, test=test,
                      deviation=float(np.abs(expected - nominal).max()))
