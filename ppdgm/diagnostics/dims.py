"""Dimension names of every ArviZ group, read off the model's plates, the same in every group.

A site's value has its batch dimensions (the plates it sits in, and any broadcast) on the left and
its event dimensions on the right. ppdgm names them the same way wherever the site appears (prior,
posterior, predictive, observed data, log-likelihood), for MCMC runs and guides alike, so that
``idata.prior.z - idata.posterior.z`` lines up instead of broadcasting:

* a dimension that is a plate gets the plate's name, the data plate (``"data"``) becoming
  ``obs_dim`` (``"obs"``);
* a size-1 dimension that is no plate (a batch dimension a plate left of it made, or an axis
  left of the site's own that a vectorized run added) is dropped, as ArviZ's own Pyro converter
  drops it;
* any other dimension is ``<site>_dim_0``, ``<site>_dim_1``, ... left to right.

Examples:
    >>> import numpy as np, pyro, pyro.distributions as dist, pyro.poutine as poutine, torch
    >>> def model():
    ...     with pyro.plate("data", 4, dim=-2):
    ...         pyro.sample("z", dist.Normal(torch.zeros(1, 3), 1.0).to_event(1))
    >>> site = poutine.trace(model).get_trace().nodes["z"]
    >>> array, names = label_site(site, np.zeros((10, 4, 1, 3)), lead=1)
    >>> array.shape, names
    ((10, 4, 3), ['obs', 'z_dim_0'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..inference.importance import PARTICLE_PLATE

__all__ = ["label_group", "label_site"]


def label_site(site: Mapping[str, Any], array: np.ndarray, *, lead: int, event_dim: int | None = None,
               data_plate: str = "data", obs_dim: str = "obs") -> tuple[np.ndarray, list[str]]:
    """``array`` (``lead`` sample axes, then a value of ``site``) with its dims named and size-1
    broadcast dims dropped; returns the array and the names of its axes after the sample axes.

    ``event_dim`` is how many rightmost axes are event dimensions (default: the site
    distribution's; 0 for a log-likelihood). An array whose rank does not match the site gets
    generic names ``<site>_dim_k`` for every axis and keeps its shape.
    """
    fn = site["fn"]
    if event_dim is None:
        event_dim = fn.event_dim
    rank = array.ndim - lead
    # Inside ppdgm's particle plate (a vectorized run of many draws) the batch dims are those
    # right of it; the particle axis is the sample axis in front.
    particle = [f.dim for f in site["cond_indep_stack"] if f.name == PARTICLE_PLATE]
    batch = -particle[0] - 1 if particle else len(fn.batch_shape)
    name = site["name"]
    extra = rank - (batch + event_dim)
    if extra > 0 and all(n == 1 for n in array.shape[lead:lead + extra]):
        # Size-1 axes left of the site's own (a plate deeper than the site reached): drop them.
        array = array.reshape(array.shape[:lead] + array.shape[lead + extra:])
        rank -= extra
    if rank != batch + event_dim or rank < 0:
        return array, [f"{name}_dim_{k}" for k in range(max(rank, 0))]
    plates = {f.dim: (obs_dim if f.name == data_plate else f.name)
              for f in site["cond_indep_stack"]
              if f.vectorized and f.dim is not None and f.name != PARTICLE_PLATE}
    squeeze, names, k = [], [], 0
    for pos in range(rank):
        plate = plates.get(pos - batch) if pos < batch else None
        if plate is not None:
            names.append(plate)
        elif pos < batch and array.shape[lead + pos] == 1:
            squeeze.append(lead + pos)
        else:
            names.append(f"{name}_dim_{k}")
            k += 1
    return (array.squeeze(axis=tuple(squeeze)) if squeeze else array), names


def label_group(values: Mapping[str, np.ndarray], prototype: Any, *, lead: int,
                log_likelihood: bool = False, data_plate: str = "data",
                obs_dim: str = "obs") -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Label every array of one group by its site in ``prototype`` (a trace of the model).

    Returns the arrays and ``dims`` for :func:`ppdgm.diagnostics.arviz_api.dataset`; a name the
    trace does not hold keeps its shape and ArviZ's default names.
    """
    arrays, dims = {}, {}
    for name, array in values.items():
        site = None if prototype is None else prototype.nodes.get(name)
        if site is None or site["type"] != "sample":
            arrays[name] = array
            continue
        arrays[name], dims[name] = label_site(site, array, lead=lead,
                                              event_dim=0 if log_likelihood else None,
                                              data_plate=data_plate, obs_dim=obs_dim)
    return arrays, dims
