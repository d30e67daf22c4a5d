"""Samplers that run a trained model forwards: ancestral sampling (prior and prior predictive), and
the reverse samplers of diffusion models (DDPM, DDIM)."""

from .ancestral import AncestralSampler, ancestral_samples
from .diffusion import SAMPLERS, ddim_sample, ddim_timesteps, ddpm_sample, sample_diffusion

__all__ = ["AncestralSampler", "SAMPLERS", "ancestral_samples", "ddim_sample", "ddim_timesteps",
           "ddpm_sample", "sample_diffusion"]
