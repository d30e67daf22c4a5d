"""The registry of families: ``ppdgm fit <name>`` and every checkpoint's recipe come from here.

Adding a family to the command line is its recipe module and one line in :data:`RECIPES`.
"""

from __future__ import annotations

from .autoregressive import AutoregressiveRecipe
from .base import Recipe
from .diffusion import DiffusionRecipe
from .gan import GANRecipe
from .mixture import MixtureRecipe
from .rbm import RBMRecipe
from .sbn import SBNRecipe
from .vae import VAERecipe
from .vaegan import VAEGANRecipe

__all__ = ["DEMO_RECIPE", "RECIPES", "recipe_for"]

#: Every family the command line trains, by name, in the order ``ppdgm fit --help`` lists them.
RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (
    VAERecipe(), SBNRecipe(), RBMRecipe(), GANRecipe(), VAEGANRecipe(), DiffusionRecipe(),
    MixtureRecipe(), AutoregressiveRecipe(),
)}

#: The family ``ppdgm demo`` trains on the bundled digits.
DEMO_RECIPE = "vae"


def recipe_for(model_name: str) -> Recipe:
    """The recipe of checkpoints whose ``model_spec["name"]`` is ``model_name``.

    Examples:
        >>> recipe_for("gaussian-mixture").name
        'mixture'
    """
    for recipe in RECIPES.values():
        if recipe.handles(model_name):
            return recipe
    raise ValueError(f"checkpoint: no recipe reads models named {model_name!r} "
                     f"(known: {', '.join(RECIPES)})")
