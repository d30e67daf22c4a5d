"""One recipe per model family: what ``ppdgm fit <name>`` offers and runs (see :mod:`.base`).

Adding a family to the command line is its recipe module and one line in :data:`RECIPES`.
"""

from .base import Recipe
from .diffusion import DiffusionRecipe
from .gan import GANRecipe
from .mixture import MixtureRecipe
from .rbm import RBMRecipe
from .sbn import SBNRecipe
from .vae import VAERecipe
from .vaegan import VAEGANRecipe

__all__ = ["DEMO_RECIPE", "RECIPES", "Recipe"]

#: Every family the command line trains, by name, in the order ``ppdgm fit --help`` lists them.
RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (
    VAERecipe(), SBNRecipe(), RBMRecipe(), GANRecipe(), VAEGANRecipe(), DiffusionRecipe(),
    MixtureRecipe(),
)}

#: The family ``ppdgm demo`` trains on the bundled digits.
DEMO_RECIPE = "vae"
