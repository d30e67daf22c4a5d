"""Samplers that run a trained model forwards: ancestral sampling (prior and prior predictive)."""

from .ancestral import AncestralSampler, ancestral_samples

__all__ = ["AncestralSampler", "ancestral_samples"]
