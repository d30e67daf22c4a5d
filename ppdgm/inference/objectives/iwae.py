"""The importance-weighted autoencoder bound (Burda, Grosse and Salakhutdinov, 2015).

IWAE_K = sum_i log (1/K) sum_k p(x_i, z_ik) / q(z_ik | x_i), z_ik ~ q(z | x_i): a lower bound
of log p(x) for every K, equal to the ELBO at K = 1 and tightening monotonically (in
expectation) towards log p(x) as K grows. Its gradient is taken by reparameterization.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from pyro.infer import ELBO
from pyro.infer.enum import get_importance_trace

from ..._validation import check_positive_int
from ..importance import log_weights, plate_nesting

__all__ = ["IWAE"]


class IWAE(ELBO):
    """The per-data-point importance-weighted bound with K particles, as a Pyro ``ELBO``.

    Like Pyro's ELBOs the loss is the *negative* bound summed over the batch, so ``SVI``, the
    engine and several players all accept it (it has ``differentiable_loss``). Every latent site
    must be reparameterizable and lie in the plate named ``data_plate``.

    With ``num_particles=1`` it is the usual single-sample ELBO (the same value as
    ``Trace_ELBO`` on the same draw).

    Args:
        num_particles: K, the number of importance samples per data point.
        data_plate: the name of the plate over data points.
        max_plate_nesting: plate dimensions of the model; found on the first call when omitted.

    Examples:
        >>> import pyro
        >>> from ppdgm.models import VAE
        >>> vae = VAE(x_shape=(4,), z_dim=2, hidden=(8,))
        >>> x = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
        >>> loss = IWAE(num_particles=50).differentiable_loss(vae.model, vae.guide, x)
        >>> loss.shape, loss.requires_grad
        (torch.Size([]), True)
    """

    def __init__(self, num_particles: int = 50, data_plate: str = "data",
                 max_plate_nesting: float = float("inf")) -> None:
        check_positive_int("num_particles", num_particles)
        if not isinstance(data_plate, str) or not data_plate:
            raise ValueError(f"data_plate: expected a plate name, got {data_plate!r}")
        if max_plate_nesting != float("inf"):
            check_positive_int("max_plate_nesting", max_plate_nesting, minimum=0)
        super().__init__(num_particles=num_particles, max_plate_nesting=max_plate_nesting,
                         vectorize_particles=True)
        self.data_plate = data_plate

    def differentiable_loss(self, model: Callable[..., Any], guide: Callable[..., Any],
                            *args: Any, **kwargs: Any) -> torch.Tensor:
        """The negative IWAE bound of the batch, differentiable in every parameter."""
        if self.max_plate_nesting == float("inf"):
            self.max_plate_nesting = plate_nesting(model, guide, *args, **kwargs)
        lw, scale = log_weights(
            model, guide, *args, num_particles=self.num_particles,
            max_plate_nesting=int(self.max_plate_nesting), data_plate=self.data_plate,
            require_reparam=True, **kwargs,
        )
        bound = torch.logsumexp(lw, dim=0) - math.log(self.num_particles)
        return -scale * bound.sum()

    def _get_trace(self, model: Callable[..., Any], guide: Callable[..., Any], args: tuple,
                   kwargs: dict) -> tuple[Any, Any]:
        # The ELBO template's hook (used by Pyro's trace helpers); the bound itself does not
        # go through it.
        return get_importance_trace("flat", self.max_plate_nesting, model, guide, args, kwargs)

    def loss(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
             **kwargs: Any) -> float:
        """The negative IWAE bound of the batch as a float."""
        with torch.no_grad():
            return float(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                       **kwargs: Any) -> float:
        """The loss, after backpropagating it into every parameter that requires a gradient."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        if loss.requires_grad:
            loss.backward()
        return float(loss.detach())
