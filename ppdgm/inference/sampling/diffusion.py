"""Reverse samplers of a trained diffusion model: DDPM (ancestral) and DDIM (any number of steps);
:func:`sample_diffusion` also reaches diffusers' schedulers (:mod:`.schedulers`).

Both read the model only through :meth:`~ppdgm.models.Diffusion.predict` (the denoiser's x_0 and
eps estimates) and its schedule, so one trained model serves both, with the number of steps and
the noise level chosen at sampling time.

* :func:`ddpm_sample` runs the model's reverse chain x_T -> x_0 step by step (T denoiser calls):
  the same draws as tracing ``model()``, without Pyro's bookkeeping per site.
* :func:`ddim_sample` (Song et al. 2021) visits a subsequence of ``steps`` timesteps;
  x_s = sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s - sigma^2) eps_hat + sigma z with
  sigma = eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_s).
  ``eta=0`` is deterministic; ``eta=1`` with all T steps is DDPM with ``variance="small"``.

The last step returns the noise-free x0_hat in the data's units (for quantized data, the nearest
grid value), as Ho et al. do. ``clip`` clamps x0_hat into the data's range [0, 1] at every step
(default: for quantized data, whose range is known).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from ..._memory import check_draws
from ..._random import seeded
from ..._terminal import stderr_is_terminal
from ..._validation import check_flag, check_instance, check_number, check_positive_int
from ...models.diffusion import Diffusion
from .schedulers import check_scheduler_name, scheduler_sample

__all__ = ["SAMPLERS", "check_sampler", "ddim_sample", "ddim_timesteps", "ddpm_sample", "sample_diffusion"]

SAMPLERS = ("ddpm", "ddim")
StepCallback = Callable[[int, torch.Tensor], None]


def ddim_timesteps(timesteps: int, steps: int) -> torch.Tensor:
    """``steps`` timesteps from T down to 1, evenly spread (both ends included when steps > 1).

    Examples:
        >>> ddim_timesteps(1000, 5).tolist()
        [1000, 750, 500, 251, 1]
    """
    check_positive_int("timesteps", timesteps)
    check_positive_int("steps", steps)
    if steps > timesteps:
        raise ValueError(f"steps: expected at most T = {timesteps}, got {steps}")
    if steps == 1:
        return torch.tensor([timesteps])
    return torch.linspace(timesteps, 1, steps, dtype=torch.float64).round().long()


@torch.no_grad()
def ddpm_sample(diffusion: Diffusion, n: int, *, clip: bool | None = None, seed: int | None = None,
                progress: bool | None = None, on_step: StepCallback | None = None) -> torch.Tensor:
    """``n`` draws by ancestral sampling of the reverse chain, T steps; ``(n, *x_shape)``.

    ``on_step(t, x_t)`` is called after each step with x_t in the data's units (x_T first), for
    figures of the reverse process. ``seed`` fixes the draws without moving the global RNG.

    Examples:
        >>> from ppdgm.models import Diffusion
        >>> ddpm_sample(Diffusion(x_shape=(2,), timesteps=10, hidden=(8,)), 3, seed=0).shape
        torch.Size([3, 2])
    """
    _check(diffusion, n)
    return _run(diffusion, n, torch.arange(diffusion.config.timesteps, 0, -1), eta=None,
                clip=clip, seed=seed, progress=progress, on_step=on_step, label="DDPM")


@torch.no_grad()
def ddim_sample(diffusion: Diffusion, n: int, *, steps: int = 50, eta: float = 0.0,
                clip: bool | None = None, seed: int | None = None, progress: bool | None = None,
                on_step: StepCallback | None = None) -> torch.Tensor:
    """``n`` draws by DDIM over ``steps`` timesteps (:func:`ddim_timesteps`); ``(n, *x_shape)``.

    Examples:
        >>> from ppdgm.models import Diffusion
        >>> d = Diffusion(x_shape=(2,), timesteps=100, hidden=(8,))
        >>> ddim_sample(d, 3, steps=10, seed=0).shape
        torch.Size([3, 2])
    """
    _check(diffusion, n)
    check_number("eta", eta, minimum=0)
    ts = ddim_timesteps(diffusion.config.timesteps, steps)
    return _run(diffusion, n, ts, eta=float(eta), clip=clip, seed=seed, progress=progress,
                on_step=on_step, label=f"DDIM({steps})")


def sample_diffusion(diffusion: Diffusion, n: int, *, sampler: str = "ddpm", steps: int | None = None,
                     eta: float = 0.0, **kwargs: object) -> torch.Tensor:
    """Any sampler by name, as ``ppdgm sample --sampler`` chooses it.

    ``"ddpm"`` and ``"ddim"`` are ppdgm's own; any other name is a diffusers scheduler run by
    :func:`~ppdgm.inference.sampling.schedulers.scheduler_sample` (``"dpm-solver++"``,
    ``"unipc"``, ``"euler"``, ... or a class name; needs ``pip install 'ppdgm[diffusers]'``).
    ``steps`` defaults to 50 for DDIM and 20 for a diffusers scheduler (at most T); DDPM always
    takes all T, so for it ``steps`` must be ``None`` or T. ``eta`` is DDIM's alone.

    Examples:
        >>> from ppdgm.models import Diffusion
        >>> d = Diffusion(x_shape=(2,), timesteps=20, hidden=(8,))
        >>> sample_diffusion(d, 2, sampler="ddim", steps=5, seed=0).shape
        torch.Size([2, 2])
    """
    check_sampler(sampler)
    if sampler == "ddpm":
        if steps is not None and steps != diffusion.config.timesteps:
            raise ValueError(
                f"steps: DDPM takes all T = {diffusion.config.timesteps} steps; got {steps} "
                "(use sampler='ddim' or a diffusers scheduler for fewer)")
        return ddpm_sample(diffusion, n, **kwargs)
    if sampler == "ddim":
        steps = min(50, diffusion.config.timesteps) if steps is None else steps
        return ddim_sample(diffusion, n, steps=steps, eta=eta, **kwargs)
    if eta != 0:
        raise ValueError(f"eta: only sampler='ddim' takes eta, got eta={eta!r} with sampler={sampler!r}")
    steps = min(20, diffusion.config.timesteps) if steps is None else steps
    return scheduler_sample(diffusion, n, scheduler=sampler, steps=steps, **kwargs)


def check_sampler(sampler: object) -> None:
    """Raise before any work unless ``sampler`` names a sampler that can run here.

    Examples:
        >>> check_sampler("ddim")
        >>> check_sampler(3)
        Traceback (most recent call last):
        ...
        TypeError: sampler: expected a name such as 'ddpm', 'ddim' or 'dpm-solver++', got int
    """
    if not isinstance(sampler, str):
        raise TypeError("sampler: expected a name such as 'ddpm', 'ddim' or 'dpm-solver++', "
                        f"got {type(sampler).__name__}")
    if sampler not in SAMPLERS:
        check_scheduler_name(sampler)


def _check(diffusion: Diffusion, n: int) -> None:
    check_instance("diffusion", diffusion, Diffusion, "a ppdgm.models.Diffusion")
    check_positive_int("n", n)
    check_draws("n", n, diffusion, copies=4)  # x_t, the prediction, the mean and the noise


def _run(diffusion: Diffusion, n: int, ts: torch.Tensor, *, eta: float | None, clip: bool | None,
         seed: int | None, progress: bool | None, on_step: StepCallback | None,
         label: str) -> torch.Tensor:
    if clip is not None:
        check_flag("clip", clip)
    if on_step is not None and not callable(on_step):
        raise TypeError(f"on_step: expected a function on_step(t, x_t) or None, got "
                        f"{type(on_step).__name__}")
    cfg, sched = diffusion.config, diffusion.schedule
    ref = sched.betas
    clip = cfg.levels is not None if clip is None else clip
    lo, hi = diffusion.normalize(ref.new_zeros(())), diffusion.normalize(ref.new_ones(()))
    if progress is None:
        progress = stderr_is_terminal()
    with seeded(seed, ref.device):
        y = torch.randn(n, *cfg.x_shape, device=ref.device, dtype=diffusion.reverse_variance.dtype)
        if on_step is not None:
            on_step(int(ts[0]), diffusion.denormalize(y))
        schedule = ts.tolist()
        for i, t in enumerate(tqdm(schedule, desc=label, disable=not progress, leave=False)):
            s = schedule[i + 1] if i + 1 < len(schedule) else 0
            tt = torch.full((n,), t, dtype=torch.long, device=y.device)
            x0, eps = diffusion.predict(y, tt)
            if clip:
                x0 = x0.clamp(lo, hi)
                eps = (y - sched.at("sqrt_alpha_bar", tt, y) * x0) / sched.at(
                    "sqrt_one_minus_alpha_bar", tt, y)
            if s == 0:
                y = x0
            elif eta is None:  # DDPM: the model's own reverse step
                mean = diffusion.posterior_mean(x0, y, tt)
                y = mean + diffusion.reverse_variance[t].to(y.dtype).sqrt() * torch.randn_like(y)
            else:
                ab_t, ab_s = sched.alpha_bar[t].to(y.dtype), sched.alpha_bar[s].to(y.dtype)
                sigma = eta * ((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)).sqrt()
                y = ab_s.sqrt() * x0 + (1 - ab_s - sigma**2).clamp(min=0).sqrt() * eps
                if eta > 0:
                    y = y + sigma * torch.randn_like(y)
            if on_step is not None:
                on_step(s, diffusion.denormalize(y))
    return diffusion.to_data(y)
