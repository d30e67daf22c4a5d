"""Probabilistic PCA: the linear-Gaussian latent model whose likelihood and posterior are exact.

z ~ N(0, I_k), x | z ~ N(W z + b, sigma^2 I_D). Its marginal p(x) = N(b, W W^T + sigma^2 I) and
posterior p(z | x) are closed-form, which makes it the yardstick for every estimator and
objective: an ELBO must sit below :meth:`LinearGaussian.log_marginal`, and reaches it exactly
when the guide equals :meth:`LinearGaussian.posterior`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, PyroParam, pyro_method
from torch.distributions import constraints

from .._pyro import local_params
from .._validation import check_positive_int, check_tensor
from ._batch import sized_sample
from .capabilities import Capabilities

__all__ = ["LinearGaussian", "LinearGaussianConfig", "LATENT", "OBS"]

LATENT = "z"
OBS = "x"


@dataclass
class LinearGaussianConfig:
    """Sizes and scale of :class:`LinearGaussian` (``obs_scale=None`` learns sigma)."""

    x_dim: int = 3
    z_dim: int = 1
    obs_scale: float | None = 0.5

    def validate(self) -> None:
        check_positive_int("x_dim", self.x_dim)
        check_positive_int("z_dim", self.z_dim)
        if self.obs_scale is not None and not (
            isinstance(self.obs_scale, (int, float)) and self.obs_scale > 0
        ):
            raise ValueError(
                f"obs_scale: expected a positive number or None, got {self.obs_scale!r}"
            )


class LinearGaussian(Capabilities, PyroModule):
    """Probabilistic PCA with an amortized linear-Gaussian guide q(z | x) = N(A x + c, diag(s^2)).

    For ``z_dim=1`` (or whenever the exact posterior covariance is diagonal) the guide family
    contains the exact posterior, so a perfectly trained guide closes the ELBO gap to zero.

    Examples:
        >>> m = LinearGaussian(LinearGaussianConfig(x_dim=3, z_dim=1))
        >>> x = m.sample(5)
        >>> bool((m.exact_elbo(x) <= m.log_marginal(x) + 1e-5).all())
        True
    """

    def __init__(self, config: LinearGaussianConfig | None = None) -> None:
        with local_params():  # see ppdgm._pyro: each instance owns its weights
            super().__init__()
            self.config = config or LinearGaussianConfig()
            self.config.validate()
            d, k = self.config.x_dim, self.config.z_dim
            gen = torch.Generator().manual_seed(0)
            self.weight = torch.nn.Parameter(torch.randn(d, k, generator=gen))
            self.bias = torch.nn.Parameter(torch.zeros(d))
            if self.config.obs_scale is None:
                self.obs_scale = PyroParam(torch.ones(()), constraint=constraints.positive)
            else:
                self.register_buffer("obs_scale", torch.tensor(float(self.config.obs_scale)))
            self.enc_weight = torch.nn.Parameter(torch.zeros(k, d))
            self.enc_bias = torch.nn.Parameter(torch.zeros(k))
            self.enc_scale = PyroParam(torch.ones(k), constraint=constraints.positive)
            self.register_buffer("_zero", torch.zeros(()))

    @pyro_method
    def model(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """The generative model; ``x=None`` draws ``num_samples`` points."""
        n = self._batch(x, num_samples)
        k = self.config.z_dim
        with pyro.plate("data", n):
            prior = dist.Normal(self._zero.expand(k), 1.0).to_event(1)
            z = pyro.sample(LATENT, prior)
            loc = z @ self.weight.T + self.bias
            return pyro.sample(OBS, dist.Normal(loc, self.obs_scale).to_event(1), obs=x)

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> None:
        """q(z | x) = N(A x + c, diag(s^2)), amortized over the batch."""
        if x is None:
            raise ValueError("x: the guide needs data, got None")
        self._batch(x, num_samples)
        with pyro.plate("data", x.shape[0]):
            loc = x @ self.enc_weight.T + self.enc_bias
            pyro.sample(LATENT, dist.Normal(loc, self.enc_scale).to_event(1))

    def _batch(self, x: torch.Tensor | None, num_samples: int | None) -> int:
        if x is None:
            if num_samples is None:
                raise ValueError("num_samples: needed when x is None")
            return check_positive_int("num_samples", num_samples)
        check_tensor("x", x, event_shape=(self.config.x_dim,), floating=True)
        if num_samples is not None and num_samples != x.shape[0]:
            raise ValueError(f"num_samples: {num_samples} does not match x's batch {x.shape[0]}")
        return x.shape[0]

    @sized_sample()
    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Draw ``n`` points from the model."""
        z = torch.randn(n, self.config.z_dim, device=self._zero.device)
        loc = z @ self.weight.T + self.bias
        return loc + self._scale() * torch.randn_like(loc)

    def _scale(self) -> torch.Tensor:
        if isinstance(self.obs_scale, torch.Tensor):
            return self.obs_scale
        return torch.tensor(self.obs_scale)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) for each row of ``x``."""
        check_tensor("x", x, event_shape=(self.config.x_dim,), floating=True)
        d = self.config.x_dim
        cov = self.weight @ self.weight.T + self._scale() ** 2 * torch.eye(d, device=x.device)
        return dist.MultivariateNormal(self.bias, covariance_matrix=cov).log_prob(x)

    def posterior(self, x: torch.Tensor) -> dist.MultivariateNormal:
        """The exact posterior p(z | x) for each row of ``x``."""
        check_tensor("x", x, event_shape=(self.config.x_dim,), floating=True)
        k = self.config.z_dim
        precision = torch.eye(k, device=x.device) + self.weight.T @ self.weight / self._scale() ** 2
        cov = torch.linalg.inv(precision)
        mean = (x - self.bias) @ self.weight @ cov.T / self._scale() ** 2
        return dist.MultivariateNormal(mean, covariance_matrix=cov)

    def guide_distribution(self, x: torch.Tensor) -> dist.MultivariateNormal:
        """The guide's q(z | x) as a (diagonal) multivariate normal."""
        check_tensor("x", x, event_shape=(self.config.x_dim,), floating=True)
        loc = x @ self.enc_weight.T + self.enc_bias
        scale_tril = torch.diag_embed(self.enc_scale.expand_as(loc))
        return dist.MultivariateNormal(loc, scale_tril=scale_tril)

    def exact_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """The guide's ELBO in closed form: log p(x) - KL(q(z|x) || p(z|x))."""
        kl = torch.distributions.kl_divergence(self.guide_distribution(x), self.posterior(x))
        return self.log_marginal(x) - kl
