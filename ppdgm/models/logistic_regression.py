"""Bayesian logistic regression: the discriminative classifier, p(y | x, w) with a prior on w.

Softmax regression over ``classes`` labels: logits = x W^T + b, y ~ Categorical(logits), with
W ~ Normal(0, prior_scale) and b ~ Normal(0, bias_prior_scale) elementwise. It models only
p(y | x): nothing about x, so it can neither generate data nor learn from unlabelled points, and
it needs no assumption about how the features depend on each other.

The guide is a point mass at ``(W, b)`` (``guide="delta"``: SVI with it maximizes the log joint,
the MAP estimate, i.e. L2-regularized logistic regression with C = prior_scale^2) or a diagonal
Gaussian (``guide="normal"``: mean-field variational Bayes). Being a plain Pyro model with its
sample sites at the top level, it also runs under ``pyro.infer.MCMC`` with NUTS.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, pyro_method
from torch import nn

from .._pyro import local_params
from .._validation import check_choice, check_positive_int, check_tensor
from ._batch import batch_size
from ._params import svi_compatible_
from .capabilities import Capabilities

__all__ = ["LogisticRegressionConfig", "LogisticRegression", "WEIGHT", "BIAS", "LABEL", "GUIDES"]

WEIGHT = "weight"
BIAS = "bias"
LABEL = "y"
GUIDES: tuple[str, ...] = ("delta", "normal")


@dataclass
class LogisticRegressionConfig:
    """``x_dim`` features, ``classes`` labels, the prior scales and the guide family."""

    x_dim: int = 64
    classes: int = 10
    prior_scale: float = 1.0
    bias_prior_scale: float = 10.0
    guide: str = "delta"

    def validate(self) -> None:
        check_positive_int("x_dim", self.x_dim)
        check_positive_int("classes", self.classes, minimum=2)
        check_choice("guide", self.guide, GUIDES)
        for name in ("prior_scale", "bias_prior_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name}: expected a number > 0, got {value!r}")


class LogisticRegression(Capabilities, PyroModule):
    """Softmax regression with Gaussian priors, as a Pyro model/guide pair.

    Examples:
        >>> import pyro
        >>> lr = LogisticRegression(LogisticRegressionConfig(x_dim=2, classes=2))
        >>> x, y = torch.tensor([[0., 1.], [1., 0.]]), torch.tensor([0, 1])
        >>> trace = pyro.poutine.trace(lr.model).get_trace(x, y)
        >>> trace.nodes["weight"]["value"].shape, trace.nodes["y"]["is_observed"]
        (torch.Size([2, 2]), True)
    """

    unsupported = {"likelihood": "logistic regression models p(y | x), not the data x"}

    def __init__(self, config: LogisticRegressionConfig | None = None) -> None:
        with local_params():
            super().__init__()
            self.config = config or LogisticRegressionConfig()
            self.config.validate()
            k, d = self.config.classes, self.config.x_dim
            self.register_buffer("_scales", torch.tensor([self.config.prior_scale,
                                                          self.config.bias_prior_scale]))
            self.weight_loc = nn.Parameter(torch.zeros(k, d))
            self.bias_loc = nn.Parameter(torch.zeros(k))
            if self.config.guide == "normal":
                # Start narrow: a wide initial guide makes the first gradients mostly noise.
                self.weight_log_scale = nn.Parameter(torch.full((k, d), -3.0))
                self.bias_log_scale = nn.Parameter(torch.full((k,), -3.0))
        svi_compatible_(self)

    @pyro_method
    def model(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """W, b from their priors, then y_i ~ Categorical(x_i W^T + b); returns the labels."""
        n = self._batch(x, y)
        k, d = self.config.classes, self.config.x_dim
        zero = self._scales.new_zeros(())
        w = pyro.sample(WEIGHT, dist.Normal(zero, self._scales[0]).expand([k, d]).to_event(2))
        b = pyro.sample(BIAS, dist.Normal(zero, self._scales[1]).expand([k]).to_event(1))
        with pyro.plate("data", n):
            return pyro.sample(LABEL, dist.Categorical(logits=x @ w.transpose(-1, -2)
                                                       + b.unsqueeze(-2)), obs=y)

    @pyro_method
    def guide(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        """q(W, b): a point mass (MAP) or a diagonal Gaussian (mean-field VB)."""
        self._batch(x, y)  # the guide takes the model's arguments, checked alike
        if self.config.guide == "delta":
            pyro.sample(WEIGHT, dist.Delta(self.weight_loc).to_event(2))
            pyro.sample(BIAS, dist.Delta(self.bias_loc).to_event(1))
        else:
            pyro.sample(WEIGHT, dist.Normal(self.weight_loc, self.weight_log_scale.exp()).to_event(2))
            pyro.sample(BIAS, dist.Normal(self.bias_loc, self.bias_log_scale.exp()).to_event(1))

    def class_log_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """log p(y = k | x_i) at the guide's mean weights, shape ``(N, classes)``."""
        self._batch(x, None)
        return torch.log_softmax(x @ self.weight_loc.T + self.bias_loc, dim=-1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable label of every row of ``x`` (at the guide's mean), int64 ``(N,)``."""
        return self.class_log_posterior(x).argmax(-1)

    def _batch(self, x: torch.Tensor, y: torch.Tensor | None) -> int:
        if x is None:
            raise ValueError("x: logistic regression models p(y | x) and needs the features x, got None")
        n = batch_size(x, None, self._check_x)
        if y is not None and (not isinstance(y, torch.Tensor) or y.shape != (n,)):
            raise ValueError(f"y: expected labels of shape ({n},), got "
                             f"{tuple(getattr(y, 'shape', ())) or type(y).__name__}")
        return n

    def _check_x(self, x: object) -> None:
        from pyro.infer.util import is_validation_enabled

        check_tensor("x", x, ndim=2, event_shape=(self.config.x_dim,), floating=True,
                     finite=is_validation_enabled())
