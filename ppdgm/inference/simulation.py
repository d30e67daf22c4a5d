"""Data a model simulates, read from its trace: what calibration and sandwich bounds share.

ppdgm's convention is that ``model(None, *args, **kwargs)`` generates one data set and
``model(x, *args, **kwargs)`` scores ``x``; the site that becomes observed is the data site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyro import poutine
from pyro.poutine.util import site_is_subsample

__all__ = ["find_data_site", "is_draw", "plate_nesting_of"]


def is_draw(site: dict) -> bool:
    """A sample statement, not the index draw of a plate."""
    return site["type"] == "sample" and not site_is_subsample(site)


def plate_nesting_of(trace: Any) -> int:
    """How many plate dimensions the trace's sample sites use (0 when none)."""
    dims = [-frame.dim for site in trace.nodes.values() if site["type"] == "sample"
            for frame in site["cond_indep_stack"] if frame.dim is not None]
    return max(dims, default=0)


def find_data_site(model: Callable, prior: Any, args: tuple, kwargs: dict[str, Any]) -> str:
    """The site of ``prior`` (a trace of ``model(None, ...)``) that becomes observed when its
    simulated value is passed as ``x``."""
    for name, site in reversed(prior.nodes.items()):  # the data is most often drawn last
        if not is_draw(site):
            continue
        try:
            given = poutine.trace(model).get_trace(site["value"], *args, **kwargs)
        except (ValueError, TypeError, RuntimeError):  # a latent's value is no valid x
            continue
        if name in given.nodes and given.nodes[name]["is_observed"]:
            return name
    raise ValueError("model: no sample site became observed when given its simulated value as "
                     "x; expected model(x=None, ...) to generate x and model(x, ...) to observe it")
