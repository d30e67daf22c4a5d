"""A log-likelihood for any decoder, GAN generators included (Wu, Burda, Salakhutdinov and
Grosse, 2017).

A decoder g maps a latent z ~ N(0, I) to a point; with a Gaussian observation model,
x | z ~ N(g(z), sigma^2 I), it is a latent-variable model whose log p(x) AIS can estimate. The
observation scale sigma is the one free choice: it is picked among ``scales`` by the AIS
log-likelihood of held-out validation data, never of the data being scored. The same estimator
then puts a GAN, a VAE's decoder and a VAE-GAN on one scale, and a generator that drops modes
pays for it in likelihood. On data simulated from the chosen model,
:func:`~ppdgm.inference.evaluation.bidirectional.bdmc` says how far the AIS estimate can be from
the truth at the chosen number of steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyro
import pyro.distributions as dist
import torch

from ..._validation import check_positive_int, check_program
from ..estimate import Estimate
from .bidirectional import BDMCResult, bdmc
from .marginal import ais_log_marginal

__all__ = ["DEFAULT_SCALES", "DecoderLikelihood", "decoder_log_likelihood", "gaussian_decoder_model"]

#: Observation scales tried on the validation data when none is given.
DEFAULT_SCALES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass
class DecoderLikelihood:
    """AIS log-likelihoods of a decoder under its best Gaussian observation model.

    Attributes:
        log_px: the mean of the per-point AIS estimates (stochastic lower bounds) on ``x``, with
            its standard error.
        per_point: the per-point estimates.
        scale: the observation scale sigma used.
        validation: the mean validation log-likelihood of every scale tried (empty when
            ``scale`` was given).
        check: BDMC on points simulated from the decoder at ``scale`` (``None`` when not asked).
    """

    log_px: Estimate
    per_point: torch.Tensor
    scale: float
    validation: dict[float, float] = field(default_factory=dict)
    check: BDMCResult | None = None

    def summary(self) -> dict[str, Any]:
        """Plain numbers for JSON."""
        out: dict[str, Any] = {"log_px": self.log_px.mean, "log_px_stderr": self.log_px.stderr,
                               "points": self.log_px.n, "scale": self.scale,
                               "validation": {str(k): v for k, v in self.validation.items()}}
        if self.check is not None:
            out["bdmc"] = self.check.summary()
        return out


def gaussian_decoder_model(decoder: Callable[[torch.Tensor], torch.Tensor], z_dim: int,
                           scale: float) -> Callable:
    """The Pyro model z ~ N(0, I_z_dim), x | z ~ N(decoder(z), scale^2 I), over a ``data`` plate.

    ``decoder`` takes a batch of latents (B, z_dim) and returns (B, *event shape); the model
    flattens the chains and points into that batch and back. ``model(None, num_samples=n)``
    simulates n points.
    """
    check_program("decoder", decoder)
    check_positive_int("z_dim", z_dim)

    def model(x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        n = x.shape[0] if x is not None else num_samples
        with pyro.plate("data", n):
            zeros = torch.zeros(z_dim, device=None if x is None else x.device)
            z = pyro.sample("z", dist.Normal(zeros, 1.0).to_event(1))
            mean = decoder(z.reshape(-1, z_dim))
            mean = mean.reshape(*z.shape[:-1], *mean.shape[1:])
            return pyro.sample("x", dist.Normal(mean, scale).to_event(mean.dim() - z.dim() + 1),
                               obs=x)
    return model


def decoder_log_likelihood(decoder: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                           z_dim: int, scale: float | None = None,
                           validation: torch.Tensor | None = None,
                           scales: Sequence[float] = DEFAULT_SCALES, num_steps: int = 500,
                           num_chains: int = 16, check_points: int = 0,
                           seed: int = 0) -> DecoderLikelihood:
    """AIS log-likelihood of ``x`` (points along the first dimension) under ``decoder``.

    Args:
        decoder: maps latents (B, z_dim) to means (B, *x's event shape), in x's units.
        x: the points to score.
        z_dim: the latent's size; its prior is N(0, I).
        scale: the observation sd; when ``None`` it is chosen among ``scales`` on ``validation``.
        validation: held-out points that choose the scale (a fifth of the steps each).
        scales: the observation sds tried when ``scale`` is ``None``.
        num_steps: AIS's intermediate distributions.
        num_chains: AIS's runs per point.
        check_points: when positive, BDMC on that many points simulated from the chosen model,
            with the same steps: its gap is how far an estimate can be off on such data.
        seed: seeds every AIS run (the global RNG is restored after each).

    Examples:
        >>> weight = torch.tensor([[1.0], [0.5]])
        >>> decoder = lambda z: z @ weight.T
        >>> x = torch.tensor([[0.2, 0.1], [-1.0, -0.3]])
        >>> result = decoder_log_likelihood(decoder, x, z_dim=1, scale=0.5, num_steps=50)
        >>> exact = dist.MultivariateNormal(torch.zeros(2), weight @ weight.T
        ...                                 + 0.25 * torch.eye(2)).log_prob(x)
        >>> bool((result.per_point - exact).abs().max() < 0.1)
        True
    """
    check_program("decoder", decoder)
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] < 1:
        raise ValueError("x: expected a tensor of points along its first dimension")
    tried: dict[float, float] = {}
    if scale is None:
        if not isinstance(validation, torch.Tensor) or validation.shape[1:] != x.shape[1:]:
            raise ValueError("validation: expected held-out points shaped like x to choose the "
                             "observation scale (or pass scale=)")
        if not scales or any(isinstance(s, bool) or not isinstance(s, (int, float))
                             or not 0 < s < math.inf for s in scales):
            raise ValueError(f"scales: expected positive numbers, got {scales!r}")
        for s in scales:
            model = gaussian_decoder_model(decoder, z_dim, float(s))
            estimate = ais_log_marginal(model, validation, num_steps=max(1, num_steps // 5),
                                        num_chains=num_chains, seed=seed)
            tried[float(s)] = estimate.log_px.mean().item()
        scale = max(tried, key=tried.__getitem__)
    elif isinstance(scale, bool) or not isinstance(scale, (int, float)) \
            or not 0 < scale < math.inf:
        raise ValueError(f"scale: expected a positive number or None, got {scale!r}")
    check_positive_int("check_points", check_points, minimum=0)
    model = gaussian_decoder_model(decoder, z_dim, float(scale))
    estimate = ais_log_marginal(model, x, num_steps=num_steps, num_chains=num_chains, seed=seed)
    check = (bdmc(model, num_steps=num_steps, num_chains=num_chains,
                  kwargs={"num_samples": check_points}, seed=seed) if check_points else None)
    per_point = estimate.log_px.detach()
    return DecoderLikelihood(Estimate.of(per_point), per_point, float(scale), tried, check)
