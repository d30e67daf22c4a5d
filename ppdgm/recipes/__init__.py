"""One recipe per model family, and the runs every family shares.

A recipe (:class:`Recipe`) is what ``ppdgm fit <name>`` offers and runs: its flags, its model,
objective and players, what it measures and prints, and how a checkpoint of it is sampled and
evaluated. Every fit goes through one skeleton (:mod:`.run`); ``sample``, ``evaluate`` and
``diagnose`` find the recipe from the checkpoint (:mod:`.checkpoints`).

Adding a family is its model file, its recipe module and one line in :data:`RECIPES`.
"""

from .autoregressive import fit_autoregressive
from .base import Recipe
from .checkpoints import (
    OpenedCheckpoint,
    checkpoint_data,
    evaluate_checkpoint,
    load_trained_model,
    open_checkpoint,
    require_likelihood,
    sample_checkpoint,
)
from .compare import compare_models, format_compare_table
from .diagnose import diagnose_checkpoint, format_diagnosis
from .diffusion import fit_diffusion
from .gan import fit_gan
from .mixture import fit_mixture
from .rbm import fit_rbm
from .registry import DEMO_RECIPE, RECIPES, recipe_for
from .run import RunResult
from .sbn import fit_sbn
from .vae import fit_vae
from .vaegan import fit_vaegan

__all__ = [
    "DEMO_RECIPE",
    "RECIPES",
    "OpenedCheckpoint",
    "Recipe",
    "RunResult",
    "checkpoint_data",
    "compare_models",
    "diagnose_checkpoint",
    "fit_autoregressive",
    "evaluate_checkpoint",
    "fit_diffusion",
    "fit_gan",
    "fit_mixture",
    "fit_rbm",
    "fit_sbn",
    "fit_vae",
    "fit_vaegan",
    "format_compare_table",
    "format_diagnosis",
    "load_trained_model",
    "open_checkpoint",
    "recipe_for",
    "require_likelihood",
    "sample_checkpoint",
]
