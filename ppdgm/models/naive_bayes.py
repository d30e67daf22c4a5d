"""Naive Bayes: the generative classifier, p(x, y) = p(y) prod_d p(x_d | y), as a Pyro program.

The model draws a label y ~ Categorical(pi), then every feature independently given y: Bernoulli
for binary features, Gaussian for real ones. Classification is Bayes' rule, p(y | x) proportional
to p(y) p(x | y), which Pyro computes by enumerating the label site (see
:func:`ppdgm.inference.objectives.em.posterior_by_enumeration`); :meth:`NaiveBayes.class_log_posterior`
is the same sum written out.

Fitting has a closed form, :meth:`NaiveBayes.m_step`: weighted counts (one-hot weights for
labelled data, posterior responsibilities for unlabelled data in EM). With ``pseudo_count`` a > 0
the Bernoulli fit is the MAP estimate under Beta(1 + a, 1 + a) priors on every feature probability
and a Dirichlet(1 + a) prior on the class probabilities, i.e. Laplace smoothing: it is what keeps
a pixel never seen inked in a class's few examples from ruling that class out forever. Gaussian
variances get scikit-learn's ``var_smoothing`` (a share of the largest feature variance added to
each), which keeps a constant pixel from having zero variance.
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
from ._batch import batch_size, sized_sample
from ._params import svi_compatible_
from .capabilities import Capabilities

__all__ = ["NaiveBayesConfig", "NaiveBayes", "LABEL", "OBS", "LIKELIHOODS"]

LABEL = "y"
OBS = "x"
LIKELIHOODS: tuple[str, ...] = ("bernoulli", "gaussian")


@dataclass
class NaiveBayesConfig:
    """``x_dim`` features, ``classes`` labels, the class-conditional ``likelihood`` and its smoothing.

    ``pseudo_count`` (Bernoulli, and the class prior of both): Laplace smoothing, 0 for maximum
    likelihood. ``var_smoothing`` (Gaussian): scikit-learn's, the share of the largest feature
    variance added to every variance.
    """

    x_dim: int = 64
    classes: int = 10
    likelihood: str = "bernoulli"
    pseudo_count: float = 1.0
    var_smoothing: float = 1e-2

    def validate(self) -> None:
        check_positive_int("x_dim", self.x_dim)
        check_positive_int("classes", self.classes, minimum=2)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        for name in ("pseudo_count", "var_smoothing"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {value!r}")


class NaiveBayes(Capabilities, PyroModule):
    """Naive Bayes over ``x_dim`` features as a Pyro model; ``guide`` is the exact p(y | x).

    Examples:
        >>> nb = NaiveBayes(NaiveBayesConfig(x_dim=3, classes=2))
        >>> x = torch.tensor([[1., 0., 1.], [0., 0., 1.], [0., 1., 0.]])
        >>> nb.fit(x, torch.tensor([0, 0, 1]))
        >>> nb.predict(x).tolist()
        [0, 0, 1]
    """

    unsupported = {"posterior": "naive Bayes' only latent is the label, whose posterior is exact"}

    def __init__(self, config: NaiveBayesConfig | None = None) -> None:
        with local_params():
            super().__init__()
            self.config = config or NaiveBayesConfig()
            self.config.validate()
            k, d = self.config.classes, self.config.x_dim
            self.class_logits = nn.Parameter(torch.zeros(k))
            self.loc = nn.Parameter(torch.zeros(k, d))  # Bernoulli: logits; Gaussian: means
            if self.config.likelihood == "gaussian":
                self.log_scale = nn.Parameter(torch.zeros(k, d))
        svi_compatible_(self)

    @property
    def data_support(self) -> str | None:
        return "binary" if self.config.likelihood == "bernoulli" else None

    def class_conditional(self, y: torch.Tensor) -> dist.TorchDistribution:
        """p(x | y) for labels ``y`` of any shape, a distribution with event shape ``(x_dim,)``."""
        if self.config.likelihood == "bernoulli":
            return dist.Bernoulli(logits=self.loc[y]).to_event(1)
        return dist.Normal(self.loc[y], self.log_scale[y].exp()).to_event(1)

    @pyro_method
    def model(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
              num_samples: int | None = None) -> torch.Tensor:
        """y ~ Categorical(pi), x | y ~ prod_d p(x_d | y); ``y=None`` leaves the label latent."""
        n = self._batch(x, y, num_samples)
        with pyro.plate("data", n):
            y = pyro.sample(LABEL, dist.Categorical(logits=self.class_logits), obs=y)
            return pyro.sample(OBS, self.class_conditional(y), obs=x)

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
              num_samples: int | None = None) -> None:
        """The exact posterior p(y | x) for unlabelled data; nothing to infer when ``y`` is given."""
        if y is not None:
            return
        if x is None:
            raise ValueError("x: the posterior over labels needs data, got None")
        with pyro.plate("data", self._batch(x, None, num_samples)):
            pyro.sample(LABEL, dist.Categorical(logits=self.class_log_posterior(x).detach()))

    def joint_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_i, y = k) for every data point and class, shape ``(N, classes)``."""
        self._check_x(x)
        labels = torch.arange(self.config.classes, device=x.device)
        log_px = self.class_conditional(labels).log_prob(x.unsqueeze(-2))
        return log_px + torch.log_softmax(self.class_logits, -1)

    def class_log_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """log p(y = k | x_i) by Bayes' rule, shape ``(N, classes)``."""
        return torch.log_softmax(self.joint_log_prob(x), dim=-1)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x_i) = log sum_k p(x_i, k), shape ``(N,)``."""
        return torch.logsumexp(self.joint_log_prob(x), dim=-1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable label of every row of ``x``, int64 ``(N,)``."""
        return self.joint_log_prob(x).argmax(-1)

    @torch.no_grad()
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Set the parameters to their closed-form fit on labelled data (counts, means)."""
        self._check_x(x)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape[:1] or y.dtype != torch.int64:
            raise ValueError(f"y: expected int64 labels of shape ({x.shape[0]},), got "
                             f"{getattr(y, 'dtype', type(y).__name__)} {tuple(getattr(y, 'shape', ()))}")
        if bool((y < 0).any()) or bool((y >= self.config.classes).any()):
            raise ValueError(f"y: expected labels in [0, {self.config.classes}), got "
                             f"[{int(y.min())}, {int(y.max())}]")
        self.m_step(x, torch.nn.functional.one_hot(y, self.config.classes).to(x.dtype))

    @torch.no_grad()
    def m_step(self, x: torch.Tensor, resp: torch.Tensor) -> None:
        """The closed-form (MAP with ``pseudo_count``) fit to data weighted by ``resp`` (N, K).

        Row i of ``resp`` says how much of data point i each class gets: one-hot for a labelled
        point, p(y | x_i) for an unlabelled one in EM, scaled down to weight unlabelled data less.
        """
        self._check_x(x)
        check_tensor("resp", resp, event_shape=(self.config.classes,), floating=True)
        if resp.shape[0] != x.shape[0] or bool((resp < 0).any()):
            raise ValueError(f"resp: expected non-negative weights of shape ({x.shape[0]}, "
                             f"{self.config.classes}), got {tuple(resp.shape)}")
        a = self.config.pseudo_count
        counts = resp.sum(0)  # (K,)
        self.class_logits.copy_(torch.log((counts + a) / (counts.sum() + a * len(counts))))
        weighted = resp.T @ x  # (K, D): the weighted sum of each feature per class
        if self.config.likelihood == "bernoulli":
            p = (weighted + a) / (counts.unsqueeze(-1) + 2 * a)
            self.loc.copy_(torch.logit(p.clamp(1e-12, 1 - 1e-12)))
            return
        mean = weighted / counts.unsqueeze(-1).clamp_min(1e-12)
        var = (resp.T @ x.square()) / counts.unsqueeze(-1).clamp_min(1e-12) - mean.square()
        floor = self.config.var_smoothing * x.var(0, unbiased=False).max()
        self.loc.copy_(mean)
        self.log_scale.copy_(0.5 * torch.log(var.clamp_min(0) + floor.clamp_min(1e-12)))

    def log_prior(self) -> torch.Tensor:
        """log density (up to a constant) of the Beta and Dirichlet priors that ``pseudo_count``
        stands for: with it, EM never decreases log p(data) + log_prior()."""
        a = self.config.pseudo_count
        total = a * torch.log_softmax(self.class_logits, -1).sum()
        if self.config.likelihood == "bernoulli":
            total = total + a * (nn.functional.logsigmoid(self.loc)
                                 + nn.functional.logsigmoid(-self.loc)).sum()
        return total

    @sized_sample()
    @torch.no_grad()
    def sample(self, n: int, *, mean: bool = False) -> torch.Tensor:
        """``n`` points by ancestral sampling (label, then features), shape ``(n, x_dim)``;
        ``mean=True`` gives each drawn label's feature means instead of a draw."""
        check_positive_int("n", n)
        y = dist.Categorical(logits=self.class_logits).sample((n,))
        conditional = self.class_conditional(y)
        return conditional.mean if mean else conditional.sample()

    def _batch(self, x: torch.Tensor | None, y: torch.Tensor | None, num_samples: int | None) -> int:
        if x is None and isinstance(y, torch.Tensor) and y.dim() == 1:
            num_samples = y.shape[0]  # labels alone: draw one x per given label
        n = batch_size(x, num_samples, self._check_x)
        if y is not None and (not isinstance(y, torch.Tensor) or y.shape != (n,)):
            raise ValueError(f"y: expected labels of shape ({n},), got "
                             f"{tuple(getattr(y, 'shape', ())) or type(y).__name__}")
        return n

    def _check_x(self, x: object) -> None:
        from pyro.infer.util import is_validation_enabled

        values = is_validation_enabled()
        check_tensor("x", x, ndim=2, event_shape=(self.config.x_dim,), floating=True,
                     finite=values, support=self.data_support if values else None)
