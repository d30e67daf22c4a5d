"""Noise schedules of a diffusion model: pure functions of T, and the quantities derived from them.

The forward process adds Gaussian noise in T steps, q(x_t | x_{t-1}) = N(sqrt(1 - beta_t)
x_{t-1}, beta_t I). Everything else follows from the betas: with alpha_t = 1 - beta_t and
alpha_bar_t = prod_{s <= t} alpha_s,

* the marginal q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I);
* the posterior q(x_{t-1} | x_t, x_0) = N(c0_t x_0 + ct_t x_t, beta_tilde_t I) with
  c0_t = beta_t sqrt(alpha_bar_{t-1}) / (1 - alpha_bar_t),
  ct_t = (1 - alpha_bar_{t-1}) sqrt(alpha_t) / (1 - alpha_bar_t) and
  beta_tilde_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t).

:class:`NoiseSchedule` holds them as buffers indexed by t itself: entry 0 is t = 0 (no noise,
alpha_bar_0 = 1), entries 1..T the steps, so ``schedule.alpha_bar[t]`` needs no off-by-one.
"""

from __future__ import annotations

import math

import torch

from .._validation import check_choice, check_positive_int

__all__ = ["SCHEDULES", "NoiseSchedule", "cosine_betas", "linear_betas", "make_betas"]

SCHEDULES = ("linear", "cosine")


def linear_betas(timesteps: int, start: float = 1e-4, end: float = 0.02,
                 max_beta: float = 0.999) -> torch.Tensor:
    """Ho et al.'s linear schedule, beta_1..beta_T, float64.

    ``start`` and ``end`` are the values for T = 1000; for another T both are scaled by 1000 / T
    (Nichol & Dhariwal 2021), so that the chain ends at nearly pure noise for any T. Below
    T = 21 the scaled ``end`` would reach 1; it is capped at ``max_beta`` there.

    Examples:
        >>> b = linear_betas(1000)
        >>> b.shape, round(b[0].item(), 6), round(b[-1].item(), 6)
        (torch.Size([1000]), 0.0001, 0.02)
    """
    check_positive_int("timesteps", timesteps)
    if not 0 < start <= end:
        raise ValueError(f"start, end: expected 0 < start <= end, got {start!r}, {end!r}")
    if not 0 < max_beta < 1:
        raise ValueError(f"max_beta: expected a number in (0, 1), got {max_beta!r}")
    scale = 1000 / timesteps
    return torch.linspace(min(scale * start, max_beta), min(scale * end, max_beta), timesteps,
                          dtype=torch.float64)


def cosine_betas(timesteps: int, offset: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule: alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2).

    beta_t = 1 - alpha_bar(t) / alpha_bar(t - 1), clipped at ``max_beta`` (the last steps would
    otherwise reach 1). Float64.

    Examples:
        >>> b = cosine_betas(1000)
        >>> b.shape, bool((b[1:] >= b[:-1]).all()), b.max().item()
        (torch.Size([1000]), True, 0.999)
    """
    check_positive_int("timesteps", timesteps)
    if not offset >= 0:
        raise ValueError(f"offset: expected a number >= 0, got {offset!r}")
    if not 0 < max_beta < 1:
        raise ValueError(f"max_beta: expected a number in (0, 1), got {max_beta!r}")
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


def make_betas(schedule: str, timesteps: int) -> torch.Tensor:
    """The betas of a schedule named in :data:`SCHEDULES`.

    Examples:
        >>> make_betas("cosine", 10).shape
        torch.Size([10])
    """
    check_choice("schedule", schedule, SCHEDULES)
    return linear_betas(timesteps) if schedule == "linear" else cosine_betas(timesteps)


class NoiseSchedule(torch.nn.Module):
    """A schedule's derived quantities as buffers, indexed by t = 0..T (0: no noise).

    Computed in float64 and stored in float32 (``.double()`` the module for float64 work); they
    move with ``.to(device)``. Buffers are not saved in state dicts: they are a function of the
    schedule's name and T, which the model's config records.

    Examples:
        >>> s = NoiseSchedule(torch.tensor([0.1, 0.2]))
        >>> s.timesteps, round(s.alpha_bar[2].item(), 4), s.posterior_variance[1].item()
        (2, 0.72, 0.0)
    """

    def __init__(self, betas: torch.Tensor) -> None:
        super().__init__()
        if not isinstance(betas, torch.Tensor) or betas.dim() != 1 or betas.numel() == 0:
            raise ValueError(f"betas: expected a non-empty 1-D tensor, got {betas!r}")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("betas: expected every beta_t in (0, 1)")
        b = torch.cat([betas.new_zeros(1), betas]).double()
        a = 1 - b
        ab = torch.cumprod(a, 0)
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        # t = 0 has no posterior; its entries are set to harmless values (0 variance, identity).
        denom = (1 - ab).clamp(min=1e-300)
        quantities = {
            "betas": b,
            "alphas": a,
            "alpha_bar": ab,
            "alpha_bar_prev": ab_prev,
            "sqrt_alpha_bar": ab.sqrt(),
            "sqrt_one_minus_alpha_bar": (1 - ab).sqrt(),
            "posterior_variance": torch.where(ab < 1, b * (1 - ab_prev) / denom, b.new_zeros(())),
            "posterior_coef_x0": torch.where(ab < 1, b * ab_prev.sqrt() / denom, b.new_ones(())),
            "posterior_coef_xt": torch.where(ab < 1, (1 - ab_prev) * a.sqrt() / denom,
                                             b.new_zeros(())),
        }
        for name, value in quantities.items():
            self.register_buffer(name, value.float(), persistent=False)

    @property
    def timesteps(self) -> int:
        """T, the number of noising steps."""
        return self.betas.shape[0] - 1

    def at(self, name: str, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``name[t]`` shaped to broadcast against ``x`` (batch first), in ``x``'s dtype.

        Examples:
            >>> s = NoiseSchedule(torch.tensor([0.1, 0.2]))
            >>> s.at("betas", torch.tensor([1, 2]), torch.zeros(2, 3)).shape
            torch.Size([2, 1])
        """
        value = getattr(self, name)[t]
        return value.to(x.dtype).reshape(*t.shape, *([1] * (x.dim() - t.dim())))
