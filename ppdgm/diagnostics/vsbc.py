"""VSBC: is a variational fit biased? (Yao, Vehtari, Simpson and Gelman, 2018.)

Variational posteriors are rarely calibrated (most are too narrow, which SBC then reports), yet
their point estimates can still be unbiased. VSBC asks only that: for each simulated data set it
takes the guide's marginal probability that a latent coordinate lies below its true value,
p = Pr_q(theta < theta_true | x). When the fit is unbiased the distribution of p over simulations
is symmetric about 1/2, whatever its shape; a fit that leans one way moves it to one side. The
verdict is the two-sample Kolmogorov-Smirnov test of {p} against {1 - p}, per coordinate, with
the smallest p-value of a site times its number of coordinates (Bonferroni) as the site's.

A guide fitted anew to each data set, as variational inference is, comes in as the sampler
:func:`~ppdgm.diagnostics.calibration.svi_draws`; an amortized guide is used as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyro
from scipy import stats

from ..inference.params import preserved_rng
from .calibration import Sampler, check_simulation_inputs, simulated_sites
from .uniformity import check_level

__all__ = ["VSBCResult", "vsbc"]


@dataclass
class VSBCResult:
    """The guide's probabilities below the truth, and the symmetry verdicts.

    Attributes:
        probabilities: per latent site, an array (simulations, coordinates) of
            Pr_q(theta < theta_true), draws equal to the truth counted as half below.
        p_values_by_coordinate: per site, the Kolmogorov-Smirnov p-value of each coordinate.
        alpha: the level of every verdict.
    """

    probabilities: dict[str, np.ndarray]
    alpha: float
    p_values_by_coordinate: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def p_values(self) -> dict[str, float]:
        """Per site, the Bonferroni-adjusted smallest p-value of its coordinates."""
        return {name: float(min(1.0, len(p) * p.min()))
                for name, p in self.p_values_by_coordinate.items()}

    @property
    def symmetric(self) -> dict[str, bool]:
        """Per site: is no coordinate's distribution of p detectably lopsided?"""
        return {name: p > self.alpha for name, p in self.p_values.items()}

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per site: verdict, p-value, the mean of p (1/2 when unbiased) and the coordinates."""
        return {name: {"symmetric": self.symmetric[name], "p_value": round(p, 6),
                       "mean_probability": round(float(self.probabilities[name].mean()), 4),
                       "coordinates": int(self.probabilities[name].shape[1])}
                for name, p in self.p_values.items()}


def vsbc(model: Callable, guide: Callable | None = None, *, sampler: Sampler | None = None,
         num_simulations: int = 100, num_draws: int = 1000, args: tuple = (),
         kwargs: dict[str, Any] | None = None, alpha: float = 0.05, seed: int = 0) -> VSBCResult:
    """Test whether ``guide`` (or ``sampler``) is biased on data simulated from ``model``.

    The arguments are those of :func:`~ppdgm.diagnostics.calibration.sbc`; ``num_draws`` guide
    draws estimate each probability (1000: to about 0.016).

    Examples:
        >>> import pyro.distributions as dist
        >>> def model(x=None):
        ...     mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        ...     with pyro.plate("data", 4):
        ...         return pyro.sample("x", dist.Normal(mu, 1.0), obs=x)
        >>> def narrow(x):  # the posterior mean, but half its sd: miscalibrated, unbiased
        ...     pyro.sample("mu", dist.Normal(x.sum() / 5, 0.5 * 5 ** -0.5))
        >>> vsbc(model, narrow, num_simulations=100, seed=1).symmetric
        {'mu': True}
    """
    kwargs = check_simulation_inputs(model, guide, sampler, num_simulations, num_draws, args,
                                     kwargs, seed)
    alpha = check_level("alpha", alpha)
    collected: dict[str, list[np.ndarray]] = {}
    with preserved_rng():
        pyro.set_rng_seed(seed)
        for sites in simulated_sites(model, guide, sampler, num_simulations=num_simulations,
                                     num_draws=num_draws, args=args, kwargs=kwargs):
            for name, (truth, draws) in sites.items():
                below = (draws < truth).double().mean(0) + 0.5 * (draws == truth).double().mean(0)
                collected.setdefault(name, []).append(below.cpu().numpy())
    result = VSBCResult({name: np.stack(rows) for name, rows in collected.items()}, float(alpha))
    for name, table in result.probabilities.items():
        result.p_values_by_coordinate[name] = np.array(
            [stats.ks_2samp(table[:, j], 1.0 - table[:, j]).pvalue for j in range(table.shape[1])])
    return result

