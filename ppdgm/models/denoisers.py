"""Time-conditioned noise-prediction networks for diffusion models (DDPM, Ho et al. 2020).

A diffusion model corrupts data ``x_0`` step by step into noise and learns to undo one step at a
time. The network it learns is a *denoiser* ``f(x_t, t)``: given a noisy input ``x_t`` and the
step ``t`` that produced it, it predicts the noise ``eps`` that was added (or ``x_0``, or ``v``;
the network does not care which, :class:`ppdgm.models.Diffusion` decides). Three shapes follow:

* The output has the **same shape as the input**, ``(n, x_dim)`` or ``(n, C, H, W)``, because it
  is an estimate of something that lives in data space (the noise added to each coordinate).
* ``t`` has shape ``(n,)``: every example in a batch carries its **own** step, since training
  draws ``t`` uniformly per example. One network serves every step, so ``t`` must be an input.
* ``t`` enters through :func:`timestep_embedding`, a ``(n, dim)`` vector of sines and cosines at
  geometrically spaced frequencies (the positional encoding of "Attention is all you need").
  A raw scalar ``t`` in ``[1, 1000]`` would be a badly scaled feature; the embedding turns it into
  bounded features that tell nearby steps apart at every scale. A small MLP then maps it to the
  features each layer adds to its activations, a per-example bias that depends on ``t``.

:class:`DenoisingMLP` is for vectors (2-D toy mixtures); :class:`DenoisingUNet` is a small U-Net
for images (8x8 digits, 28x28 MNIST): downsampling residual blocks, a middle block, and an upward
path that concatenates the down path's activations at each resolution so fine detail survives the
bottleneck.

Both are plain ``torch.nn.Module`` s with no device logic: the embedding's frequencies are built
on ``t``'s device, so moving the module moves everything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .._validation import check_layer_size, check_positive_int

__all__ = ["DenoisingMLP", "DenoisingUNet", "timestep_embedding"]


def _check_dim(dim: object) -> int:
    check_positive_int("dim", dim, minimum=2)
    if dim % 2:  # type: ignore[operator]
        raise ValueError(f"dim: expected an even int (half sines, half cosines), got {dim}")
    return dim  # type: ignore[return-value]


def _check_time_dim(time_dim: object) -> int:
    check_positive_int("time_dim", time_dim, minimum=2)
    if time_dim % 2:  # type: ignore[operator]
        raise ValueError(f"time_dim: expected an even int (half sines, half cosines), got {time_dim}")
    return time_dim  # type: ignore[return-value]


def _int_tuple(name: str, value: object, *, allow_empty: bool = True) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected a sequence of ints, got {type(value).__name__}")
    if not allow_empty and len(value) == 0:
        raise ValueError(f"{name}: expected at least one entry, got ()")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ValueError(f"{name}: expected positive ints, got {tuple(value)}")
    return tuple(value)


def _sinusoid(t: torch.Tensor, dim: int, max_period: float) -> torch.Tensor:
    # No value checks: this runs inside every forward pass, where a check would sync the device.
    dtype = t.dtype if t.is_floating_point() else torch.get_default_dtype()
    half = dim // 2
    k = torch.arange(half, device=t.device, dtype=dtype)
    freqs = torch.exp(-math.log(max_period) * k / half)
    angles = t.to(dtype)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of timesteps: ``(n,)`` -> ``(n, dim)``.

    Column ``k < dim/2`` is ``sin(t * w_k)`` and column ``dim/2 + k`` is ``cos(t * w_k)`` with
    frequencies ``w_k = exp(-log(max_period) * k / (dim/2))``, from 1 down to almost
    ``1 / max_period``, as in Ho et al. (2020) and Vaswani et al. (2017). ``t`` may be int or
    float and is any value ``>= 0``; the result is floating point (``t``'s dtype if it is
    floating, else the default dtype) on ``t``'s device.

    Args:
        t: timesteps, shape ``(n,)``, finite and non-negative.
        dim: embedding size, an even int >= 2.
        max_period: the longest period, a positive number.

    Examples:
        >>> e = timestep_embedding(torch.tensor([0, 1, 500]), 8)
        >>> e.shape
        torch.Size([3, 8])
        >>> e[0].tolist()  # t = 0: every sine is 0, every cosine 1
        [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t: expected a torch.Tensor, got {type(t).__name__}")
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"t: expected an int or float tensor, got dtype {t.dtype}")
    if t.dim() != 1:
        raise ValueError(f"t: expected shape (n,), got {tuple(t.shape)}")
    dim = _check_dim(dim)
    if (
        isinstance(max_period, bool)
        or not isinstance(max_period, (int, float))
        or not math.isfinite(max_period)
        or max_period <= 0
    ):
        raise ValueError(f"max_period: expected a positive finite number, got {max_period!r}")
    if t.numel():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError("t: contains NaN or Inf values")
        if bool((t < 0).any()):
            raise ValueError(f"t: expected values >= 0, got a minimum of {t.min().item():g}")
    return _sinusoid(t, dim, float(max_period))


def _check_inputs(x: object, t: object, event_shape: tuple[int, ...]) -> None:
    # Shapes only: no value checks, so a forward pass never waits on the device.
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != len(event_shape) + 1 or tuple(x.shape[1:]) != event_shape:
        raise ValueError(
            f"x: expected shape (n, {', '.join(map(str, event_shape))}), got {tuple(x.shape)}"
        )
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t: expected a torch.Tensor, got {type(t).__name__}")
    if tuple(t.shape) != (x.shape[0],):
        raise ValueError(
            f"t: expected shape ({x.shape[0]},), one step per example of x, got {tuple(t.shape)}"
        )


class _TimeMLP(nn.Module):
    """Sinusoidal embedding -> Linear -> SiLU -> Linear -> SiLU, computed once per forward."""

    def __init__(self, time_dim: int) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.net = nn.Sequential(
            nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim), nn.SiLU()
        )

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.net(_sinusoid(t.to(dtype), self.time_dim, 10000.0))


class DenoisingMLP(nn.Module):
    """A time-conditioned MLP denoiser for vectors: ``(x, t)`` with shapes ``(n, x_dim)``,
    ``(n,)`` -> ``(n, x_dim)``.

    The step is embedded once (:func:`timestep_embedding` of size ``time_dim``, then a two-layer
    SiLU MLP) to ``e``; each hidden layer adds its own projection of ``e`` as a bias,
    ``h <- SiLU(W_i h + U_i e)``; the output layer is linear (PyTorch's default initialization).
    Meant for 2-D toy data.

    Args:
        x_dim: size of each data vector.
        hidden: widths of the hidden layers (at least one).
        time_dim: size of the timestep embedding, an even int.
        fourier: if > 0, the input is ``x`` with sin and cos of ``2^k pi x`` for
            k = 0..fourier-1 per coordinate (fixed frequencies, as in NeRF's positional
            encoding), which lets a small MLP draw the sharp boundaries between nearby modes.

    Examples:
        >>> net = DenoisingMLP(2, hidden=(32, 32), time_dim=16)
        >>> net(torch.randn(5, 2), torch.randint(1, 1000, (5,))).shape
        torch.Size([5, 2])
    """

    def __init__(
        self, x_dim: int, hidden: tuple[int, ...] = (256, 256, 256), time_dim: int = 64,
        fourier: int = 0,
    ) -> None:
        super().__init__()
        self.x_dim = check_positive_int("x_dim", x_dim)
        self.hidden = _int_tuple("hidden", hidden, allow_empty=False)
        self.time_dim = _check_time_dim(time_dim)
        self.fourier = check_positive_int("fourier", fourier, minimum=0)
        self.time_mlp = _TimeMLP(time_dim)
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(fourier, dtype=torch.float32),
                             persistent=False)
        widths = (x_dim * (1 + 2 * fourier), *self.hidden)
        for a, b in [*zip(widths[:-1], widths[1:]), (time_dim, max(self.hidden)), (self.hidden[-1], x_dim)]:
            check_layer_size("hidden", a, b)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        # The bias lives in W_i; U_i needs none of its own.
        self.time_proj = nn.ModuleList(nn.Linear(time_dim, b, bias=False) for b in self.hidden)
        self.act = nn.SiLU()
        self.out = nn.Linear(self.hidden[-1], x_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``(n, x_dim)`` at steps ``t`` of shape ``(n,)`` to ``(n, x_dim)``."""
        _check_inputs(x, t, (self.x_dim,))
        e = self.time_mlp(t, x.dtype)
        h = x
        if self.fourier:
            angles = (x.unsqueeze(-1) * self.freqs.to(x.dtype)).flatten(1)
            h = torch.cat([x, angles.sin(), angles.cos()], dim=1)
        for layer, proj in zip(self.layers, self.time_proj):
            h = self.act(layer(h) + proj(e))
        return self.out(h)


class _ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv3x3 -> + time bias -> GroupNorm -> SiLU -> dropout -> conv3x3,
    plus the input (through a 1x1 convolution when the widths differ)."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.time(e)[:, :, None, None]
        h = self.conv2(self.drop(self.act(self.norm2(h))))
        return h + self.skip(x)


class _Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, then a 3x3 convolution (no checkerboard artifacts)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class DenoisingUNet(nn.Module):
    """A small time-conditioned U-Net denoiser for images: ``(x, t)`` with shapes
    ``(n, C, H, W)``, ``(n,)`` -> ``(n, C, H, W)``.

    Layout, with widths ``w_i = channels * multipliers[i]`` and ``L = len(multipliers)``:

    * a 3x3 convolution from ``C`` to ``channels``;
    * down: at level ``i`` a residual block to ``w_i`` (its output is kept as a skip), then, except
      at the last level, a stride-2 3x3 convolution halving H and W;
    * a middle residual block at ``w_{L-1}``;
    * up, mirrored: at level ``i`` concatenate the kept skip, a residual block back to ``w_i``,
      then, except at level 0, nearest 2x upsampling and a 3x3 convolution;
    * GroupNorm -> SiLU -> 3x3 convolution to ``C``.

    Each residual block is ``GroupNorm(groups) -> SiLU -> conv3x3 -> + Linear(e) -> GroupNorm ->
    SiLU -> dropout -> conv3x3`` plus its input (1x1 convolution when widths differ), where ``e``
    is the timestep embedding after a two-layer SiLU MLP, computed once per forward.

    H and W must be divisible by ``2 ** (L - 1)`` (28x28 with three levels runs at 28, 14, 7;
    8x8 digits also work), and ``channels`` (hence every ``w_i``) by ``groups``. With the defaults on
    ``(1, 28, 28)`` it has 706,849 parameters (about 0.7 M).

    Args:
        x_shape: ``(C, H, W)`` of one image.
        channels: the base width.
        multipliers: width multiplier per resolution level (at least one).
        time_dim: size of the timestep embedding, an even int.
        groups: number of groups of every GroupNorm.
        dropout: dropout probability inside the residual blocks, in [0, 1).

    Examples:
        >>> net = DenoisingUNet((1, 8, 8), channels=8, multipliers=(1, 2), time_dim=16, groups=4)
        >>> net(torch.randn(3, 1, 8, 8), torch.tensor([1, 50, 999])).shape
        torch.Size([3, 1, 8, 8])
    """

    def __init__(
        self,
        x_shape: tuple[int, int, int],
        channels: int = 32,
        multipliers: tuple[int, ...] = (1, 2, 2),
        time_dim: int = 128,
        groups: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        shape = _int_tuple("x_shape", x_shape)
        if len(shape) != 3:
            raise ValueError(f"x_shape: expected (C, H, W), got {shape}")
        self.x_shape: tuple[int, int, int] = (shape[0], shape[1], shape[2])
        self.channels = check_positive_int("channels", channels)
        self.multipliers = _int_tuple("multipliers", multipliers, allow_empty=False)
        self.time_dim = _check_time_dim(time_dim)
        self.groups = check_positive_int("groups", groups)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a float in [0, 1), got {dropout!r}")
        c, h, w = self.x_shape
        factor = 2 ** (len(self.multipliers) - 1)
        if h % factor or w % factor:
            raise ValueError(
                f"x_shape: expected H and W divisible by {factor} ({len(self.multipliers) - 1} "
                f"stride-2 downsamplings for {len(self.multipliers)} multipliers), got {self.x_shape}"
            )
        if channels % groups:
            # Every width is channels * multiplier, so this covers each GroupNorm in the network.
            raise ValueError(
                f"groups: expected a divisor of channels (every width is channels * multiplier), "
                f"got groups = {groups} and channels = {channels}"
            )
        widths = [channels * m for m in self.multipliers]

        self.time_mlp = _TimeMLP(time_dim)
        self.conv_in = nn.Conv2d(c, channels, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        previous = channels
        for i, width in enumerate(widths):
            self.down.append(_ResBlock(previous, width, time_dim, groups, dropout))
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
            previous = width
        self.middle = _ResBlock(previous, previous, time_dim, groups, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(widths))):
            self.up.append(_ResBlock(previous + widths[i], widths[i], time_dim, groups, dropout))
            if i > 0:
                self.upsample.append(_Upsample(widths[i]))
            previous = widths[i]
        self.norm_out = nn.GroupNorm(groups, previous)
        self.act = nn.SiLU()
        self.conv_out = nn.Conv2d(previous, c, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``(n, C, H, W)`` at steps ``t`` of shape ``(n,)`` to the same shape."""
        _check_inputs(x, t, self.x_shape)
        e = self.time_mlp(t, x.dtype)
        h = self.conv_in(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, e)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.middle(h, e)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), e)
            if i < len(self.upsample):
                h = self.upsample[i](h)
        return self.conv_out(self.act(self.norm_out(h)))
