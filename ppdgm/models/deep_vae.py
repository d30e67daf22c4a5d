"""A VAE with several stochastic layers, z_L -> ... -> z_1 -> x, as a Pyro model/guide pair.

The model is top-down: z_L ~ N(0, I), then each z_l ~ N(mu_l(z_{l+1}), sigma_l(z_{l+1})^2) with
an MLP computing both, then x ~ p(x | z_1). The guide is bottom-up: z_1 ~ q(z_1 | x), then each
z_{l+1} ~ q(z_{l+1} | z_l). One Pyro sample site per layer (``z1`` nearest the data, ``z2``,
...), all inside the ``data`` plate, so ``Trace_ELBO``, ppdgm's ``IWAE`` and
:func:`~ppdgm.inference.evaluate.estimate_log_likelihood` take it as they take the one-layer VAE.

The default is Burda et al.'s (2016) two-layer architecture for MNIST, read bottom-up:
784 -> 100 -> 100 -> z_1 (100) -> 50 -> 50 -> z_2 (50), tanh units; the decoder mirrors it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule, PyroParam, pyro_method
from pyro.nn.module import to_pyro_module_
from torch import nn
from torch.distributions import constraints
from torch.nn import functional as F

from .._pyro import local_params
from .._validation import check_choice, check_int_tuple, check_positive_int, check_tensor
from ._batch import batch_size, sized_sample
from ._params import svi_compatible_
from .capabilities import Capabilities
from .nets import ACTIVATIONS, MLP

__all__ = ["DeepVAEConfig", "DeepVAE", "latent_site", "OBS"]

OBS = "x"
_MIN_SCALE = 1e-4  # as in the one-layer VAE: keeps a collapsing posterior's std above zero
_MIN_OBS_SCALE = 1e-3


def latent_site(layer: int) -> str:
    """The site name of stochastic layer ``layer`` (1 is next to the data): ``"z1"``, ``"z2"``..."""
    return f"z{layer}"


@dataclass
class DeepVAEConfig:
    """Layers of a :class:`DeepVAE`, bottom-up.

    Attributes:
        x_shape: event shape of one data point.
        z_dims: widths of the stochastic layers, z_1 (next to x) first.
        hidden: the deterministic widths below each stochastic layer: ``hidden[0]`` between x
            and z_1, ``hidden[l]`` between z_l and z_{l+1}; the generative networks use them
            reversed. ``()`` for one of them makes that step a single linear map.
        likelihood: ``"bernoulli"`` or ``"gaussian"`` (a learned std per dimension).
        activation: one of :data:`ppdgm.models.nets.ACTIVATIONS`.
    """

    x_shape: tuple[int, ...] = (1, 28, 28)
    z_dims: tuple[int, ...] = (100, 50)
    hidden: tuple[tuple[int, ...], ...] = ((100, 100), (50, 50))
    likelihood: str = "bernoulli"
    activation: str = "tanh"

    def validate(self) -> None:
        self.x_shape = check_int_tuple("x_shape", self.x_shape, allow_empty=False)
        self.z_dims = check_int_tuple("z_dims", self.z_dims, allow_empty=False)
        if (isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, (tuple, list))
                or len(self.hidden) != len(self.z_dims)):
            raise ValueError(f"hidden: expected one tuple of widths per stochastic layer "
                             f"({len(self.z_dims)}), got {self.hidden!r}")
        self.hidden = tuple(check_int_tuple("hidden", h, allow_empty=True) for h in self.hidden)
        check_choice("likelihood", self.likelihood, ("bernoulli", "gaussian"))
        check_choice("activation", self.activation, tuple(ACTIVATIONS))


class DeepVAE(Capabilities, PyroModule):
    """A VAE with ``len(config.z_dims)`` stochastic layers.

    Examples:
        >>> from pyro.infer import Trace_ELBO
        >>> vae = DeepVAE(DeepVAEConfig(x_shape=(4,), z_dims=(3, 2), hidden=((8,), (8,))))
        >>> x = torch.tensor([[1., 0., 1., 0.]])
        >>> loss = Trace_ELBO().loss(vae.model, vae.guide, x)
        >>> vae.sample(5).shape
        torch.Size([5, 4])
    """

    def __init__(self, config: DeepVAEConfig | None = None) -> None:
        with local_params():
            super().__init__()
            self.config = cfg = config or DeepVAEConfig()
            cfg.validate()
            sizes = [math.prod(cfg.x_shape), *cfg.z_dims]
            # encoders[l]: layer l (x for l = 0) -> loc and raw scale of z_{l+1};
            # decoders[l]: z_{l+1} -> loc and raw scale of z_l (l >= 1), or x's parameters (l = 0).
            encoders, decoders = [], []
            for layer, widths in enumerate(cfg.hidden):
                below, above = sizes[layer], sizes[layer + 1]
                encoders.append(MLP(below, widths, 2 * above, activation=cfg.activation))
                out = below if layer == 0 else 2 * below
                decoders.append(MLP(above, tuple(reversed(widths)), out, activation=cfg.activation))
            self.encoders = nn.ModuleList(encoders)
            self.decoders = nn.ModuleList(decoders)
            to_pyro_module_(self.encoders)
            to_pyro_module_(self.decoders)
            if cfg.likelihood == "gaussian":
                self.obs_scale = PyroParam(torch.ones(cfg.x_shape),
                                           constraint=constraints.greater_than(_MIN_OBS_SCALE))
            self.register_buffer("_top_loc", torch.zeros(cfg.z_dims[-1]), persistent=False)
        svi_compatible_(self)

    @property
    def layers(self) -> int:
        return len(self.config.z_dims)

    @pyro_method
    def model(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """z_L ~ N(0, I), z_l | z_{l+1} down to z_1, then x | z_1; returns x (observed or drawn)."""
        n = batch_size(x, num_samples, self._check_x)
        with pyro.plate("data", n):
            top = self._top_loc
            z = pyro.sample(latent_site(self.layers),
                            dist.Normal(top, torch.ones_like(top)).to_event(1))
            for layer in range(self.layers - 1, 0, -1):
                loc, scale = _loc_scale(self.decoders[layer](z))
                z = pyro.sample(latent_site(layer), dist.Normal(loc, scale).to_event(1))
            return pyro.sample(OBS, self._likelihood(z), obs=x)

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> None:
        """q(z_1 | x), then each q(z_{l+1} | z_l), bottom-up."""
        if x is None:
            raise ValueError("x: the guide needs a data batch (a tensor), got None")
        n = batch_size(x, num_samples, self._check_x)
        h = x.reshape(n, -1)
        with pyro.plate("data", n):
            for layer in range(self.layers):
                loc, scale = _loc_scale(self.encoders[layer](h))
                h = pyro.sample(latent_site(layer + 1), dist.Normal(loc, scale).to_event(1))

    @sized_sample()
    @torch.no_grad()
    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """``n`` draws by ancestral sampling down the layers, shape ``(n, *x_shape)``;
        ``mean=True`` gives the likelihood's mean at the drawn z_1 (pixel probabilities)."""
        check_positive_int("n", n)
        with local_params(), pyro.poutine.block():
            trace = pyro.poutine.trace(self.model).get_trace(None, num_samples=n)
        site = trace.nodes[OBS]
        return site["fn"].mean if mean else site["value"]

    def _likelihood(self, z1: torch.Tensor) -> dist.TorchDistribution:
        cfg = self.config
        out = self.decoders[0](z1).reshape(*z1.shape[:-1], *cfg.x_shape)
        base = (dist.Bernoulli(logits=out) if cfg.likelihood == "bernoulli"
                else dist.Normal(out, self.obs_scale))
        return base.to_event(len(cfg.x_shape))

    def _check_x(self, x: object) -> None:
        values = is_validation_enabled()
        bernoulli = self.config.likelihood == "bernoulli"
        check_tensor("x", x, event_shape=self.config.x_shape, floating=True, finite=values,
                     support="binary" if values and bernoulli else None)


def _loc_scale(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    loc, raw = out.chunk(2, dim=-1)
    return loc, F.softplus(raw) + _MIN_SCALE
