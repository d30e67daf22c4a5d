"""Whether output goes to a person: the default of every ``progress`` flag."""

from __future__ import annotations

import sys

__all__ = ["stderr_is_terminal"]


def stderr_is_terminal() -> bool:
    """Whether a progress bar has a terminal to draw on (standard error is a TTY).

    Examples:
        >>> isinstance(stderr_is_terminal(), bool)
        True
    """
    return bool(getattr(sys.stderr, "isatty", lambda: False)())
