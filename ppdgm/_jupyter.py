"""Whether the code runs in a Jupyter kernel: there progress bars are widgets and figures are
also shown inline, even though stderr is not a terminal."""

from __future__ import annotations

import sys

__all__ = ["in_notebook"]


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's ``ZMQInteractiveShell``).

    IPython is looked up only if already imported: a plain script never pays for it.

    Examples:
        >>> in_notebook()
        False
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"
