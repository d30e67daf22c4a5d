"""Expectation-maximization for models whose posterior over a discrete latent is exact.

The E-step enumerates the latent site with Pyro (``config_enumerate`` + ``poutine.enum``), so it
needs no hand-written posterior: it returns p(c | x_i) for every data point. The M-step is the
model's closed form (``model.m_step(x, responsibilities)``) when it has one, or otherwise Adam
steps on the expected complete-data log-likelihood Q(theta) = sum_i sum_c r_ic log p(x_i, c),
kept only when they raise Q (a generalized EM step). Either way the data log-likelihood never
decreases from one iteration to the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyro.poutine as poutine
import torch
from pyro.infer import config_enumerate

from ..._pyro import local_params
from ..._validation import check_number, check_positive_int, check_tensor

__all__ = ["EMResult", "enumerate_joint", "posterior_by_enumeration", "expectation_maximization"]


def enumerate_joint(model: Callable[..., Any], x: torch.Tensor, site: str) -> torch.Tensor:
    """log p(x_i, c) for every value c of the discrete ``site`` and data point, ``(N, K)``.

    The model must put the site and the data inside one plate (dim -1); the site's values are
    enumerated in parallel on dim -2.

    Examples:
        >>> from ppdgm.models.mixture import BernoulliMixture, MixtureConfig
        >>> m = BernoulliMixture(MixtureConfig(x_dim=3, components=2))
        >>> enumerate_joint(m.model, m.sample(4), "c").shape
        torch.Size([4, 2])
    """
    enumerated = poutine.enum(config_enumerate(model, default="parallel"), first_available_dim=-2)
    with local_params():
        trace = poutine.trace(enumerated).get_trace(x)
    if site not in trace.nodes or trace.nodes[site]["type"] != "sample":
        raise ValueError(f"site: the model has no sample site {site!r}")
    if trace.nodes[site]["infer"].get("_enumerate_dim") is None:
        raise ValueError(f"site: {site!r} cannot be enumerated (its distribution has no finite support)")
    trace.compute_log_prob()
    total = 0.0
    for node in trace.nodes.values():
        if node["type"] == "sample" and not node["name"].startswith("_"):
            log_p = node["log_prob"]
            total = total + (log_p if log_p.dim() else log_p.expand(1))
    if not isinstance(total, torch.Tensor) or total.dim() != 2:
        shape = getattr(total, "shape", None)
        raise ValueError(f"model: expected log-densities of shape (K, N), got {shape}")
    return total.T


def posterior_by_enumeration(model: Callable[..., Any], x: torch.Tensor, site: str) -> torch.Tensor:
    """The exact posterior p(c | x_i) of a discrete ``site``, shape ``(N, K)`` (the E-step)."""
    return torch.softmax(enumerate_joint(model, x, site).detach(), dim=-1)


@dataclass
class EMResult:
    """Mean log p(x) per data point before the first iteration and after each one."""

    log_likelihood: list[float] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.log_likelihood) - 1


def expectation_maximization(model: Any, x: torch.Tensor, *, site: str = "c", iterations: int = 100,
                             tol: float | None = 1e-6, m_step: str = "auto", lr: float = 0.05,
                             gradient_steps: int = 20) -> EMResult:
    """Run EM on a model object with ``model`` (a Pyro program) and ``log_marginal(x)``.

    ``m_step="closed-form"`` uses ``model.m_step(x, responsibilities)``; ``"gradient"`` takes
    ``gradient_steps`` Adam steps at ``lr`` on Q and keeps them only if Q rose; ``"auto"`` uses
    the closed form when the model has one. Stops early when the mean log-likelihood rises by
    less than ``tol``.

    Examples:
        >>> from ppdgm.models.mixture import GaussianMixture, MixtureConfig
        >>> m = GaussianMixture(MixtureConfig(x_dim=2, components=2))
        >>> x = torch.cat([torch.randn(50, 2) - 3, torch.randn(50, 2) + 3])
        >>> result = expectation_maximization(m, x, iterations=20)
        >>> result.log_likelihood[-1] > result.log_likelihood[0]
        True
    """
    if not (callable(getattr(model, "log_marginal", None)) and callable(getattr(model, "parameters", None))):
        raise TypeError("model: expected a model object with log_marginal(x) and parameters() "
                        f"(e.g. a GaussianMixture), got {type(model).__name__}")
    check_positive_int("iterations", iterations)
    if tol is not None:
        check_number("tol", tol, minimum=0)
    check_number("lr", lr, above=0)
    check_positive_int("gradient_steps", gradient_steps)
    check_tensor("x", x, ndim=2, floating=True, support=getattr(model, "data_support", None))
    if m_step not in ("auto", "closed-form", "gradient"):
        raise ValueError(f"m_step: expected 'auto', 'closed-form' or 'gradient', got {m_step!r}")
    closed = hasattr(model, "m_step") if m_step == "auto" else m_step == "closed-form"
    if closed and not hasattr(model, "m_step"):
        raise ValueError("m_step: 'closed-form' needs a model with an m_step(x, responsibilities) method")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = None if closed else torch.optim.Adam(params, lr=lr)
    result = EMResult([_mean_log_likelihood(model, x)])
    for _ in range(iterations):
        resp = posterior_by_enumeration(model.model, x, site)
        if closed:
            model.m_step(x, resp)
        else:
            _gradient_m_step(model, x, site, resp, params, optimizer, gradient_steps)
        result.log_likelihood.append(_mean_log_likelihood(model, x))
        if tol is not None and result.log_likelihood[-1] - result.log_likelihood[-2] < tol:
            break
    return result


def _expected_complete_log_likelihood(model: Any, x: torch.Tensor, site: str,
                                      resp: torch.Tensor) -> torch.Tensor:
    return (resp * enumerate_joint(model.model, x, site)).sum()


def _gradient_m_step(model: Any, x: torch.Tensor, site: str, resp: torch.Tensor,
                     params: list[torch.Tensor], optimizer: torch.optim.Optimizer,
                     steps: int) -> None:
    before = [p.detach().clone() for p in params]
    with torch.no_grad():
        start = _expected_complete_log_likelihood(model, x, site, resp)
    for _ in range(steps):
        optimizer.zero_grad()
        (-_expected_complete_log_likelihood(model, x, site, resp)).backward()
        optimizer.step()
    with torch.no_grad():
        if _expected_complete_log_likelihood(model, x, site, resp) < start:
            for p, old in zip(params, before):  # not an improvement of Q: keep the old parameters
                p.copy_(old)


@torch.no_grad()
def _mean_log_likelihood(model: Any, x: torch.Tensor) -> float:
    return model.log_marginal(x).mean().item()
