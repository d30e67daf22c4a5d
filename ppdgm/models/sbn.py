"""Sigmoid belief nets and the Helmholtz machine as a Pyro model/guide pair.

The model is a directed net of binary units Z1 -> Z2 -> ... -> Zk -> X: a learned factorized
Bernoulli prior on the top layer Z1 and, below it, p(z_{l+1} | z_l) = Bernoulli(sigmoid(W z_l + b)).
The guide is the recognition network, bottom-up: q(z_k | x), then q(z_{l-1} | z_l), each a
factorized Bernoulli with logits linear in the layer below. Together they are the Helmholtz
machine (Dayan, Hinton, Neal and Zemel 1995). Sites are named ``z1`` (top) ... ``zk`` and ``x``.

Small nets have an exact log p(x) (:meth:`SigmoidBeliefNet.exact_log_marginal`), summing over
every latent configuration layer by layer, so every estimator and objective can be checked
against the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.nn import PyroModule, pyro_method
from pyro.nn.module import to_pyro_module_
from torch import nn

from .._pyro import local_params
from .._validation import check_int_tuple, check_layer_size, check_positive_int, check_tensor
from ._batch import batch_size, sized_sample
from ._config import resolve_config
from ._params import svi_compatible_
from .autoregressive import AutoregressiveBernoulli
from .capabilities import Capabilities

__all__ = ["SigmoidBeliefNet", "SBNConfig", "OBS", "latent_name", "MAX_EXACT_STATES"]

OBS = "x"
#: The exact marginal enumerates 2^w states per layer and 2^w x 2^w' transitions between layers.
MAX_EXACT_STATES = 2**24


def latent_name(layer: int) -> str:
    """The site name of latent layer ``layer`` (1 is the top layer)."""
    return f"z{layer}"


@dataclass
class SBNConfig:
    """Shape of a :class:`SigmoidBeliefNet`.

    Attributes:
        x_shape: event shape of one binary data point, e.g. ``(784,)`` or ``(1, 28, 28)``.
        layers: latent widths from the top layer Z1 down to Zk, the layer next to X
            (``(200, 200, 200)`` is the SBN of the NVIL and VIMCO papers).
        baseline_hidden: 0 for none, or the hidden width of one input-dependent baseline
            network per latent layer (x -> tanh -> scalar), as NVIL uses. The guide hands them to
            Pyro's ``TraceGraph_ELBO`` through each site's ``infer={"baseline": ...}``; they are
            guide parameters, trained on the squared error of their prediction of the site's
            downstream cost.
        autoregressive: make each recognition layer autoregressive within itself (unit j of a
            layer also sees units i < j of the same layer, through a learned lower-triangular
            weight), so q(z | x) can hold correlations between units. Sampling a layer then takes
            one step per unit.

    Examples:
        >>> SBNConfig(x_shape=(16,), layers=(4, 8)).validate()
    """

    x_shape: tuple[int, ...] = (1, 4, 4)
    layers: tuple[int, ...] = (8,)
    baseline_hidden: int = 0
    autoregressive: bool = False

    def validate(self) -> None:
        """Raise ``TypeError``/``ValueError`` naming the first field that is not valid."""
        for name in ("x_shape", "layers"):
            check_int_tuple(name, getattr(self, name))
        check_positive_int("baseline_hidden", self.baseline_hidden, minimum=0)
        if not isinstance(self.autoregressive, bool):
            raise TypeError(f"autoregressive: expected a bool, got {type(self.autoregressive).__name__}")


class SigmoidBeliefNet(Capabilities, PyroModule):
    """A sigmoid belief net (``model``) with its recognition network (``guide``).

    Both are plain Pyro programs over Bernoulli sites in a ``data`` plate, so Pyro's ELBOs,
    ``Predictive``, the engine and ppdgm's wake-sleep and reweighted wake-sleep objectives all run
    them. Losses from Pyro's ELBOs are sums over the batch, as for the VAE.

    Examples:
        >>> sbn = SigmoidBeliefNet(x_shape=(6,), layers=(2, 3))
        >>> x = sbn.sample(4)
        >>> x.shape, bool(((x == 0) | (x == 1)).all())
        (torch.Size([4, 6]), True)
        >>> sbn.exact_log_marginal(x).shape
        torch.Size([4])
    """

    def __init__(self, config: SBNConfig | None = None, **overrides: object) -> None:
        with local_params():  # see ppdgm._pyro: each instance owns its weights
            super().__init__()
            self.config = _resolve_config(config, overrides)
            widths = list(self.config.layers)
            x_dim = math.prod(self.config.x_shape)
            below = [*widths[1:], x_dim]
            for a, b in zip(widths, below):  # before any weight is allocated
                check_layer_size("layers" if b != x_dim or len(widths) > 1 else "x_shape", a, b)
            check_layer_size("baseline_hidden", x_dim, self.config.baseline_hidden)
            self.top_logits = nn.Parameter(torch.zeros(widths[0]))
            generative = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, below))
            above = [*reversed(widths)]
            recognition = nn.ModuleList(
                nn.Linear(a, b) for a, b in zip([x_dim, *above[:-1]], above)
            )
            to_pyro_module_(generative)
            to_pyro_module_(recognition)
            self.generative = generative
            self.recognition = recognition
            if self.config.autoregressive:
                lateral = nn.ModuleList(_Lateral(w) for w in reversed(widths))
                to_pyro_module_(lateral)
                self.lateral = lateral
            if self.config.baseline_hidden:
                baselines = nn.ModuleList(
                    _Baseline(x_dim, self.config.baseline_hidden) for _ in widths
                )
                to_pyro_module_(baselines)
                self.baselines = baselines
        svi_compatible_(self)

    @property
    def depth(self) -> int:
        return len(self.config.layers)

    @pyro_method
    def model(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """p(z1) p(z2 | z1) ... p(x | zk); returns ``x`` (observed) or ``num_samples`` draws."""
        n = self._batch_size(x, num_samples)
        with pyro.plate("data", n):
            prior = dist.Bernoulli(logits=self.top_logits.expand(n, -1)).to_event(1)
            z = pyro.sample(latent_name(1), prior)
            # Index, don't slice: a slice of a ModuleList is a new, unnamed module.
            for i in range(self.depth - 1):
                logits = self.generative[i](z)
                z = pyro.sample(latent_name(i + 2), dist.Bernoulli(logits=logits).to_event(1))
            logits = self.generative[self.depth - 1](z).reshape(*z.shape[:-1], *self.config.x_shape)
            return pyro.sample(OBS, dist.Bernoulli(logits=logits).to_event(len(self.config.x_shape)),
                               obs=x)

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """q(zk | x) q(z_{k-1} | zk) ... q(z1 | z2), bottom-up; returns the top layer's sample."""
        if x is None:
            raise ValueError("x: the recognition network needs a data batch (a tensor), got None")
        n = self._batch_size(x, num_samples)
        flat = x.reshape(n, -1)
        h = flat
        with pyro.plate("data", n):
            for i in range(self.depth):
                logits = self.recognition[i](h)
                infer = {}
                if self.config.baseline_hidden:
                    infer = {"baseline": {"nn_baseline": self.baselines[i], "nn_baseline_input": flat}}
                if self.config.autoregressive:
                    layer: dist.TorchDistribution = AutoregressiveBernoulli(
                        logits, self.lateral[i].weight)
                else:
                    layer = dist.Bernoulli(logits=logits).to_event(1)
                h = pyro.sample(latent_name(self.depth - i), layer, infer=infer)
        return h

    @sized_sample()
    @torch.no_grad()
    def sample(self, n: int, mean: bool = False) -> torch.Tensor:
        """Ancestral sampling: ``n`` draws of x, shape ``(n, *x_shape)``.

        ``mean=True`` returns the pixel probabilities p(x = 1 | zk) at the sampled zk instead.
        """
        check_positive_int("n", n)
        with local_params(), poutine.block():
            trace = poutine.trace(self.model).get_trace(None, num_samples=n)
        site = trace.nodes[OBS]
        return site["fn"].mean if mean else site["value"]

    @torch.no_grad()
    def exact_log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) for each row of ``x``, summing over every latent state (small nets only).

        Runs the forward algorithm down the chain of layers:
        alpha_1(s) = log p(z1 = s), alpha_{l+1}(s') = logsumexp_s alpha_l(s) + log p(s' | s),
        log p(x) = logsumexp_s alpha_k(s) + log p(x | zk = s).
        """
        self._check_x(x)
        widths = list(self.config.layers)
        for a, b in zip([1, *widths], widths):  # before anything of size 2^width is allocated
            if 2**a * 2**b > MAX_EXACT_STATES:
                raise ValueError(
                    f"layers: {tuple(widths)} is too wide to enumerate (2^{a} x 2^{b} transitions); "
                    "exact log p(x) is for small nets"
                )
        states = [_all_states(w, x.device, x.dtype) for w in self.config.layers]
        with local_params():
            alpha = dist.Bernoulli(logits=self.top_logits).log_prob(states[0]).sum(-1)
            for i in range(self.depth - 1):
                above, below = states[i], states[i + 1]
                logits = self.generative[i](above)  # (S_above, w_below)
                trans = dist.Bernoulli(logits=logits.unsqueeze(1)).log_prob(below).sum(-1)
                alpha = torch.logsumexp(alpha.unsqueeze(1) + trans, dim=0)
            logits = self.generative[self.depth - 1](states[-1])  # (S_k, x_dim)
            flat = x.reshape(x.shape[0], -1)
            log_px_z = dist.Bernoulli(logits=logits.unsqueeze(0)).log_prob(flat.unsqueeze(1)).sum(-1)
        return torch.logsumexp(alpha + log_px_z, dim=-1)

    def _batch_size(self, x: torch.Tensor | None, num_samples: int | None) -> int:
        return batch_size(x, num_samples, self._check_x)

    def _check_x(self, x: object) -> None:
        from pyro.infer.util import is_validation_enabled

        values = is_validation_enabled()
        check_tensor("x", x, event_shape=self.config.x_shape, floating=True, finite=values,
                     support="binary" if values else None)


class _Lateral(nn.Module):
    """The within-layer weights of an autoregressive recognition layer (zero: factorized)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(width, width))


class _Baseline(nn.Module):
    """x -> tanh hidden layer -> one number per data point (shape ``(batch,)``)."""

    def __init__(self, x_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(x_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def _all_states(width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    codes = torch.arange(2**width, device=device).unsqueeze(-1)
    bits = 2 ** torch.arange(width - 1, -1, -1, device=device)
    return ((codes & bits) > 0).to(dtype)



def _resolve_config(config: SBNConfig | None, overrides: dict[str, object]) -> SBNConfig:
    return resolve_config(SBNConfig, config, overrides, ("x_shape", "layers"))
