"""Normalizing flows from `zuko <https://zuko.readthedocs.io>`_ as a VAE's prior or guide
(the optional extra ``pip install 'ppdgm[flows]'``), bridged to Pyro by ``pyro.contrib.zuko``.

* A **flow prior** p(z) replaces N(0, I) with a masked autoregressive flow (``"maf"``, affine
  steps) or a neural spline flow (``"nsf"``, monotone rational-quadratic steps) on a standard
  normal base. Scoring z, what the ELBO needs of a prior, is one pass per step; drawing z is
  sequential (z_dim passes per step), which only sampling new data pays.
* A **flow guide** q(z | x) is an inverse autoregressive flow (Kingma et al. 2016): the same
  autoregressive steps with the direction reversed, so that *drawing* z and scoring that draw
  is one pass per step, as the ELBO and the importance-weighted bounds need of a guide. The
  encoder's output is the flow's context; ``"iaf"`` has affine steps, ``"nsf"`` spline steps.

Both are plain ``torch.nn.Module`` s held by a PyroModule, so their weights appear as param sites
of ``model`` (prior) or ``guide`` (posterior) like the encoder's and decoder's.
"""

from __future__ import annotations

import importlib.util

import torch

__all__ = ["FLOW_POSTERIORS", "FLOW_PRIORS", "flow_posterior", "flow_prior", "require_zuko"]

FLOW_PRIORS = ("normal", "maf", "nsf")
FLOW_POSTERIORS = ("gaussian", "iaf", "nsf")
_INSTALL = "zuko is not installed; install the extra: pip install 'ppdgm[flows]'"


def require_zuko(what: str) -> None:
    """Raise ``ImportError`` naming ``what`` and the extra to install when zuko is missing.

    Example:
        >>> require_zuko("prior='maf'")
    """
    if importlib.util.find_spec("zuko") is None:
        raise ImportError(f"{what}: {_INSTALL}")


def flow_prior(kind: str, z_dim: int, *, transforms: int = 2,
               hidden: tuple[int, ...] = (64, 64)) -> torch.nn.Module:
    """An unconditional zuko flow on R^z_dim: ``flow()`` is the distribution.

    Example:
        >>> flow = flow_prior("maf", 3, hidden=(8,))
        >>> flow().log_prob(torch.zeros(5, 3)).shape
        torch.Size([5])
    """
    require_zuko(f"prior={kind!r}")
    return _autoregressive(kind, z_dim, 0, transforms, hidden)


def flow_posterior(kind: str, z_dim: int, context: int, *, transforms: int = 2,
                   hidden: tuple[int, ...] = (64, 64)) -> torch.nn.Module:
    """An inverse autoregressive zuko flow on R^z_dim given a ``context`` vector: ``flow(c)``.

    Example:
        >>> q = flow_posterior("iaf", 3, 4, hidden=(8,))
        >>> z, log_q = q(torch.zeros(5, 4)).rsample_and_log_prob()
        >>> z.shape, log_q.shape
        (torch.Size([5, 3]), torch.Size([5]))
    """
    require_zuko(f"posterior={kind!r}")
    import zuko

    forward = _autoregressive(kind, z_dim, context, transforms, hidden)
    # zuko's flow maps data to noise with the autoregressive (one-pass) direction; inverting it
    # puts the one-pass direction on the sampling side, which is what makes it an IAF.
    return zuko.flows.Flow(forward.transform.inv, forward.base)


def _autoregressive(kind: str, z_dim: int, context: int, transforms: int,
                    hidden: tuple[int, ...]) -> torch.nn.Module:
    import zuko

    options = {"transforms": transforms, "hidden_features": tuple(hidden)}
    if kind in ("maf", "iaf"):
        return zuko.flows.MAF(z_dim, context, **options)
    return zuko.flows.NSF(z_dim, context, **options)
