"""Import paths that moved, kept working for one release with a ``DeprecationWarning``.

The run functions lived in flat ``ppdgm.runs*`` modules before the families became recipes
(:mod:`ppdgm.recipes`). ``import ppdgm.runs_gan`` still works: a finder serves each old module
as a thin stand-in whose names resolve in their new home, warning on every lookup with the new
import to write instead. This file goes in the release after next.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

__all__ = ["MOVED_MODULES", "install"]

#: Old module -> the modules its names now live in, searched in order.
MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "ppdgm.runs": ("ppdgm.recipes.run", "ppdgm.recipes.checkpoints", "ppdgm.recipes.vae"),
    "ppdgm.runs_compare": ("ppdgm.recipes.compare",),
    "ppdgm.runs_diagnose": ("ppdgm.recipes.diagnose",),
    "ppdgm.runs_diffusion": ("ppdgm.recipes.diffusion", "ppdgm.models.diffusion"),
    "ppdgm.runs_gan": ("ppdgm.recipes.gan",),
    "ppdgm.runs_mixture": ("ppdgm.recipes.mixture",),
    "ppdgm.runs_rbm": ("ppdgm.recipes.rbm",),
    "ppdgm.runs_sbn": ("ppdgm.recipes.sbn",),
    "ppdgm.runs_vaegan": ("ppdgm.recipes.vaegan",),
}


class _MovedLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        old = module.__name__
        homes = MOVED_MODULES[old]

        def __getattr__(name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            for home in homes:
                value = getattr(importlib.import_module(home), name, _MISSING)
                if value is not _MISSING:
                    warnings.warn(f"{old}.{name} moved: import it from {home} (or ppdgm.recipes); "
                                  f"{old} goes in a later release", DeprecationWarning, stacklevel=2)
                    return value
            raise AttributeError(f"module {old!r} has no attribute {name!r} (it moved to "
                                 f"{' / '.join(homes)})")

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__doc__ = f"Moved to {', '.join(homes)}; this alias warns and goes in a later release."


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedLoader())


_MISSING = object()


def install() -> None:
    """Put the finder of the moved modules on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
