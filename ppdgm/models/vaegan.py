"""The VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric").

A VAE whose decoder is also a GAN's generator, and whose likelihood measures reconstructions in
the feature space of the GAN's discriminator instead of pixel space. Three networks:

* the **encoder** q(z | x) = N(mu(x), diag(s(x)^2)), the Pyro **guide** (site ``"z"``);
* the **decoder** G(z), the **model**'s generator: z ~ N(0, I), x~ = G(z), recorded as the
  deterministic site ``"x"`` as in :class:`~ppdgm.models.GAN`;
* the **discriminator** D with hidden layer Dis_l, a third Pyro program
  :meth:`VAEGAN.discriminator` (q(y | x) = Bernoulli(logits=D(x)) at site ``"y"``, as a GAN's
  guide; the guide slot is the encoder's here).

Given data, the model observes the *learned-similarity* likelihood of the paper's eq. (6), a
Gaussian in feature space: ``"x_features" ~ Normal(Dis_l(G(z)), 1).to_event(1)`` with
``obs=Dis_l(x)``. So ``Trace_ELBO`` on ``model``/``guide`` is the paper's L_prior + L_llike.

Dis_l enters the likelihood as a fixed metric: its parameters are **detached** there. Minimizing
a reconstruction error over the metric itself would shrink the features towards a constant map
(every reconstruction perfect); in the paper Dis_l is trained by the GAN loss only. The model
still *reads* every discriminator parameter (so the engine, which finds a pair's parameters by
tracing it, sees the whole discriminator), and :meth:`VAEGAN.owns` gives the engine's players
their parameters by name: ``"encoder.*"``, ``"decoder.*"`` and ``"discriminator_net.*"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule, pyro_method
from pyro.nn.module import to_pyro_module_
from torch import nn
from torch.nn import functional as F

from .._pyro import local_params
from .._validation import check_choice, check_int_tuple, check_positive_int, check_tensor
from ._batch import batch_size, decode_latents, sized_sample
from ._config import resolve_config
from ._params import svi_compatible_
from .capabilities import Capabilities
from .nets import ACTIVATIONS, MLP, ConvEncoder, DCGANDiscriminator, DCGANGenerator

__all__ = ["VAEGAN", "VAEGANConfig", "LATENT", "OBS", "FEATURES", "LABEL", "ARCHS", "PLAYERS"]

LATENT = "z"
#: The decoded batch G(z), a deterministic site of the model (reconstructions when x is given).
OBS = "x"
#: The likelihood's observed site: Dis_l(x) ~ Normal(Dis_l(G(z)), 1).
FEATURES = "x_features"
#: The discriminator program's label, 1 = real, 0 = generated.
LABEL = "y"
ARCHS = ("mlp", "dcgan")
#: Player name -> the attribute holding its network (its parameters are "<attribute>.*").
PLAYERS = {"encoder": "encoder", "decoder": "decoder", "discriminator": "discriminator_net"}

# As in the VAE: softplus underflows to 0 for very negative inputs, and a zero scale makes
# log q(z|x) infinite; the floor is far below any posterior width a VAE learns.
_MIN_SCALE = 1e-4


@dataclass
class VAEGANConfig:
    """Architecture of a :class:`VAEGAN`.

    Attributes:
        x_shape: event shape of one data point: ``(2,)`` for the 2-D mixtures, ``(1, 28, 28)``
            for MNIST.
        z_dim: latent dimension.
        arch: ``"mlp"`` (fully connected networks; images are flattened) or ``"dcgan"`` (a
            :class:`~ppdgm.models.nets.ConvEncoder`, a
            :class:`~ppdgm.models.nets.DCGANGenerator` decoder with batch norm and sigmoid
            output, a :class:`~ppdgm.models.nets.DCGANDiscriminator`; needs ``x_shape=(C, H,
            W)`` with H and W divisible by 4).
        hidden: ``"mlp"``: the encoder's hidden widths; the decoder uses them reversed.
        discriminator_hidden: ``"mlp"``: the discriminator's hidden widths (at least one: the
            similarity metric is one of them); ``None`` uses ``hidden``.
        activation: ``"mlp"`` networks' and the conv encoder's nonlinearity, one of
            :data:`ppdgm.models.nets.ACTIVATIONS`.
        channels: ``"dcgan"``: the encoder's and discriminator's two convolution widths; the
            decoder uses them reversed.
        feature_layer: which hidden layer of the discriminator is Dis_l, indexed like a Python
            list over its hidden layers (``"mlp"``: one per ``discriminator_hidden`` width, after
            the activation; ``"dcgan"``: its two convolutions, after the LeakyReLU, flattened).
            ``-1``, the default, is the last one (the discriminator's penultimate layer).

    The weight gamma of reconstruction against discrimination is the objective's
    (:class:`~ppdgm.inference.objectives.VAEGANLoss`), not the architecture's.

    Examples:
        >>> VAEGANConfig(x_shape=(1, 28, 28), arch="dcgan", z_dim=32, feature_layer=0).validate()
    """

    x_shape: tuple[int, ...] = (2,)
    z_dim: int = 2
    arch: str = "mlp"
    hidden: tuple[int, ...] = (128, 128)
    discriminator_hidden: tuple[int, ...] | None = None
    activation: str = "relu"
    channels: tuple[int, ...] = (64, 128)
    feature_layer: int = -1

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
        if self.arch == "dcgan" and (len(x_shape) != 3 or x_shape[1] % 4 or x_shape[2] % 4):
            raise ValueError(
                f"x_shape: arch='dcgan' needs (C, H, W) with H and W divisible by 4, got {x_shape}"
            )
        layers = self.num_feature_layers
        if self.arch == "mlp" and layers == 0:
            field = "hidden" if self.discriminator_hidden is None else "discriminator_hidden"
            raise ValueError(
                f"{field}: the discriminator needs a hidden layer, its features Dis_l being the "
                f"VAE-GAN's similarity metric; got ()"
            )
        fl = self.feature_layer
        if isinstance(fl, bool) or not isinstance(fl, int):
            raise TypeError(f"feature_layer: expected an int, got {type(fl).__name__}")
        if not -layers <= fl < layers:
            raise ValueError(
                f"feature_layer: the discriminator has {layers} hidden layer(s), so expected an "
                f"index in [{-layers}, {layers - 1}], got {fl}"
            )

    @property
    def num_feature_layers(self) -> int:
        """How many hidden layers of the discriminator ``feature_layer`` can choose from."""
        if self.arch == "dcgan":
            return 2
        widths = self.hidden if self.discriminator_hidden is None else self.discriminator_hidden
        return len(widths)


class _Owns:
    """A picklable, printable predicate: does a parameter site name belong to ``player``?"""

    def __init__(self, player: str) -> None:
        check_choice("player", player, tuple(PLAYERS))
        self.player = player
        self.prefix = PLAYERS[player] + "."

    def __call__(self, name: str) -> bool:
        return name.startswith(self.prefix)

    def __repr__(self) -> str:
        return f"VAEGAN.owns({self.player!r})"


class VAEGAN(Capabilities, PyroModule):
    """A VAE-GAN: ``guide`` is the encoder, ``model`` the decoder with a feature-space likelihood.

    ``model(x=None, num_samples=None)``: z ~ N(0, I), x~ = G(z) at the deterministic site
    ``"x"`` (returned); with data ``x``, also the observed ``"x_features" ~ Normal(Dis_l(x~),
    1).to_event(1)`` with value Dis_l(x), Dis_l's parameters detached (see the module
    docstring). ``guide(x)``: z ~ q(z | x). ``discriminator(x)``: y ~ Bernoulli(logits=D(x)).
    All three run in a ``"data"`` plate over the batch. Train them with
    :class:`~ppdgm.inference.objectives.VAEGANLoss` and three players owning
    :meth:`owns` ``("encoder")``, ``("decoder")`` and ``("discriminator")``
    (:func:`ppdgm.recipes.vaegan.fit_vaegan` does).

    Examples:
        >>> from pyro.infer import Trace_ELBO
        >>> m = VAEGAN(x_shape=(2,), z_dim=2, hidden=(16,))
        >>> x = torch.randn(5, 2)
        >>> m.sample(3).shape, m.reconstruct(x).shape, m.features(x).shape
        (torch.Size([3, 2]), torch.Size([5, 2]), torch.Size([5, 16]))
        >>> m.discriminator_logits(x).shape
        torch.Size([5])
        >>> loss = Trace_ELBO().loss(m.model, m.guide, x)  # KL + feature-space NLL, summed
    """

    #: Measurements this model does not support, and why (see :mod:`ppdgm.models.capabilities`).
    unsupported = {
        "likelihood": (
            "a VAE-GAN's likelihood lives in its discriminator's feature space, not over x, so there is "
            "no log p(x) to report; measure it by mode coverage (ppdgm fit vae-gan writes it for ring8 "
            "and grid25)"
        ),
        "posterior": (
            "a VAE-GAN's likelihood lives in its discriminator's feature space, not over x, so there is "
            "no log p(x) to report; measure it by mode coverage (ppdgm fit vae-gan writes it for ring8 "
            "and grid25)"
        ),
    }

    def __init__(self, config: VAEGANConfig | None = None, **overrides: object) -> None:
        with local_params():  # each instance owns its weights (see ppdgm._pyro)
            super().__init__()
            self.config = _resolve_config(config, overrides)
            cfg = self.config
            x_dim = math.prod(cfg.x_shape)
            if cfg.arch == "dcgan":
                encoder: nn.Module = ConvEncoder(cfg.x_shape, 2 * cfg.z_dim, channels=cfg.channels,
                                                 activation=cfg.activation)
                decoder: nn.Module = DCGANGenerator(cfg.z_dim, cfg.x_shape,
                                                    channels=tuple(reversed(cfg.channels)))
                discriminator: nn.Module = DCGANDiscriminator(cfg.x_shape, channels=cfg.channels)
            else:
                d_hidden = cfg.hidden if cfg.discriminator_hidden is None else cfg.discriminator_hidden
                encoder = MLP(x_dim, cfg.hidden, 2 * cfg.z_dim, activation=cfg.activation)
                decoder = MLP(cfg.z_dim, tuple(reversed(cfg.hidden)), x_dim,
                              activation=cfg.activation)
                discriminator = MLP(x_dim, d_hidden, 1, activation=cfg.activation)
            # As PyroModules their weights are param sites named "<attribute>.<parameter name>",
            # which is how VAEGAN.owns tells the three players' parameters apart.
            for net in (encoder, decoder, discriminator):
                to_pyro_module_(net)
            self.encoder = encoder
            self.decoder = decoder
            self.discriminator_net = discriminator
            self.register_buffer("_prior_loc", torch.zeros(cfg.z_dim), persistent=False)
            self.register_buffer("_prior_scale", torch.ones(cfg.z_dim), persistent=False)
        svi_compatible_(self)

    # ------------------------------------------------------------------ Pyro programs

    @pyro_method
    def model(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """z ~ N(0, I), x~ = G(z) (site ``"x"``); given ``x``, observe Dis_l(x) around Dis_l(x~)."""
        n = self._batch_size(x, num_samples)
        with pyro.plate("data", n):
            z = pyro.sample(LATENT, dist.Normal(self._prior_loc, self._prior_scale).to_event(1))
            x_tilde = pyro.deterministic(OBS, self._generate(z), event_dim=len(self.config.x_shape))
            if x is not None:
                self._read_discriminator_params()
                loc = self._features(x_tilde, frozen=True)
                pyro.sample(FEATURES, dist.Normal(loc, 1.0).to_event(1),
                            obs=self._features(x, frozen=True))
            return x_tilde

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """The encoder q(z | x) = N(loc(x), diag(scale(x)^2)); returns the sampled ``z``."""
        if x is None:
            raise ValueError("x: the encoder (guide) needs a data batch (a tensor), got None")
        n = self._batch_size(x, num_samples)
        loc, scale = self._encode(x)
        with pyro.plate("data", n):
            return pyro.sample(LATENT, dist.Normal(loc, scale).to_event(1))

    @pyro_method
    def discriminator(self, x: torch.Tensor | None = None,
                      num_samples: int | None = None) -> torch.Tensor:
        """q(y | x) = Bernoulli(logits=D(x)), y = 1 meaning "real"; returns the labels.

        The adversarial losses read its logits with
        :func:`~ppdgm.inference.objectives.guide_logits`; its parameters get gradients here.
        """
        if x is None:
            raise ValueError("x: the discriminator needs a batch of points (a tensor), got None")
        n = self._batch_size(x, num_samples)
        logits = self._logits(x)
        with pyro.plate("data", n):
            return pyro.sample(LABEL, dist.Bernoulli(logits=logits))

    @staticmethod
    def owns(player: str) -> Callable[[str], bool]:
        """The predicate on parameter site names for ``Player(player, owns=...)``.

        ``player`` is ``"encoder"``, ``"decoder"`` or ``"discriminator"``. ``owns="model"``
        would not do: the model reads the decoder's *and* the discriminator's parameters.

        Examples:
            >>> VAEGAN.owns("decoder")("decoder.net.0.weight"), VAEGAN.owns("encoder")("decoder.x")
            (True, False)
        """
        return _Owns(player)

    # ------------------------------------------------------------------ tensors out

    @property
    def feature_dim(self) -> int:
        """The width of Dis_l, the likelihood's event size.

        Examples:
            >>> VAEGAN(x_shape=(1, 8, 8), arch="dcgan", channels=(4, 8), feature_layer=0).feature_dim
            64
        """
        cfg = self.config
        k = cfg.feature_layer % cfg.num_feature_layers
        if cfg.arch == "dcgan":
            c, h, w = cfg.x_shape
            return cfg.channels[k] * (h >> (k + 1)) * (w >> (k + 1))
        widths = cfg.hidden if cfg.discriminator_hidden is None else cfg.discriminator_hidden
        return widths[k]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Dis_l(x), the discriminator's chosen hidden layer, shape ``(n, feature_dim)``.

        Differentiable in the discriminator's parameters (the likelihood uses a detached copy).

        Examples:
            >>> VAEGAN(x_shape=(2,), hidden=(8, 4), feature_layer=0).features(torch.zeros(3, 2)).shape
            torch.Size([3, 8])
        """
        self._check_x(x)
        with local_params():
            return self._features(x, frozen=False)

    def discriminator_logits(self, x: torch.Tensor) -> torch.Tensor:
        """D(x): one logit of "real" per row, shape ``(n,)``.

        Examples:
            >>> VAEGAN(x_shape=(2,), hidden=(8,)).discriminator_logits(torch.zeros(6, 2)).shape
            torch.Size([6])
        """
        self._check_x(x)
        with local_params():
            return self._logits(x)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``loc`` and ``scale`` of q(z | x), each of shape ``(n, z_dim)``.

        Examples:
            >>> loc, scale = VAEGAN(x_shape=(2,), z_dim=3, hidden=(8,)).encode(torch.zeros(4, 2))
            >>> loc.shape, bool((scale > 0).all())
            (torch.Size([4, 3]), True)
        """
        self._check_x(x)
        with local_params():
            return self._encode(x)

    @sized_sample()
    @torch.no_grad()
    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """Draw ``n`` points G(z), z ~ N(0, I); shape ``(n, *x_shape)``.

        ``mean`` is accepted for the ``sample(n, mean=...)`` interface that ``ppdgm sample``
        uses; x is a deterministic function of z, so it changes nothing.

        Examples:
            >>> VAEGAN(x_shape=(1, 8, 8), arch="dcgan", channels=(4, 8)).sample(2).shape
            torch.Size([2, 1, 8, 8])
        """
        check_positive_int("n", n)
        if not isinstance(mean, bool):
            raise TypeError(f"mean: expected a bool, got {type(mean).__name__}")
        return self._run_model(n)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's point G(z) for the latents z.

        ``z`` has shape ``(..., z_dim)`` (the leading dimensions are flattened into one batch for
        the network); the result ``(..., *x_shape)`` keeps the graph, so a sampler can follow its
        gradient in z (:func:`ppdgm.decoder_log_likelihood` does).

        Examples:
            >>> VAEGAN(x_shape=(3,), z_dim=2, hidden=(8,)).decode(torch.zeros(4, 2)).shape
            torch.Size([4, 3])
        """
        return decode_latents(z, self.config.z_dim, self.config.x_shape, self._generate)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(loc(x)): decode the posterior mean of z for each row of ``x``; same shape as ``x``.

        Examples:
            >>> VAEGAN(x_shape=(2,), hidden=(8,)).reconstruct(torch.zeros(3, 2)).shape
            torch.Size([3, 2])
        """
        self._check_x(x)
        return self._run_model(x.shape[0], x=x)

    # ------------------------------------------------------------------ internals

    def _run_model(self, n: int, x: torch.Tensor | None = None) -> torch.Tensor:
        # block(): these helpers must not leak sites into handlers a caller may have active.
        with local_params(), poutine.block():
            model = self.model
            if x is not None:
                model = poutine.condition(model, data={LATENT: self._encode(x)[0]})
            trace = poutine.trace(model).get_trace(None, num_samples=n)
        return trace.nodes[OBS]["value"]

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).reshape(*z.shape[:-1], *self.config.x_shape)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        flat = x if cfg.arch == "dcgan" else x.reshape(x.shape[0], -1)
        loc, raw = self.encoder(flat).split(cfg.z_dim, dim=-1)
        return loc, F.softplus(raw) + _MIN_SCALE

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        flat = x if self.config.arch == "dcgan" else x.reshape(*x.shape[:-len(self.config.x_shape)], -1)
        return self.discriminator_net(flat).squeeze(-1)

    def _features(self, x: torch.Tensor, *, frozen: bool) -> torch.Tensor:
        """Dis_l(x) for x of shape ``(*batch, *x_shape)``; ``frozen`` detaches the weights."""
        cfg = self.config
        k = cfg.feature_layer % cfg.num_feature_layers
        lead = x.shape[:x.dim() - len(cfg.x_shape)]
        net = self.discriminator_net
        if cfg.arch == "dcgan":
            h = x.reshape(-1, *cfg.x_shape)
            layers = list(net.body)  # iterate: a slice would rename the submodules
        else:
            h = x.reshape(-1, math.prod(cfg.x_shape))
            layers = list(net.net)
        for layer in layers[: 2 * (k + 1)]:  # (layer, activation) pairs up to hidden layer k
            h = _apply(layer, h, frozen=frozen)
        return h.reshape(*lead, -1)

    def _read_discriminator_params(self) -> None:
        # Dis_l uses only the layers up to l, but the engine finds a pair's parameters by tracing
        # it: reading every discriminator parameter here (each read is a param site) makes the
        # whole discriminator, head included, visible and ownable by the "discriminator" player.
        for name, _ in self.discriminator_net.named_parameters():
            owner: object = self.discriminator_net
            *path, leaf = name.split(".")
            for part in path:
                owner = getattr(owner, part)
            getattr(owner, leaf)

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


def _apply(layer: nn.Module, h: torch.Tensor, *, frozen: bool) -> torch.Tensor:
    """``layer(h)``; with ``frozen``, using detached weights (no gradient reaches them)."""
    if not frozen:
        return layer(h)
    if isinstance(layer, nn.Linear):
        bias = layer.bias
        return F.linear(h, layer.weight.detach(), None if bias is None else bias.detach())
    if isinstance(layer, nn.Conv2d):
        bias = layer.bias
        return F.conv2d(h, layer.weight.detach(), None if bias is None else bias.detach(),
                        layer.stride, layer.padding, layer.dilation, layer.groups)
    if next(layer.parameters(), None) is not None:  # a new layer type needs its own case above
        raise TypeError(f"layer: cannot detach the weights of a {type(layer).__name__}")
    return layer(h)


def _resolve_config(config: VAEGANConfig | None, overrides: dict[str, object]) -> VAEGANConfig:
    resolved = resolve_config(VAEGANConfig, config, overrides, ("x_shape", "hidden", "channels"))
    if resolved.discriminator_hidden is not None:
        resolved.discriminator_hidden = tuple(resolved.discriminator_hidden)
    return resolved
