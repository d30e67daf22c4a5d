"""Simulation-based calibration (Talts et al., 2018) of a guide: are its posteriors right on
data the model itself generates?

Each simulation draws latents from the model's prior and data from the model given them
(``model(None, *args)`` generates, by ppdgm's convention), gives the data to the guide with no
refit (an amortized encoder, or any guide that reads its data), and ranks each true latent
coordinate among ``num_draws`` draws of the guide. A guide that is the exact posterior makes
every rank uniform on ``{0, ..., num_draws}``; one too narrow piles ranks at the ends, one too
wide in the middle, a biased one to one side. Draws equal to the truth (discrete latents) are
ranked below or above it at random, which keeps a calibrated rank uniform. Besides each
coordinate, the rank of the true latents' joint log density ``log p(x, z)`` among the draws' is
a test quantity that sees a dependence between coordinates that none of them shows alone.

The verdicts come from :func:`~ppdgm.diagnostics.uniformity.ecdf_uniformity_test` (simultaneous
ECDF bands). A site with several coordinates gets the smallest of its coordinates' p-values times
their number (Bonferroni), so that each site's verdict keeps the level ``alpha``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyro
import torch
from pyro import poutine

from .._validation import check_positive_int, check_program, check_program_call
from ..inference.params import preserved_rng
from ..inference.simulation import find_data_site, is_draw, plate_nesting_of
from .uniformity import MAX_DRAWS, UniformityTest, check_level, ecdf_uniformity_test

__all__ = ["JOINT", "SBCResult", "Sampler", "chain_draws", "check_simulation_inputs", "sbc",
           "simulated_posteriors", "simulated_sites", "svi_draws"]

#: The name under which the rank of the joint log density log p(x, z) is reported.
JOINT = "log_joint"
#: ``sampler(x, num_draws) -> {site: draws of shape (num_draws, *site shape)}``.
Sampler = Callable[[torch.Tensor, int], dict[str, torch.Tensor]]


@dataclass
class SBCResult:
    """Ranks and verdicts of a simulation-based calibration.

    Attributes:
        ranks: per latent site (and :data:`JOINT`), an integer array (simulations, coordinates).
        num_draws: the guide draws each rank was taken among.
        tests: per site and per coordinate, ``{site: [UniformityTest, ...]}``.
        p_values: per site, the Bonferroni-adjusted smallest p-value of its coordinates.
        alpha: the level of every verdict.
    """

    ranks: dict[str, np.ndarray]
    num_draws: int
    alpha: float
    tests: dict[str, list[UniformityTest]] = field(default_factory=dict)

    @property
    def p_values(self) -> dict[str, float]:
        return {name: min(1.0, len(t) * min(test.p_value for test in t))
                for name, t in self.tests.items()}

    @property
    def calibrated(self) -> dict[str, bool]:
        """Per site: does no coordinate's ECDF leave its band (at level ``alpha``)?"""
        return {name: p > self.alpha for name, p in self.p_values.items()}

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per site: verdict, p-value and the number of coordinates, as plain JSON values."""
        return {name: {"calibrated": self.calibrated[name], "p_value": round(p, 6),
                       "coordinates": int(self.ranks[name].shape[1])}
                for name, p in self.p_values.items()}


def sbc(model: Callable, guide: Callable | None = None, *, sampler: Sampler | None = None,
        num_simulations: int = 100, num_draws: int = 99, args: tuple = (),
        kwargs: dict[str, Any] | None = None, alpha: float = 0.05, seed: int = 0) -> SBCResult:
    """Calibrate ``guide`` (or a ``sampler``) against ``model`` by simulation, without a refit.

    Args:
        model: a Pyro model with ppdgm's signature: ``model(None, *args, **kwargs)`` generates
            one data set (the site that ``model(x, ...)`` observes), ``model(x, ...)`` scores it.
        guide: its guide, ``guide(x, *args, **kwargs)``, which reads the data; its sample sites
            are the latents that are ranked.
        sampler: instead of a guide, any other way to the posterior: ``sampler(x, num_draws)``
            returns ``{site: draws}``, each of shape ``(num_draws, *site shape)``, such as
            :func:`chain_draws` of an MCMC kernel.
        num_simulations: data sets simulated, each giving one rank per latent coordinate.
        num_draws: guide draws per data set (L); ranks are uniform on ``{0, ..., L}``.
        args: further positional arguments of both programs.
        kwargs: keyword arguments of both programs (``{"num_samples": 1}``: one data point per
            simulation for ppdgm's models).
        alpha: the level of each site's verdict.
        seed: seeds the simulations and the guide draws (the global RNG is restored after).

    Examples:
        >>> import pyro.distributions as dist
        >>> def model(x=None):
        ...     mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        ...     with pyro.plate("data", 4):
        ...         return pyro.sample("x", dist.Normal(mu, 1.0), obs=x)
        >>> def guide(x):  # the exact posterior: N(sum(x) / 5, 1 / 5)
        ...     pyro.sample("mu", dist.Normal(x.sum() / 5, 5 ** -0.5))
        >>> sbc(model, guide, num_simulations=100, seed=1).calibrated
        {'mu': True, 'log_joint': True}
    """
    kwargs = check_simulation_inputs(model, guide, sampler, num_simulations, num_draws, args,
                                     kwargs, seed)
    alpha = check_level("alpha", alpha)
    with preserved_rng():
        pyro.set_rng_seed(seed)
        collected: dict[str, list[np.ndarray]] = {}
        data_site: list[str] = []  # found on the first simulation
        for _ in range(num_simulations):
            for name, rank in _one_simulation(model, guide, sampler, num_draws, args, kwargs,
                                              data_site).items():
                collected.setdefault(name, []).append(rank)
    ranks = {name: np.stack(rows) for name, rows in collected.items()}
    result = SBCResult(ranks=ranks, num_draws=num_draws, alpha=float(alpha))
    for name, table in ranks.items():
        result.tests[name] = [ecdf_uniformity_test(table[:, j], num_draws, alpha=alpha)
                              for j in range(table.shape[1])]
    return result


def check_simulation_inputs(model: Any, guide: Any, sampler: Any, num_simulations: Any,
                            num_draws: Any, args: Any, kwargs: Any, seed: Any) -> dict[str, Any]:
    """Refuse what :func:`sbc` and :func:`~ppdgm.diagnostics.tarp.tarp` cannot run, naming the
    argument; returns ``kwargs`` as a dict."""
    check_program("model", model)
    if (guide is None) == (sampler is None):
        raise TypeError("guide: pass either a guide or a sampler, not both or neither")
    check_program("guide" if sampler is None else "sampler", guide or sampler)
    check_positive_int("num_simulations", num_simulations, maximum=MAX_DRAWS)
    check_positive_int("num_draws", num_draws, maximum=MAX_DRAWS)
    return check_program_call(seed=seed, args=args, kwargs=kwargs)


def simulated_posteriors(model: Callable, guide: Callable | None, sampler: Sampler | None, *,
                         num_simulations: int, num_draws: int, args: tuple,
                         kwargs: dict[str, Any]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """For each simulation, the true latents as one vector (D,) and the posterior draws as a
    matrix (num_draws, D), the sites in the order the guide (or sampler) gives them. Run it under
    a seeded RNG; the arguments are checked by :func:`check_simulation_inputs`."""
    for sites in simulated_sites(model, guide, sampler, num_simulations=num_simulations,
                                 num_draws=num_draws, args=args, kwargs=kwargs):
        yield (torch.cat([truth for truth, _ in sites.values()]),
               torch.cat([draws for _, draws in sites.values()], dim=1))


def simulated_sites(model: Callable, guide: Callable | None, sampler: Sampler | None, *,
                    num_simulations: int, num_draws: int, args: tuple, kwargs: dict[str, Any]
                    ) -> Iterator[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Like :func:`simulated_posteriors`, site by site: ``{site: (truth (D_s,), draws
    (num_draws, D_s))}`` in float64."""
    data_site: list[str] = []
    for _ in range(num_simulations):
        with torch.no_grad():
            prior, drawn, _, nesting = _simulate(model, guide, sampler, num_draws, args, kwargs,
                                                 data_site)
            sites = {}
            for name, value in drawn.items():
                truth = prior.nodes[name]["value"]
                draw_dim = -(nesting + 1 + prior.nodes[name]["fn"].event_dim)
                moved = value.reshape((1,) * max(0, -draw_dim - value.dim()) + tuple(value.shape))
                moved = moved.movedim(draw_dim, 0)
                full = torch.broadcast_to(moved, (num_draws,) + (1,) * (moved.dim() - 1 - truth.dim())
                                          + tuple(truth.shape))
                sites[name] = (truth.reshape(-1).double(), full.reshape(num_draws, -1).double())
        yield sites


def _simulate(model: Callable, guide: Callable | None, sampler: Sampler | None, num_draws: int,
              args: tuple, kwargs: dict[str, Any], data_site: list[str]
              ) -> tuple[Any, dict[str, torch.Tensor], torch.Tensor, int]:
    """One data set from the model and the posterior's draws given it, laid out as under a plate
    of draws left of the model's plates: (prior trace, draws, x, plate nesting)."""
    prior = poutine.trace(model).get_trace(None, *args, **kwargs)
    if not data_site:
        data_site.append(find_data_site(model, prior, args, kwargs))
    x = prior.nodes[data_site[0]]["value"]
    nesting = plate_nesting_of(prior)
    drawn = (_guide_draws(guide, x, num_draws, nesting, prior, args, kwargs) if guide is not None
             else _sampler_draws(sampler, x, num_draws, nesting, prior))
    return prior, drawn, x, nesting


def _one_simulation(model: Callable, guide: Callable | None, sampler: Sampler | None,
                    num_draws: int, args: tuple, kwargs: dict[str, Any],
                    data_site: list[str]) -> dict[str, np.ndarray]:
    with torch.no_grad():
        prior, drawn, x, nesting = _simulate(model, guide, sampler, num_draws, args, kwargs,
                                             data_site)
        ranks = {name: _rank(prior.nodes[name]["value"], value,
                             draw_dim=-(nesting + 1 + prior.nodes[name]["fn"].event_dim))
                 for name, value in drawn.items()}
        truth = _log_joint(model, {n: prior.nodes[n]["value"] for n in drawn}, x, args, kwargs)
        joint = _log_joint(model, drawn, x, args, kwargs, draws=(num_draws, nesting))
        ranks[JOINT] = _rank(truth, joint, draw_dim=-1)
    return ranks


def _guide_draws(guide: Callable, x: torch.Tensor, num_draws: int, nesting: int, prior: Any,
                 args: tuple, kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    with pyro.plate("_sbc_draws", num_draws, dim=-(nesting + 1)):
        draws = poutine.trace(guide).get_trace(x, *args, **kwargs)
    names = [name for name, site in draws.nodes.items() if is_draw(site)
             and not site["is_observed"] and name in prior.nodes]
    if not names:
        raise ValueError("guide: it samples none of the model's latent sites")
    return {name: draws.nodes[name]["value"] for name in names}


def _sampler_draws(sampler: Sampler, x: torch.Tensor, num_draws: int, nesting: int,
                   prior: Any) -> dict[str, torch.Tensor]:
    got = sampler(x, num_draws)
    if not isinstance(got, dict) or not got:
        raise TypeError("sampler: expected it to return a non-empty dict {site: draws}")
    out = {}
    for name, value in got.items():
        site = prior.nodes.get(name)
        if site is None or not is_draw(site) or not isinstance(value, torch.Tensor):
            raise ValueError(f"sampler: {name!r} is not a latent site of the model, or its draws "
                             "are not a tensor")
        truth = site["value"]
        if tuple(value.shape) != (num_draws, *truth.shape):
            raise ValueError(f"sampler: draws of {name!r} have shape {tuple(value.shape)}, "
                             f"expected {(num_draws, *truth.shape)}")
        batch = truth.dim() - site["fn"].event_dim
        out[name] = value.reshape((num_draws,) + (1,) * (nesting - batch) + tuple(truth.shape))
    return out


def chain_draws(make_kernel: Callable[[int], Any], *, warmup_steps: int = 20) -> Sampler:
    """A ``sampler`` for :func:`sbc` from an MCMC kernel that runs its chains as one batch.

    ``make_kernel(chains)`` builds the kernel (ppdgm's :class:`~ppdgm.inference.mcmc.Gibbs` or
    ``RBMGibbs`` with ``chains=``); each of ``num_draws`` chains runs ``warmup_steps`` steps from
    its own start under ``pyro.infer.MCMC`` and gives its last state: independent draws, so the
    ranks need no thinning. Warm-up must be long enough for the chains to forget their start,
    which is what an SBC of the kernel then checks.

    Examples:
        >>> import pyro.distributions as dist
        >>> from ppdgm.inference.mcmc import Gibbs
        >>> def model(x=None):
        ...     with pyro.plate("data", 3):
        ...         z = pyro.sample("z", dist.Bernoulli(0.3))
        ...         return pyro.sample("x", dist.Normal(2.0 * z - 1.0, 1.0), obs=x)
        >>> draws = chain_draws(lambda chains: Gibbs(model, chains=chains), warmup_steps=2)
        >>> draws(torch.tensor([-1.0, 0.0, 3.0]), 5)["z"].shape
        torch.Size([5, 3])
    """
    from pyro.infer import MCMC

    check_positive_int("warmup_steps", warmup_steps)

    def draw(x: torch.Tensor, num_draws: int) -> dict[str, torch.Tensor]:
        mcmc = MCMC(make_kernel(num_draws), num_samples=1, warmup_steps=warmup_steps,
                    disable_progbar=True)
        mcmc.run(x)
        return {name: value[0] for name, value in mcmc.get_samples().items()}
    return draw


def svi_draws(model: Callable, make_guide: Callable[[], Callable], *, steps: int = 500,
              lr: float = 0.01, objective: Any = None) -> Sampler:
    """A ``sampler`` that fits a new guide to each simulated data set, as variational inference
    on one data set does, before drawing from it.

    ``make_guide()`` builds the guide afresh (``lambda: AutoNormal(model)``, or a PyroModule's
    guide with new weights); ppdgm's :class:`~ppdgm.inference.Engine` fits it for ``steps``
    full-batch steps of Adam at ``lr`` on ``objective`` (Pyro's ``Trace_ELBO()`` by default), and
    ``pyro.infer.Predictive`` draws the latents from it in one vectorized pass. Each data set
    costs a fit, so a few hundred steps on a small model is the scale this is for.

    Examples:
        >>> import pyro.distributions as dist
        >>> from pyro.infer.autoguide import AutoNormal
        >>> def model(x=None):
        ...     mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        ...     with pyro.plate("data", 3):
        ...         return pyro.sample("x", dist.Normal(mu, 1.0), obs=x)
        >>> draws = svi_draws(model, lambda: AutoNormal(model), steps=20)
        >>> draws(torch.tensor([0.5, 1.0, 1.5]), 4)["mu"].shape
        torch.Size([4])
    """
    from pyro.infer import Predictive, Trace_ELBO

    from ..inference import Engine, TrainConfig

    check_program("make_guide", make_guide)
    check_positive_int("steps", steps)

    def draw(x: torch.Tensor, num_draws: int) -> dict[str, torch.Tensor]:
        guide = make_guide()
        check_program("make_guide()", guide)
        points = x.shape[0] if x.dim() else 1
        config = TrainConfig(epochs=steps, batch_size=points, lr=lr, seed=None, shuffle=False,
                             device=str(x.device), progress=False)
        with torch.enable_grad():
            Engine(model, guide, objective or Trace_ELBO(), config=config).fit(x)
        with torch.no_grad():
            traced = poutine.trace(model).get_trace(x)
            names = [n for n, site in traced.nodes.items() if is_draw(site)
                     and not site["is_observed"]]
            drawn = Predictive(model, guide=guide, num_samples=num_draws, parallel=True,
                               return_sites=names)(x)
        # Predictive puts its draws left of the model's plates: (draws, 1, ..., *site shape).
        return {name: drawn[name].reshape(num_draws, *traced.nodes[name]["value"].shape)
                for name in names}
    return draw


def _rank(truth: torch.Tensor, draws: torch.Tensor, *, draw_dim: int) -> np.ndarray:
    """How many draws fall below the truth, coordinate by coordinate (the draws lie along
    ``draw_dim`` of ``draws``; their other dimensions broadcast against the truth's)."""
    draws = draws.reshape((1,) * max(0, -draw_dim - draws.dim()) + tuple(draws.shape))
    below = (draws < truth).sum(draw_dim)
    # Discrete latents tie with the truth; a tie is broken at random, which keeps the rank of a
    # calibrated posterior uniform.
    ties = (draws == truth).sum(draw_dim)
    below = below + (torch.rand(ties.shape, device=ties.device) * (ties + 1)).floor().long()
    below = below.reshape(below.shape[max(0, below.dim() - truth.dim()):]) \
        if below.numel() == truth.numel() else below
    return torch.broadcast_to(below, truth.shape).reshape(-1).cpu().numpy().astype(np.int64)


def _log_joint(model: Callable, latents: dict[str, torch.Tensor], x: torch.Tensor, args: tuple,
               kwargs: dict[str, Any], *, draws: tuple[int, int] | None = None) -> torch.Tensor:
    """log p(x, z); one value per draw when ``draws`` = (number of draws, plate nesting)."""
    conditioned = poutine.condition(model, data=latents)
    if draws is None:
        return poutine.trace(conditioned).get_trace(x, *args, **kwargs).log_prob_sum()
    num_draws, nesting = draws
    with pyro.plate("_sbc_draws", num_draws, dim=-(nesting + 1)):
        trace = poutine.trace(conditioned).get_trace(x, *args, **kwargs)
    total = torch.zeros(num_draws, device=x.device)
    for site in trace.nodes.values():
        if is_draw(site):
            total = total + _per_draw(site["fn"].log_prob(site["value"]), num_draws, nesting)
    return total


def _per_draw(log_p: torch.Tensor, num_draws: int, nesting: int) -> torch.Tensor:
    """Sum a site's log-density over everything but the draws' plate dimension."""
    full = log_p.reshape((1,) * max(0, nesting + 1 - log_p.dim()) + tuple(log_p.shape))
    moved = full.movedim(-(nesting + 1), 0)
    return moved.expand(num_draws, *moved.shape[1:]).reshape(num_draws, -1).sum(-1)
