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

from .._validation import check_positive_int

__all__ = ["MLP", "ConvEncoder", "ConvDecoder", "ACTIVATIONS"]

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

    Example:
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

    Example:
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

    Example:
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
