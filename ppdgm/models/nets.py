"""Small reusable networks for encoders, decoders and critics.

These are plain ``torch.nn.Module`` s, so they work anywhere PyTorch does. A model that uses one
inside a Pyro program converts it with ``pyro.nn.module.to_pyro_module_`` (see
:class:`ppdgm.models.VAE`), which makes its weights appear as ``param`` sites named like its
``named_parameters()``.

Every network accepts any number of leading batch dimensions, so a decoder also runs on the
``(particles, batch, z_dim)`` latents of a vectorized ELBO.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._validation import check_layer_size, check_positive_int

__all__ = [
    "MLP",
    "ConvEncoder",
    "ConvDecoder",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "ACTIVATIONS",
    "GENERATOR_OUTPUTS",
]

#: Activation names accepted by every network in this module.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def _activation(activation: object) -> type[nn.Module]:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(
            f"activation: expected one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}"
        )
    return ACTIVATIONS[activation]


def _int_tuple(name: str, value: object, *, length: int | None = None) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected a sequence of ints, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise ValueError(f"{name}: expected {length} entries, got {len(value)} ({tuple(value)})")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ValueError(f"{name}: expected positive ints, got {tuple(value)}")
    return tuple(value)


def _conv_shape(name: str, shape: object) -> tuple[int, int, int]:
    c, h, w = _int_tuple(name, shape, length=3)
    if h % 4 or w % 4:
        # Two stride-2 convolutions halve H and W twice; the decoder must invert that exactly.
        raise ValueError(
            f"{name}: expected (C, H, W) with H and W divisible by 4 (two stride-2 convolutions), "
            f"got {(c, h, w)}"
        )
    return c, h, w


class MLP(nn.Module):
    """A fully connected network: ``Linear -> activation`` per hidden width, then ``Linear``.

    The output layer has no activation, so the output can be logits, means or raw scales.

    Examples:
        >>> net = MLP(4, [16, 8], 2)
        >>> net(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        widths = _int_tuple("hidden", hidden)
        act = _activation(activation)
        layers: list[nn.Module] = []
        previous = in_features
        for name, width in [*(("hidden", w) for w in widths), ("out_features", out_features)]:
            check_layer_size(name, previous, width)
            previous = width
        previous = in_features
        for width in widths:
            layers += [nn.Linear(previous, width), act()]
            previous = width
        layers.append(nn.Linear(previous, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., in_features)`` to ``(..., out_features)``."""
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"x: expected shape (..., {self.in_features}), got {tuple(x.shape)}"
            )
        return self.net(x)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (kernel 4, padding 1) and a linear layer.

    ``in_shape`` is ``(C, H, W)`` with H and W divisible by 4 (8x8 digits and 28x28 MNIST both
    qualify).

    Examples:
        >>> enc = ConvEncoder((1, 28, 28), 10)
        >>> enc(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 10])
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_features: int,
        channels: Sequence[int] = (32, 64),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.in_shape = _conv_shape("in_shape", in_shape)
        self.out_features = check_positive_int("out_features", out_features)
        c1, c2 = _int_tuple("channels", channels, length=2)
        act = _activation(activation)
        c, h, w = self.in_shape
        check_layer_size("x_shape", c2 * (h // 4) * (w // 4), out_features)
        self.net = nn.Sequential(
            nn.Conv2d(c, c1, kernel_size=4, stride=2, padding=1),
            act(),
            nn.Conv2d(c1, c2, kernel_size=4, stride=2, padding=1),
            act(),
            nn.Flatten(),
            nn.Linear(c2 * (h // 4) * (w // 4), out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., C, H, W)`` to ``(..., out_features)``."""
        if x.dim() < 4 or tuple(x.shape[-3:]) != self.in_shape:
            raise ValueError(
                f"x: expected shape (..., {', '.join(map(str, self.in_shape))}), "
                f"got {tuple(x.shape)}"
            )
        lead = x.shape[:-3]
        out = self.net(x.reshape(-1, *self.in_shape))
        return out.reshape(*lead, self.out_features)


class ConvDecoder(nn.Module):
    """A linear layer and two stride-2 transposed convolutions, mirroring :class:`ConvEncoder`.

    The output (logits or means) has shape ``(..., C, H, W)`` and no final activation.

    Examples:
        >>> dec = ConvDecoder(2, (1, 8, 8))
        >>> dec(torch.zeros(5, 2)).shape
        torch.Size([5, 1, 8, 8])
    """

    def __init__(
        self,
        in_features: int,
        out_shape: Sequence[int],
        channels: Sequence[int] = (64, 32),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_shape = _conv_shape("out_shape", out_shape)
        c1, c2 = _int_tuple("channels", channels, length=2)
        act = _activation(activation)
        c, h, w = self.out_shape
        check_layer_size("x_shape", in_features, c1 * (h // 4) * (w // 4))
        self.net = nn.Sequential(
            nn.Linear(in_features, c1 * (h // 4) * (w // 4)),
            nn.Unflatten(-1, (c1, h // 4, w // 4)),
            act(),
            nn.ConvTranspose2d(c1, c2, kernel_size=4, stride=2, padding=1),
            act(),
            nn.ConvTranspose2d(c2, c, kernel_size=4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map ``(..., in_features)`` to ``(..., C, H, W)``."""
        if z.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"z: expected shape (..., {self.in_features}), got {tuple(z.shape)}"
            )
        lead = z.shape[:-1]
        out = self.net(z.reshape(-1, self.in_features))
        return out.reshape(*lead, *self.out_shape)


#: Output nonlinearities of :class:`DCGANGenerator`.
GENERATOR_OUTPUTS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


class DCGANGenerator(nn.Module):
    """The DCGAN generator (Radford et al. 2016) for small images such as MNIST.

    ``Linear -> reshape to (c1, H/4, W/4) -> BatchNorm -> ReLU -> ConvTranspose (stride 2) ->
    BatchNorm -> ReLU -> ConvTranspose (stride 2) -> output``. The default ``"sigmoid"`` output
    puts pixels in (0, 1), the range of ppdgm's image datasets; ``"tanh"`` gives (-1, 1) and
    ``"identity"`` raw values. ``out_shape`` is ``(C, H, W)`` with H and W divisible by 4.

    The batch norms are ``BatchNorm2d`` after the reshape, never ``BatchNorm1d`` on the linear
    layer's output, so even a batch of one image has H/4 x W/4 values per channel to normalize
    in training mode. Under ``pyro.nn.module.to_pyro_module_`` their affine weights become
    ``param`` sites like any other weight, and their running statistics stay buffers.

    Examples:
        >>> gen = DCGANGenerator(8, (1, 28, 28), channels=(16, 8))
        >>> x = gen(torch.randn(3, 8))
        >>> x.shape, bool(((x > 0) & (x < 1)).all())
        (torch.Size([3, 1, 28, 28]), True)
    """

    def __init__(
        self,
        in_features: int,
        out_shape: Sequence[int],
        channels: Sequence[int] = (128, 64),
        output: str = "sigmoid",
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_shape = _conv_shape("out_shape", out_shape)
        c1, c2 = _int_tuple("channels", channels, length=2)
        if not isinstance(output, str) or output not in GENERATOR_OUTPUTS:
            raise ValueError(
                f"output: expected one of {', '.join(map(repr, GENERATOR_OUTPUTS))}, got {output!r}"
            )
        if not isinstance(batch_norm, bool):
            raise TypeError(f"batch_norm: expected a bool, got {type(batch_norm).__name__}")

        def norm(width: int) -> nn.Module:
            return nn.BatchNorm2d(width) if batch_norm else nn.Identity()

        c, h, w = self.out_shape
        check_layer_size("x_shape", in_features, c1 * (h // 4) * (w // 4))
        self.net = nn.Sequential(
            nn.Linear(in_features, c1 * (h // 4) * (w // 4)),
            nn.Unflatten(-1, (c1, h // 4, w // 4)),
            norm(c1),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, c2, kernel_size=4, stride=2, padding=1),
            norm(c2),
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c, kernel_size=4, stride=2, padding=1),
            GENERATOR_OUTPUTS[output](),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map ``(..., in_features)`` to ``(..., C, H, W)``."""
        if z.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"z: expected shape (..., {self.in_features}), got {tuple(z.shape)}"
            )
        lead = z.shape[:-1]
        out = self.net(z.reshape(-1, self.in_features))
        return out.reshape(*lead, *self.out_shape)


class DCGANDiscriminator(nn.Module):
    """The DCGAN discriminator: two stride-2 convolutions with LeakyReLU, then a linear layer.

    ``Conv (stride 2) -> LeakyReLU(0.2) -> Conv (stride 2) -> LeakyReLU(0.2) -> flatten ->
    Linear``. It has no batch norm, so each example's output depends on that example alone:
    the gradient penalty of WGAN-GP is defined per example, and the real and generated halves
    of a batch can go through in one call. :meth:`features` is the flattened output of the
    convolutions (the layer before the last), the feature space of a VAE-GAN's similarity metric.
    ``in_shape`` is ``(C, H, W)`` with H and W divisible by 4; a PacGAN discriminator that sees
    ``m`` images at once takes ``(m * C, H, W)``.

    Examples:
        >>> disc = DCGANDiscriminator((1, 28, 28), channels=(8, 16))
        >>> disc(torch.zeros(5, 1, 28, 28)).shape, disc.features(torch.zeros(5, 1, 28, 28)).shape
        (torch.Size([5, 1]), torch.Size([5, 784]))
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_features: int = 1,
        channels: Sequence[int] = (64, 128),
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.in_shape = _conv_shape("in_shape", in_shape)
        self.out_features = check_positive_int("out_features", out_features)
        c1, c2 = _int_tuple("channels", channels, length=2)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) or not (
            0 <= negative_slope < 1
        ):
            raise ValueError(f"negative_slope: expected a float in [0, 1), got {negative_slope!r}")
        c, h, w = self.in_shape
        self.body = nn.Sequential(
            nn.Conv2d(c, c1, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(c1, c2, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(negative_slope),
            nn.Flatten(),
        )
        self.feature_dim = c2 * (h // 4) * (w // 4)
        self.head = nn.Linear(self.feature_dim, out_features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., C, H, W)`` to the penultimate features ``(..., feature_dim)``."""
        if x.dim() < 4 or tuple(x.shape[-3:]) != self.in_shape:
            raise ValueError(
                f"x: expected shape (..., {', '.join(map(str, self.in_shape))}), "
                f"got {tuple(x.shape)}"
            )
        lead = x.shape[:-3]
        out = self.body(x.reshape(-1, *self.in_shape))
        return out.reshape(*lead, self.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., C, H, W)`` to ``(..., out_features)``."""
        return self.head(self.features(x))
