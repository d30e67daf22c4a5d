"""Figures a person looks at after a run, and ArviZ InferenceData from every engine."""

from .figures import plot_history, plot_latents, plot_samples_over_density, save_image_grid
from .inference_data import (
    KHAT_THRESHOLD,
    from_guide,
    from_history,
    from_mcmc,
    psis_khat,
    to_inference_data,
)
from .mcmc_plots import save_mcmc_plots, save_pair_plot, save_rank_plot, save_trace_plot

__all__ = [
    "KHAT_THRESHOLD",
    "from_guide",
    "from_history",
    "from_mcmc",
    "plot_history",
    "plot_latents",
    "plot_samples_over_density",
    "psis_khat",
    "save_image_grid",
    "save_mcmc_plots",
    "save_pair_plot",
    "save_rank_plot",
    "save_trace_plot",
    "to_inference_data",
]
