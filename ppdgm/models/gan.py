"""The generative adversarial network as a Pyro model/guide pair (Hu et al. 2018).

"On Unifying Deep Generative Models" reads a GAN as a generative model and a variational
distribution over the label y ("real" = 1 or "generated" = 0):

* the **model** is the generator, an implicit distribution: z ~ N(0, I) and x = G(z), recorded as
  the deterministic site ``"x"`` so that ``Predictive``, ``poutine.trace`` and ArviZ see it;
* the **guide** is the discriminator as q(y | x) = Bernoulli(sigmoid(D(x))) at the site ``"y"``.

A GAN has no likelihood: ``model(x)`` does **not** condition on ``x``, it only uses the batch size
(and checks the shape), and draws as many generated points. The adversarial losses of
:mod:`ppdgm.inference.objectives.adversarial` read ``"x"`` from the model and the logits of
``"y"`` from the guide, and the engine trains them as two players, ``owns="guide"`` (the
discriminator) and ``owns="model"`` (the generator).

PacGAN (Lin et al. 2018): with ``pack=m`` the discriminator judges m points at once. The guide
groups each m consecutive points of its batch (their features, or image channels, concatenated)
and its ``"data"`` plate runs over the ``n // m`` groups, one label each; the batch size must
be a multiple of m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule, pyro_method
from pyro.nn.module import to_pyro_module_

from .._pyro import local_params
from .._validation import check_choice, check_int_tuple, check_positive_int, check_tensor
from ._batch import batch_size, decode_latents, sized_sample
from ._config import resolve_config
from ._params import svi_compatible_
from .capabilities import Capabilities
from .nets import ACTIVATIONS, MLP, DCGANDiscriminator, DCGANGenerator

__all__ = ["GAN", "GANConfig", "LATENT", "OBS", "LABEL", "ARCHS"]

LATENT = "z"
#: The generated batch, a deterministic site of the model.
OBS = "x"
#: The discriminator's label, 1 = real, 0 = generated: the guide's only sample site.
LABEL = "y"
ARCHS = ("mlp", "dcgan")


@dataclass
class GANConfig:
    """Architecture of a :class:`GAN`.

    Attributes:
        x_shape: event shape of one data point: ``(2,)`` for the 2-D mixtures, ``(1, 28, 28)``
            for MNIST.
        z_dim: dimension of the generator's N(0, I) input.
        arch: ``"mlp"`` (fully connected generator and discriminator; images are flattened) or
            ``"dcgan"`` (:class:`~ppdgm.models.nets.DCGANGenerator` with batch norm and a
            sigmoid output in (0, 1), :class:`~ppdgm.models.nets.DCGANDiscriminator` with
            LeakyReLU; needs ``x_shape=(C, H, W)`` with H and W divisible by 4).
        hidden: ``"mlp"``: the generator's hidden widths (may be empty: an affine generator).
        discriminator_hidden: ``"mlp"``: the discriminator's hidden widths; ``None`` uses
            ``hidden``.
        activation: ``"mlp"``: the hidden layers' nonlinearity, one of
            :data:`ppdgm.models.nets.ACTIVATIONS`.
        channels: ``"dcgan"``: the discriminator's two convolution widths; the generator uses
            them reversed.
        pack: PacGAN's m: the discriminator sees this many points at once (1: a plain GAN).

    Examples:
        >>> GANConfig(x_shape=(1, 28, 28), arch="dcgan", z_dim=64).validate()
    """

    x_shape: tuple[int, ...] = (2,)
    z_dim: int = 2
    arch: str = "mlp"
    hidden: tuple[int, ...] = (128, 128)
    discriminator_hidden: tuple[int, ...] | None = None
    activation: str = "relu"
    channels: tuple[int, ...] = (64, 128)
    pack: int = 1

    def validate(self) -> None:
        """Raise ``TypeError``/``ValueError`` naming the first field that is not valid."""
        x_shape = check_int_tuple("x_shape", self.x_shape, allow_empty=False)
        check_positive_int("z_dim", self.z_dim)
        check_choice("arch", self.arch, ARCHS)
        check_int_tuple("hidden", self.hidden, allow_empty=True)
        if self.discriminator_hidden is not None:
            check_int_tuple("discriminator_hidden", self.discriminator_hidden, allow_empty=True)
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_int_tuple("channels", self.channels, allow_empty=False, length=2)
        check_positive_int("pack", self.pack)
        if self.arch == "dcgan" and (len(x_shape) != 3 or x_shape[1] % 4 or x_shape[2] % 4):
            raise ValueError(
                f"x_shape: arch='dcgan' needs (C, H, W) with H and W divisible by 4, got {x_shape}"
            )


class GAN(Capabilities, PyroModule):
    """A GAN: ``model`` is the generator z ~ N(0, I), x = G(z); ``guide`` is the discriminator.

    ``model(x=None, num_samples=None)`` draws ``len(x)`` (or ``num_samples``) points as the
    deterministic site ``"x"`` and returns them; ``x`` is not conditioned on (a GAN has no
    likelihood). ``guide(x)`` samples ``"y" ~ Bernoulli(logits=D(x))``, y = 1 meaning "real",
    over the ``n // pack`` groups of its batch. The generator's weights are the model's
    ``param`` sites and the discriminator's the guide's, so ``Player(owns="model")`` and
    ``Player(owns="guide")`` split them.

    Batch norm (``arch="dcgan"``, generator only) works under PyroModule conversion: its affine
    weights are ``param`` sites of the model and its running statistics are buffers saved with
    the module. In training mode :meth:`sample` uses (and updates) batch statistics like any
    forward pass; call ``gan.eval()`` to sample with the running ones.

    Examples:
        >>> from pyro.infer import Predictive
        >>> gan = GAN(x_shape=(2,), z_dim=2, hidden=(16,))
        >>> gan.sample(5).shape
        torch.Size([5, 2])
        >>> Predictive(gan.model, num_samples=3)(None, num_samples=4)["x"].shape
        torch.Size([3, 4, 2])
        >>> gan.discriminator_logits(torch.zeros(6, 2)).shape
        torch.Size([6])
    """

    #: Measurements this model does not support, and why (see :mod:`ppdgm.models.capabilities`).
    unsupported = {
        "likelihood": (
            "a GAN has no likelihood, so there is nothing to estimate; measure it by mode coverage "
            "(ppdgm fit gan writes it for ring8 and grid25)"
        ),
        "posterior": (
            "a GAN has no likelihood, so there is nothing to estimate; measure it by mode coverage "
            "(ppdgm fit gan writes it for ring8 and grid25)"
        ),
    }

    def __init__(self, config: GANConfig | None = None, **overrides: object) -> None:
        with local_params():  # each instance owns its weights (see ppdgm._pyro)
            super().__init__()
            self.config = _resolve_config(config, overrides)
            cfg = self.config
            x_dim = math.prod(cfg.x_shape)
            if cfg.arch == "dcgan":
                c, h, w = cfg.x_shape
                generator: torch.nn.Module = DCGANGenerator(
                    cfg.z_dim, cfg.x_shape, channels=tuple(reversed(cfg.channels)))
                discriminator: torch.nn.Module = DCGANDiscriminator(
                    (cfg.pack * c, h, w), channels=cfg.channels)
            else:
                d_hidden = cfg.hidden if cfg.discriminator_hidden is None else cfg.discriminator_hidden
                generator = MLP(cfg.z_dim, cfg.hidden, x_dim, activation=cfg.activation)
                discriminator = MLP(cfg.pack * x_dim, d_hidden, 1, activation=cfg.activation)
            to_pyro_module_(generator)
            to_pyro_module_(discriminator)
            self.generator = generator
            self.discriminator = discriminator
            self.register_buffer("_prior_loc", torch.zeros(cfg.z_dim), persistent=False)
            self.register_buffer("_prior_scale", torch.ones(cfg.z_dim), persistent=False)
        svi_compatible_(self)

    @pyro_method
    def model(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """z ~ N(0, I), x = G(z) (site ``"x"``); ``len(x)`` or ``num_samples`` draws, x unobserved."""
        n = self._batch_size(x, num_samples)
        with pyro.plate("data", n):
            z = pyro.sample(LATENT, dist.Normal(self._prior_loc, self._prior_scale).to_event(1))
            out = self._generate(z)
            return pyro.deterministic(OBS, out, event_dim=len(self.config.x_shape))

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """q(y | x) = Bernoulli(logits=D(x)) per group of ``pack`` points; returns the labels."""
        if x is None:
            raise ValueError("x: the discriminator needs a batch of points (a tensor), got None")
        self._batch_size(x, num_samples)
        logits = self._logits(x)
        with pyro.plate("data", logits.shape[0]):
            return pyro.sample(LABEL, dist.Bernoulli(logits=logits))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The generator's point G(z) for the latents z.

        ``z`` has shape ``(..., z_dim)`` (the leading dimensions are flattened into one batch for
        the network); the result ``(..., *x_shape)`` keeps the graph, so a sampler can follow its
        gradient in z (:func:`ppdgm.decoder_log_likelihood` does).

        Examples:
            >>> GAN(x_shape=(3,), z_dim=2, hidden=(8,)).decode(torch.zeros(4, 2)).shape
            torch.Size([4, 3])
        """
        return decode_latents(z, self.config.z_dim, self.config.x_shape, self._generate)

    def discriminator_logits(self, x: torch.Tensor) -> torch.Tensor:
        """D(x): one logit of "real" per group of ``pack`` consecutive rows, shape ``(n // pack,)``.

        Examples:
            >>> gan = GAN(x_shape=(2,), hidden=(8,), pack=2)
            >>> gan.discriminator_logits(torch.zeros(6, 2)).shape
            torch.Size([3])
        """
        self._check_x(x)
        with local_params():
            return self._logits(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's penultimate layer, shape ``(n // pack, features)``.

        For ``arch="mlp"`` the last hidden layer after its activation (the packed input itself
        when there is none), for ``"dcgan"`` the flattened convolution output.

        Examples:
            >>> GAN(x_shape=(2,), hidden=(8, 4)).features(torch.zeros(3, 2)).shape
            torch.Size([3, 4])
        """
        self._check_x(x)
        with local_params():
            packed = self._pack(x)
            if self.config.arch == "dcgan":
                return self.discriminator.features(packed)
            layers = list(self.discriminator.net)  # iterate: a slice would rename the submodules
            for layer in layers[:-1]:
                packed = layer(packed)
            return packed

    @sized_sample()
    @torch.no_grad()
    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """Draw ``n`` points by running ``model`` forwards; shape ``(n, *x_shape)``.

        ``mean`` is accepted for the ``sample(n, mean=...)`` interface that ``ppdgm sample``
        uses; x is a deterministic function of z, so it changes nothing.

        Examples:
            >>> GAN(x_shape=(1, 8, 8), arch="dcgan", channels=(4, 8)).sample(2).shape
            torch.Size([2, 1, 8, 8])
        """
        check_positive_int("n", n)
        if not isinstance(mean, bool):
            raise TypeError(f"mean: expected a bool, got {type(mean).__name__}")
        with local_params(), poutine.block():
            trace = poutine.trace(self.model).get_trace(None, num_samples=n)
        return trace.nodes[OBS]["value"]

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        out = self.generator(z)
        return out.reshape(*z.shape[:-1], *self.config.x_shape)

    def _pack(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        n, m = x.shape[0], cfg.pack
        if n % m:
            raise ValueError(
                f"x: a GAN with pack={m} judges groups of {m} points; the batch size must be a "
                f"multiple of {m}, got {n}"
            )
        if cfg.arch == "dcgan":
            c, h, w = cfg.x_shape
            return x.reshape(n // m, m * c, h, w)  # the group's images as channels
        return x.reshape(n // m, m * math.prod(cfg.x_shape))  # the group's points side by side

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(self._pack(x)).squeeze(-1)

    def _batch_size(self, x: torch.Tensor | None, num_samples: int | None) -> int:
        return batch_size(x, num_samples, self._check_x)

    def _check_x(self, x: object) -> None:
        check_tensor("x", x, event_shape=self.config.x_shape, floating=True,
                     finite=is_validation_enabled())
        ref = self._prior_loc
        if x.dtype != ref.dtype:
            raise TypeError(f"x: expected dtype {ref.dtype} (the model's), got {x.dtype}")
        if x.device != ref.device:
            raise ValueError(f"x: expected a tensor on {ref.device} (the model's), got {x.device}")


def _resolve_config(config: GANConfig | None, overrides: dict[str, object]) -> GANConfig:
    resolved = resolve_config(GANConfig, config, overrides, ("x_shape", "hidden", "channels"))
    if resolved.discriminator_hidden is not None:
        resolved.discriminator_hidden = tuple(resolved.discriminator_hidden)
    return resolved
