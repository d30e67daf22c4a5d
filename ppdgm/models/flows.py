"""Normalizing flows from `zuko <https://zuko.readthedocs.io>`_ as a VAE's prior or guide
(the optional extra ``pip install 'ppdgm[flows]'``), bridged to Pyro by ``pyro.contrib.zuko``.

* A **flow prior** p(z) replaces N(0, I) with a masked autoregressive flow (``"maf"``, affine
  steps) or a neural spline flow (``"nsf"``, monotone rational-quadratic steps) on a standard
  normal base. Scoring z, what the ELBO needs of a prior, is one pass per step; drawing z is
  sequential (z_dim passes per step), which only sampling new data pays.
* A **flow guide** q(z | x) is an inverse autoregressive flow (Kingma et al. 2016): a diagonal
  Gaussian z0 = loc(x) + scale(x) u, then autoregressive steps with the direction reversed, so
  that *drawing* z and scoring that draw is one pass per step, as the ELBO and the
  importance-weighted bounds need of a guide. The encoder's output (loc and raw scale, 2 z_dim
  numbers) is every step's context; ``"iaf"`` has affine steps, ``"nsf"`` spline steps.

Every autoregressive step starts as the identity (the last layer of its network is zero), as
Kingma et al. initialise theirs: an untrained flow prior is N(0, I) and an untrained flow guide
is the plain VAE's Gaussian, so the flows start where the plain VAE does and only add to it.

Both are plain ``torch.nn.Module`` s held by a PyroModule, so their weights appear as param sites
of ``model`` (prior) or ``guide`` (posterior) like the encoder's and decoder's.
"""

from __future__ import annotations

import importlib.util

import torch
from torch.distributions.transforms import AffineTransform
from torch.nn import functional as F

__all__ = ["FLOW_POSTERIORS", "FLOW_PRIORS", "flow_posterior", "flow_prior", "require_zuko"]

FLOW_PRIORS = ("normal", "maf", "nsf")
FLOW_POSTERIORS = ("gaussian", "iaf", "nsf")
_INSTALL = "zuko is not installed; install the extra: pip install 'ppdgm[flows]'"

if importlib.util.find_spec("zuko") is not None:
    from zuko.lazy import LazyTransform as _LazyTransform
else:  # never instantiated without zuko: require_zuko raises first
    _LazyTransform = torch.nn.Module


def require_zuko(what: str) -> None:
    """Raise ``ImportError`` naming ``what`` and the extra to install when zuko is missing.

    Examples:
        >>> require_zuko("prior='maf'")
    """
    if importlib.util.find_spec("zuko") is None:
        raise ImportError(f"{what}: {_INSTALL}")


def flow_prior(kind: str, z_dim: int, *, transforms: int = 2,
               hidden: tuple[int, ...] = (64, 64)) -> torch.nn.Module:
    """An unconditional zuko flow on R^z_dim: ``flow()`` is the distribution.

    Examples:
        >>> flow = flow_prior("maf", 3, hidden=(8,))
        >>> flow().log_prob(torch.zeros(5, 3)).shape
        torch.Size([5])
    """
    require_zuko(f"prior={kind!r}")
    return _autoregressive(kind, z_dim, 0, transforms, hidden)


def flow_posterior(kind: str, z_dim: int, *, transforms: int = 2, hidden: tuple[int, ...] = (64, 64),
                   min_scale: float = 1e-4) -> torch.nn.Module:
    """An inverse autoregressive zuko flow on R^z_dim given the encoder's output ``c``: ``flow(c)``.

    ``c`` has 2 z_dim entries: the base Gaussian's loc, then its raw scale (softplus, floored at
    ``min_scale``); all of it is each autoregressive step's context.

    Examples:
        >>> q = flow_posterior("iaf", 3, hidden=(8,))
        >>> z, log_q = q(torch.zeros(5, 6)).rsample_and_log_prob()
        >>> z.shape, log_q.shape
        (torch.Size([5, 3]), torch.Size([5]))
    """
    require_zuko(f"posterior={kind!r}")
    import zuko

    steps = _autoregressive(kind, z_dim, 2 * z_dim, transforms, hidden)
    # zuko's flows map data to noise: undo the steps (the inverse of their one-pass direction,
    # so that sampling runs each in one pass), then the Gaussian.
    return zuko.flows.Flow([steps.transform.inv, _GaussianStep(z_dim, min_scale)], steps.base)


def _autoregressive(kind: str, z_dim: int, context: int, transforms: int,
                    hidden: tuple[int, ...]) -> torch.nn.Module:
    import zuko

    options = {"transforms": transforms, "hidden_features": tuple(hidden)}
    cls = zuko.flows.MAF if kind in ("maf", "iaf") else zuko.flows.NSF
    flow = cls(z_dim, context, **options)
    for step in flow.transform.transforms:
        last = step.hyper[-1]
        torch.nn.init.zeros_(last.weight)  # each step starts as the identity
        torch.nn.init.zeros_(last.bias)
    return flow


class _GaussianStep(_LazyTransform):
    """z0 -> (z0 - loc(c)) / scale(c): the data-to-noise side of z0 = loc + scale u."""

    def __init__(self, z_dim: int, min_scale: float) -> None:
        super().__init__()
        self.z_dim, self.min_scale = z_dim, min_scale

    def forward(self, c: torch.Tensor) -> AffineTransform:
        loc, raw = c[..., :self.z_dim], c[..., self.z_dim:2 * self.z_dim]
        scale = F.softplus(raw) + self.min_scale
        return _PerPointAffine(-loc / scale, 1 / scale, event_dim=1)


class _PerPointAffine(AffineTransform):
    # torch broadcasts a point's shape against loc's; loc here has the batch's shape already,
    # so a flow would read the batch as part of the event. Each point maps to a point.
    def forward_shape(self, shape: torch.Size) -> torch.Size:
        return shape

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        return shape
