"""Training and scoring a diffusion model: the denoising loss and the exact variational bound.

**The loss** (Ho et al. 2020, "L_simple"). One random step of the chains per data point: the
guide draws t ~ Uniform{1..T} and x_t ~ q(x_t | x_0), the model (replayed on those draws)
predicts eps, x_0 or v at (x_t, t), and the loss is the squared error to the true value, averaged
over the point's dimensions and **summed over the batch**, like Pyro's ELBO losses (the engine
reports it per data point). Dropping the bound's per-step weights is what makes the samples good
(Ho et al., sec. 3.4); the bound below is what measures the likelihood.

**The bound.** -log p(x_0) <= L_T + sum_{t=2..T} L_{t-1} + L_0 with
L_T = KL(q(x_T | x_0) || N(0, I)), L_{t-1} = E_q KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))
and L_0 = -E_q log p(x_0 | x_1). Every KL is between Gaussians and computed in closed form;
the expectations over x_t take one draw of q(x_t | x_0) per step and point, as Ho et al. do. In
nats per data point and in bits per dimension (nats / (D ln 2)); for quantized data it bounds the
discrete negative log-likelihood (:mod:`ppdgm.models.discretized`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import pyro.poutine as poutine
import torch

from ..._random import seeded
from ..._validation import check_instance, check_positive_int, check_tensor
from ...models.diffusion import PREDICTION, TARGET, Diffusion

__all__ = ["DenoisingLoss", "DiffusionBound", "variational_bound", "gaussian_kl"]


class DenoisingLoss:
    """The noise-prediction loss as a custom Pyro loss: ``loss(model, guide, x) -> tensor``.

    Works for any model/guide pair whose ``step=True`` form records ``"prediction"`` and
    ``"target"`` sites (:class:`~ppdgm.models.Diffusion` does); ``pyro.infer.SVI`` and the
    engine accept it. Extra keyword arguments go to both (``t=...`` fixes the timesteps).

    Examples:
        >>> from ppdgm.models import Diffusion
        >>> d = Diffusion(x_shape=(2,), timesteps=10, hidden=(8,))
        >>> DenoisingLoss()(d.model, d.guide, torch.randn(5, 2)).shape
        torch.Size([])
    """

    #: How the loss calls the model and guide (the engine finds parameters the same way).
    call_kwargs = {"step": True}

    def __repr__(self) -> str:
        return "DenoisingLoss()"

    def __call__(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                 **kwargs: Any) -> torch.Tensor:
        return self.per_point(model, guide, *args, **kwargs).sum()

    def per_point(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                  **kwargs: Any) -> torch.Tensor:
        """The squared error of each point, averaged over its dimensions; shape ``(n,)``."""
        kwargs = {**kwargs, **self.call_kwargs}
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        for name in (PREDICTION, TARGET):
            if name not in model_trace.nodes:
                raise ValueError(
                    f"model: expected a {name!r} site when called with step=True "
                    "(see ppdgm.models.Diffusion)")
        error = model_trace.nodes[PREDICTION]["value"] - model_trace.nodes[TARGET]["value"]
        return error.pow(2).flatten(1).mean(1)


def gaussian_kl(mean_q: torch.Tensor, var_q: torch.Tensor, mean_p: torch.Tensor,
                var_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mean_q, var_q) || N(mean_p, var_p)) elementwise, in nats.

    Examples:
        >>> gaussian_kl(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(0.0), torch.tensor(1.0))
        tensor(0.5000)
    """
    return 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1)


class DiffusionBound(NamedTuple):
    """The variational bound's terms per data point, in nats (see the module docstring).

    Attributes:
        prior: L_T, shape ``(n,)``.
        steps: L_{t-1} for t = 2..T, shape ``(n, T - 1)`` (column ``t - 2``).
        decoder: L_0 = -log p(x_0 | x_1), shape ``(n,)``.
        dims: D, the number of dimensions of a data point.
    """

    prior: torch.Tensor
    steps: torch.Tensor
    decoder: torch.Tensor
    dims: int

    @property
    def total(self) -> torch.Tensor:
        """The bound on -log p(x_0) per point, in nats."""
        return self.prior + self.steps.sum(1) + self.decoder

    @property
    def bits_per_dim(self) -> torch.Tensor:
        """The bound per point in bits per dimension."""
        return self.total / (self.dims * math.log(2))

    def summary(self) -> dict[str, float]:
        """Means over the points (and the standard error of the total), as plain floats."""
        total = self.total.double()
        n = total.numel()
        stderr = total.std().item() / math.sqrt(n) if n > 1 else float("nan")
        return {"nats": total.mean().item(), "nats_stderr": stderr,
                "bits_per_dim": self.bits_per_dim.double().mean().item(),
                "prior_nats": self.prior.double().mean().item(),
                "steps_nats": self.steps.double().sum(1).mean().item(),
                "decoder_nats": self.decoder.double().mean().item(), "num_points": n}


@torch.no_grad()
def variational_bound(diffusion: Diffusion, x: torch.Tensor, *, steps_per_call: int = 50,
                      seed: int | None = 0) -> DiffusionBound:
    """The exact bound on -log p(x) of each point of ``x`` (analytic KLs, one x_t per step).

    ``steps_per_call`` timesteps go through the denoiser together (n * steps_per_call inputs
    per call); ``seed`` fixes the draws of x_t without moving the global RNG (``None`` uses it).

    Examples:
        >>> from ppdgm.models import Diffusion
        >>> d = Diffusion(x_shape=(2,), timesteps=20, hidden=(8,))
        >>> b = variational_bound(d, torch.randn(4, 2))
        >>> b.steps.shape, bool(torch.allclose(b.total, b.prior + b.steps.sum(1) + b.decoder))
        (torch.Size([4, 19]), True)
    """
    check_instance("diffusion", diffusion, Diffusion, "a ppdgm.models.Diffusion")
    cfg = diffusion.config
    check_tensor("x", x, event_shape=cfg.x_shape, floating=True)
    diffusion._check_x(x)  # the model's own support (quantized data: its grid in [0, 1])
    check_positive_int("steps_per_call", steps_per_call)
    sched, T, n = diffusion.schedule, cfg.timesteps, x.shape[0]
    dims = math.prod(cfg.x_shape)
    with seeded(seed, x.device):
        y0 = diffusion.normalize(x)
        ab_T = sched.alpha_bar[T].to(x.dtype)
        prior = gaussian_kl(ab_T.sqrt() * y0, 1 - ab_T, torch.zeros_like(y0),
                            torch.ones_like(y0)).flatten(1).sum(1)
        columns = []
        for start in range(2, T + 1, steps_per_call):
            ts = torch.arange(start, min(start + steps_per_call, T + 1), device=x.device)
            columns.append(_step_terms(diffusion, y0, ts).reshape(len(ts), n).T)
        steps = torch.cat(columns, 1) if columns else y0.new_zeros(n, 0)
        t1 = torch.ones(n, dtype=torch.long, device=x.device)
        y1 = sched.at("sqrt_alpha_bar", t1, y0) * y0 + sched.at(
            "sqrt_one_minus_alpha_bar", t1, y0) * torch.randn_like(y0)
        decoder = -diffusion.decoder(y1).log_prob(x).flatten(1).sum(1)
    return DiffusionBound(prior=prior, steps=steps, decoder=decoder, dims=dims)


def _step_terms(diffusion: Diffusion, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    # All of ts at once: the batch is repeated per timestep, t-major.
    sched, n = diffusion.schedule, y0.shape[0]
    y0_rep = y0.repeat(len(ts), *([1] * (y0.dim() - 1)))
    t = ts.repeat_interleave(n)
    y_t = sched.at("sqrt_alpha_bar", t, y0_rep) * y0_rep + sched.at(
        "sqrt_one_minus_alpha_bar", t, y0_rep) * torch.randn_like(y0_rep)
    mean_p, var_p = diffusion.reverse_moments(y_t, t)
    mean_q = diffusion.posterior_mean(y0_rep, y_t, t)
    var_q = sched.at("posterior_variance", t, y0_rep)
    return gaussian_kl(mean_q, var_q, mean_p, var_p).flatten(1).sum(1)

