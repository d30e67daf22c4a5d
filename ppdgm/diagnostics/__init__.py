"""Figures and (in later releases) ArviZ InferenceData from every engine."""

from .figures import plot_history, plot_latents, save_image_grid

__all__ = ["plot_history", "plot_latents", "save_image_grid"]
