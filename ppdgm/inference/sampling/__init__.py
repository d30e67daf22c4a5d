"""Samplers that run a trained model forwards: ancestral sampling (prior and prior predictive), the
model run on posterior draws (pointwise log-likelihood and posterior predictive), and the reverse
samplers of diffusion models (DDPM, DDIM, and diffusers' schedulers)."""

from .ancestral import AncestralSampler, ancestral_samples
from .diffusion import SAMPLERS, check_sampler, ddim_sample, ddim_timesteps, ddpm_sample, sample_diffusion
from .posterior import PosteriorRun, run_on_draws
from .schedulers import SCHEDULER_ALIASES, diffusers_available, make_scheduler, scheduler_sample

__all__ = ["AncestralSampler", "PosteriorRun", "SAMPLERS", "SCHEDULER_ALIASES", "ancestral_samples",
           "check_sampler", "ddim_sample", "ddim_timesteps", "ddpm_sample", "diffusers_available",
           "make_scheduler", "run_on_draws", "sample_diffusion", "scheduler_sample"]
