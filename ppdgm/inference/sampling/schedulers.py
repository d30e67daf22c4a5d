"""Any `diffusers <https://huggingface.co/docs/diffusers>`_ scheduler as the reverse sampler of a
ppdgm diffusion model (the optional extra ``pip install 'ppdgm[diffusers]'``).

A diffusers scheduler only needs the network's noise prediction at each of its timesteps, which a
ppdgm :class:`~ppdgm.models.Diffusion` gives through :meth:`~ppdgm.models.Diffusion.predict`
whatever its denoiser outputs. :func:`scheduler_sample` builds the scheduler from the model's own
schedule and runs the usual loop (scale the input, predict, step); diffusers does the rest, so
DPM-Solver++, UniPC, Euler, Heun, DEIS and the others sample one trained model in 10 to 50 steps.

What comes from the model, whatever the scheduler's own configuration says: T and the betas
(``trained_betas``), the prediction type and no clipping inside the scheduler. ppdgm hands the
scheduler its estimate of x0 (``prediction_type="sample"``), converted at the exact t from
whatever the denoiser predicts, and clamped into the data's range when ``clip`` is on (by default
for quantized data), as its DDPM and DDIM samplers do; the schedulers that take only a noise
prediction (PNDM, Euler ancestral, KDPM2, ...) get the matching eps instead. Handing over x0
rather than eps keeps the float32 rounding of the scheduler's own alpha_bar from being amplified
by 1 / sqrt(alpha_bar_t) at the noisy end of the chain.

Timesteps: diffusers counts t = 0..T-1 where ppdgm counts 1..T (ppdgm's t = 0 is the data), so
diffusers' timestep k is the model's t = k + 1. The loop needs whole-numbered timesteps; the
sigma-family schedulers named here (Euler, Heun) are set to ``timestep_spacing="trailing"``,
which gives them, and a scheduler that visits a fractional timestep is refused.

Noise comes from torch's global stream, seeded by ``seed`` without moving it, in the order the
steps draw it; so diffusers' ``DDPMScheduler`` over all T steps gives the very draws of
:func:`~ppdgm.inference.sampling.diffusion.ddpm_sample` with the same seed (tested).
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from ..._memory import check_draws
from ..._random import seeded
from ..._terminal import stderr_is_terminal
from ..._validation import check_instance, check_positive_int
from ...models.diffusion import Diffusion

__all__ = ["SCHEDULER_ALIASES", "check_scheduler_name", "diffusers_available", "make_scheduler",
           "scheduler_sample", "scheduler_timesteps"]

# Short names for the schedulers most used with few steps, with the options that make them what
# the name says. Any other diffusers scheduler is reached by its class name.
SCHEDULER_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "dpm-solver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
    "euler-ancestral": ("EulerAncestralDiscreteScheduler", {"timestep_spacing": "trailing"}),
    "heun": ("HeunDiscreteScheduler", {"timestep_spacing": "trailing"}),
    "diffusers-ddpm": ("DDPMScheduler", {}),
    "diffusers-ddim": ("DDIMScheduler", {}),
}
# These take only a noise prediction; every other scheduler is handed ppdgm's x0_hat directly.
_EPSILON_ONLY = ("PNDMScheduler", "IPNDMScheduler", "RePaintScheduler", "EulerAncestralDiscreteScheduler",
                 "KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler", "DPMSolverSDEScheduler")
_INSTALL = "diffusers is not installed; install the extra: pip install 'ppdgm[diffusers]'"


def diffusers_available() -> bool:
    """Whether the optional ``diffusers`` package can be imported.

    Examples:
        >>> isinstance(diffusers_available(), bool)
        True
    """
    return importlib.util.find_spec("diffusers") is not None


def check_scheduler_name(name: str) -> None:
    """Raise before any work if ``name`` cannot be a diffusers scheduler here: ``ImportError``
    when diffusers is not installed, ``ValueError`` when it names no scheduler.

    Examples:
        >>> check_scheduler_name("unipc")
    """
    if not diffusers_available():
        raise ImportError(f"sampler {name!r}: {_INSTALL}")
    _scheduler_class(name)


def make_scheduler(diffusion: Diffusion, scheduler: Any = "dpm-solver++") -> Any:
    """A diffusers scheduler set up for ``diffusion``'s own schedule.

    ``scheduler`` is a name from :data:`SCHEDULER_ALIASES`, a diffusers class name such as
    ``"PNDMScheduler"``, or a scheduler instance whose other options (solver order, Karras sigmas,
    ...) are kept; T, the betas, the prediction type and clipping always come from the model.

    Examples:
        >>> from ppdgm.models import Diffusion
        >>> d = Diffusion(x_shape=(2,), timesteps=50, hidden=(8,))
        >>> s = make_scheduler(d, "unipc")
        >>> type(s).__name__, s.config.num_train_timesteps
        ('UniPCMultistepScheduler', 50)
    """
    check_instance("diffusion", diffusion, Diffusion, "a ppdgm.models.Diffusion")
    if not diffusers_available():
        raise ImportError(_INSTALL)
    if isinstance(scheduler, str):
        cls, options = _scheduler_class(scheduler)
    elif hasattr(scheduler, "config") and hasattr(scheduler, "set_timesteps"):
        cls, options = type(scheduler), dict(scheduler.config)
    else:
        raise TypeError("scheduler: expected a name or a diffusers scheduler, "
                        f"got {type(scheduler).__name__}")
    cfg = diffusion.config
    betas = diffusion.schedule.betas[1:].double().cpu().numpy()
    prediction = "epsilon" if cls.__name__ in _EPSILON_ONLY else "sample"
    from_model = {"num_train_timesteps": cfg.timesteps, "trained_betas": betas,
                  "prediction_type": prediction, "clip_sample": False, "thresholding": False,
                  "variance_type": "fixed_small" if cfg.variance == "small" else "fixed_large"}
    accepted = inspect.signature(cls.__init__).parameters
    if "trained_betas" not in accepted:
        raise ValueError(f"scheduler: {cls.__name__} cannot take a model's own betas "
                         "(no trained_betas option), so it cannot follow this model's schedule")
    kwargs = {k: v for k, v in {**options, **from_model}.items() if k in accepted}
    return cls(**kwargs)


def scheduler_timesteps(diffusion: Diffusion, scheduler: Any = "dpm-solver++", steps: int = 20) -> list[int]:
    """The model's timesteps t (1..T) at which the scheduler calls the denoiser, in order.

    Examples:
        >>> from ppdgm.models import Diffusion
        >>> d = Diffusion(x_shape=(2,), timesteps=1000, hidden=(8,))
        >>> scheduler_timesteps(d, "dpm-solver++", 4)
        [1000, 750, 501, 251]
    """
    check_positive_int("steps", steps)
    sched = make_scheduler(diffusion, scheduler)
    if steps > diffusion.config.timesteps:
        raise ValueError(f"steps: expected at most T = {diffusion.config.timesteps}, got {steps}")
    sched.set_timesteps(steps)
    timesteps = sched.timesteps
    if not bool((timesteps == timesteps.round()).all()):
        raise ValueError(f"scheduler: {type(sched).__name__} visits fractional timesteps; pass an "
                         "instance made with timestep_spacing='trailing' or 'leading'")
    return [int(k) + 1 for k in timesteps]


@torch.no_grad()
def scheduler_sample(diffusion: Diffusion, n: int, *, scheduler: Any = "dpm-solver++", steps: int = 20,
                     clip: bool | None = None, seed: int | None = None, progress: bool | None = None,
                     on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """``n`` draws from ``diffusion`` by a diffusers scheduler over ``steps`` steps; ``(n, *x_shape)``.

    ``scheduler`` is what :func:`make_scheduler` takes. The result is in the data's units, on
    the data's grid for quantized data, like ppdgm's own samplers. ``on_step(t, x_t)`` sees the
    state after each step in the data's units at the model's t (for the sigma-parameterized
    schedulers, rescaled to the model's x_t), 0 last.

    Examples:
        >>> from ppdgm.models import Diffusion
        >>> d = Diffusion(x_shape=(2,), timesteps=50, hidden=(8,))
        >>> scheduler_sample(d, 3, scheduler="dpm-solver++", steps=10, seed=0).shape
        torch.Size([3, 2])
    """
    check_positive_int("n", n)
    check_draws("n", n, diffusion, copies=4)
    check_positive_int("steps", steps)
    sched = make_scheduler(diffusion, scheduler)
    cfg, schedule = diffusion.config, diffusion.schedule
    if steps > cfg.timesteps:
        raise ValueError(f"steps: expected at most T = {cfg.timesteps}, got {steps}")
    ref = schedule.betas
    clip = cfg.levels is not None if clip is None else clip
    lo, hi = diffusion.normalize(ref.new_zeros(())), diffusion.normalize(ref.new_ones(()))
    if progress is None:
        progress = stderr_is_terminal()
    visited = scheduler_timesteps(diffusion, sched, steps)
    sched.set_timesteps(steps, device=ref.device)
    with seeded(seed, ref.device):
        y = torch.randn(n, *cfg.x_shape, device=ref.device, dtype=diffusion.reverse_variance.dtype)
        y = y * sched.init_noise_sigma
        if on_step is not None:
            on_step(visited[0], diffusion.denormalize(sched.scale_model_input(y, sched.timesteps[0])))
        name = type(sched).__name__.removesuffix("Scheduler")
        timesteps = sched.timesteps
        for i, k in enumerate(tqdm(timesteps, desc=f"{name}({steps})", disable=not progress, leave=False)):
            y_in = sched.scale_model_input(y, k)
            t = torch.full((n,), int(k) + 1, dtype=torch.long, device=y.device)
            x0, eps = diffusion.predict(y_in, t)
            if clip:
                x0 = x0.clamp(lo, hi)
                eps = (y_in - schedule.at("sqrt_alpha_bar", t, y_in) * x0) / schedule.at(
                    "sqrt_one_minus_alpha_bar", t, y_in)
            output = eps if sched.config.prediction_type == "epsilon" else x0
            y = sched.step(output, k, y).prev_sample
            if on_step is not None:
                last = i + 1 == len(timesteps)
                state = y if last else sched.scale_model_input(y, timesteps[i + 1])
                on_step(0 if last else visited[i + 1], diffusion.denormalize(state))
    return diffusion.to_data(y)



def _scheduler_class(name: str) -> tuple[type, dict[str, Any]]:
    import diffusers

    class_name, options = SCHEDULER_ALIASES.get(name, (name, {}))
    cls = getattr(diffusers, class_name, None) if class_name.endswith("Scheduler") else None
    if not inspect.isclass(cls):
        names = ", ".join(map(repr, SCHEDULER_ALIASES))
        raise ValueError(f"sampler: expected 'ddpm', 'ddim', one of {names} or a diffusers "
                         f"scheduler class name such as 'PNDMScheduler', got {name!r}")
    return cls, dict(options)
