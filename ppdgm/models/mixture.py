"""Mixtures with a tractable posterior: Bernoulli and Gaussian, as Pyro model/guide pairs for EM.

The model draws a component c ~ Categorical(pi) per data point, then x | c from the component.
The guide is the exact posterior p(c | x) computed from the model's own current parameters (it
has no parameters of its own): running it is the E-step. :meth:`m_step` is the closed-form
M-step, and :meth:`log_marginal` the exact log p(x), so EM's monotonicity can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, pyro_method
from torch import nn

from .._pyro import local_params
from .._validation import check_layer_size, check_positive_int, check_tensor
from ._batch import batch_size, sized_sample
from ._params import svi_compatible_
from .capabilities import Capabilities

__all__ = ["MixtureConfig", "BernoulliMixture", "GaussianMixture", "COMPONENT", "OBS"]

COMPONENT = "c"
OBS = "x"
# Bernoulli means are kept inside [eps, 1 - eps]: a component that sees only zeros in one pixel
# would otherwise get probability exactly 0 there and log p(x) = -inf for any later 1.
_EPS = 1e-6
# A Gaussian component that collapses onto one point has variance 0 and unbounded likelihood.
_MIN_VARIANCE = 1e-6


@dataclass
class MixtureConfig:
    """Size of a mixture: ``x_dim`` features (flattened), ``components`` components."""

    x_dim: int = 16
    components: int = 4

    def validate(self) -> None:
        check_positive_int("x_dim", self.x_dim)
        check_positive_int("components", self.components)
        check_layer_size("components", self.components, self.x_dim)


class _Mixture(Capabilities, PyroModule):
    #: What values a data point's entries take ("binary": {0, 1}); None for any real value.
    data_support: str | None = None

    def __init__(self, config: MixtureConfig | None, seed: int) -> None:
        with local_params():
            super().__init__()
            self.config = config or MixtureConfig()
            self.config.validate()
            self.weight_logits = nn.Parameter(torch.zeros(self.config.components))
            self._init_components(torch.Generator().manual_seed(seed))
        svi_compatible_(self)

    def _init_components(self, gen: torch.Generator) -> None:
        raise NotImplementedError

    def _place_components(self, x: torch.Tensor, points: torch.Tensor) -> None:
        raise NotImplementedError

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_i | c) for every data point and component, shape ``(N, components)``."""
        self._check_x(x)
        return self._component_log_prob(x)

    def _component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _component(self, c: torch.Tensor) -> dist.TorchDistribution:
        raise NotImplementedError

    @pyro_method
    def model(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """c ~ Categorical(pi), x | c ~ component c; returns x (observed or drawn)."""
        n = self._batch(x, num_samples)
        with pyro.plate("data", n):
            c = pyro.sample(COMPONENT, dist.Categorical(logits=self.weight_logits))
            return pyro.sample(OBS, self._component(c), obs=x)

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """The exact posterior q(c | x) = p(c | x) under the current parameters (the E-step)."""
        if x is None:
            raise ValueError("x: the posterior over components needs data, got None")
        n = self._batch(x, num_samples)
        with pyro.plate("data", n):
            return pyro.sample(COMPONENT, dist.Categorical(probs=self._responsibilities(x).detach()))

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """p(c | x_i) for every data point, shape ``(N, components)``; rows sum to one."""
        self._check_x(x)
        return self._responsibilities(x)

    def _responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        joint = self._component_log_prob(x) + torch.log_softmax(self.weight_logits, -1)
        return torch.softmax(joint, dim=-1)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x_i), shape ``(N,)``."""
        self._check_x(x)
        joint = self._component_log_prob(x) + torch.log_softmax(self.weight_logits, -1)
        return torch.logsumexp(joint, dim=-1)

    @torch.no_grad()
    def m_step(self, x: torch.Tensor, resp: torch.Tensor) -> None:
        """Set every parameter to its maximizer of E_{c ~ resp}[log p(x, c)] (in place)."""
        counts = resp.sum(0)  # (K,)
        self.weight_logits.copy_(torch.log(counts / counts.sum()).clamp_min(-1e4))
        self._m_step_components(x, resp, counts)

    @torch.no_grad()
    def initialize(self, x: torch.Tensor, seed: int = 0) -> None:
        """Place the components on data points chosen by k-means++ seeding (each next point
        drawn with probability proportional to its squared distance from those already chosen),
        which keeps EM out of the local optima that start with two components in one cluster."""
        self._check_x(x)
        if x.shape[0] < self.config.components:
            raise ValueError(f"x: seeding {self.config.components} components needs at least as "
                             f"many data points, got {x.shape[0]}")
        gen = torch.Generator(device=x.device).manual_seed(seed)
        chosen = [int(torch.randint(x.shape[0], (1,), generator=gen, device=x.device))]
        for _ in range(self.config.components - 1):
            d2 = torch.cdist(x, x[chosen]).min(dim=1).values ** 2
            if float(d2.sum()) == 0.0:
                d2 = torch.ones_like(d2)
            chosen.append(int(torch.multinomial(d2, 1, generator=gen)))
        self.weight_logits.zero_()
        self._place_components(x, x[chosen])

    @sized_sample()
    @torch.no_grad()
    def sample(self, n: int, *, mean: bool = False) -> torch.Tensor:
        """Draw ``n`` points by ancestral sampling, shape ``(n, x_dim)``; ``mean=True`` gives the
        mean of each drawn component instead of a draw from it."""
        check_positive_int("n", n)
        c = dist.Categorical(logits=self.weight_logits).sample((n,))
        component = self._component(c)
        return component.mean if mean else component.sample()

    def _batch(self, x: torch.Tensor | None, num_samples: int | None) -> int:
        return batch_size(x, num_samples, self._check_x)

    def _check_x(self, x: object) -> None:
        from pyro.infer.util import is_validation_enabled

        # The value checks (a pass over the data) run while Pyro's validation does, as in the
        # other models; the engine turns it off after the first epoch.
        values = is_validation_enabled()
        check_tensor("x", x, ndim=2, event_shape=(self.config.x_dim,), floating=True,
                     finite=values, support=self.data_support if values else None)


class BernoulliMixture(_Mixture):
    """A mixture of products of Bernoullis over binary vectors.

    Examples:
        >>> m = BernoulliMixture(MixtureConfig(x_dim=4, components=2))
        >>> x = m.sample(10)
        >>> m.responsibilities(x).shape, m.log_marginal(x).shape
        (torch.Size([10, 2]), torch.Size([10]))
    """

    data_support = "binary"

    def __init__(self, config: MixtureConfig | None = None, seed: int = 0) -> None:
        super().__init__(config, seed)

    def _init_components(self, gen: torch.Generator) -> None:
        # Means drawn in (0.25, 0.75): distinct components, none saturated.
        means = 0.25 + 0.5 * torch.rand(self.config.components, self.config.x_dim, generator=gen)
        self.logits = nn.Parameter(torch.logit(means))

    def _component(self, c: torch.Tensor) -> dist.TorchDistribution:
        return dist.Bernoulli(logits=self.logits[c]).to_event(1)

    def _component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return dist.Bernoulli(logits=self.logits).log_prob(x.unsqueeze(-2)).sum(-1)

    def _place_components(self, x: torch.Tensor, points: torch.Tensor) -> None:
        # Halfway between the chosen binary point and the data's pixel means: not saturated.
        self.logits.copy_(torch.logit((0.5 * points + 0.5 * x.mean(0)).clamp(_EPS, 1 - _EPS)))

    def _m_step_components(self, x: torch.Tensor, resp: torch.Tensor, counts: torch.Tensor) -> None:
        means = (resp.T @ x) / counts.clamp_min(1e-12).unsqueeze(-1)
        self.logits.copy_(torch.logit(means.clamp(_EPS, 1 - _EPS)))


class GaussianMixture(_Mixture):
    """A mixture of diagonal Gaussians.

    Examples:
        >>> m = GaussianMixture(MixtureConfig(x_dim=2, components=3))
        >>> m.log_marginal(m.sample(5)).shape
        torch.Size([5])
    """

    def __init__(self, config: MixtureConfig | None = None, seed: int = 0) -> None:
        super().__init__(config, seed)

    def _init_components(self, gen: torch.Generator) -> None:
        k, d = self.config.components, self.config.x_dim
        self.loc = nn.Parameter(torch.randn(k, d, generator=gen))
        self.log_scale = nn.Parameter(torch.zeros(k, d))

    def _component(self, c: torch.Tensor) -> dist.TorchDistribution:
        return dist.Normal(self.loc[c], self.log_scale[c].exp()).to_event(1)

    def _component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return dist.Normal(self.loc, self.log_scale.exp()).log_prob(x.unsqueeze(-2)).sum(-1)

    def _place_components(self, x: torch.Tensor, points: torch.Tensor) -> None:
        self.loc.copy_(points)
        self.log_scale.copy_(x.std(0).clamp_min(_MIN_VARIANCE**0.5).log().expand_as(self.log_scale))

    def _m_step_components(self, x: torch.Tensor, resp: torch.Tensor, counts: torch.Tensor) -> None:
        safe = counts.clamp_min(1e-12).unsqueeze(-1)
        loc = (resp.T @ x) / safe
        var = (resp.T @ (x**2)) / safe - loc**2
        self.loc.copy_(loc)
        self.log_scale.copy_(0.5 * torch.log(var.clamp_min(_MIN_VARIANCE)))

