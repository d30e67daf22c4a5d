"""Block Gibbs sampling of a restricted Boltzmann machine: all hidden units given the visible
ones, then all visible units given the hidden ones.

Both conditionals of an RBM factorize (:mod:`ppdgm.models.rbm`), so one sweep draws every unit
of a layer at once: h ~ Bernoulli(sigmoid(c + vW)), then v ~ Bernoulli(sigmoid(b + W h)). The
maths is three pure functions (:func:`sample_hidden`, :func:`sample_visible`,
:func:`gibbs_step`) that :meth:`RBM.sample <ppdgm.models.rbm.RBM.sample>`, contrastive divergence
and AIS share; :class:`RBMGibbs` wraps them as a kernel that ``pyro.infer.MCMC`` runs.
"""

from __future__ import annotations

import pyro
import torch

from ..._validation import check_instance
from ...models._batch import batch_size
from ...models.rbm import HIDDEN, RBM, VISIBLE, GibbsState, gibbs_step, sample_hidden, sample_visible
from .base import DiscreteKernel

# The conditionals belong to the model; they are re-exported here, where samplers look.
__all__ = ["GibbsState", "RBMGibbs", "gibbs_step", "sample_hidden", "sample_visible"]


class RBMGibbs(DiscreteKernel):
    """Block Gibbs on an :class:`~ppdgm.models.rbm.RBM` as a ``pyro.infer.MCMCKernel``.

    The kernel takes the arguments of ``rbm.model``, ``(x=None, num_samples=None)``, through
    ``MCMC.run``:

    * ``observed_visible=False`` (default): ``mcmc.run(None, n)`` samples the joint
      p(v, h) of ``n`` independent points per chain (sites ``"v"`` and ``"h"``); chains start
      at uniformly random v. Pass ``n`` positionally: ``MCMC.run(num_samples=n)`` collides with
      the ``num_samples`` of ``MCMC`` itself (Pyro raises a ``TypeError``).
    * ``observed_visible=True``: ``mcmc.run(x)`` samples h | v = x (site ``"h"``). The
      conditional factorizes, so every sweep is an exact, independent draw.

    With ``chains=C`` every site has a leading dimension ``C`` (``(C, n, V)`` for ``"v"``). The
    kernel reads the RBM's current parameters at every sweep and never changes them.

    :func:`ppdgm.diagnostics.to_inference_data` converts a run, with vectorized chains or
    without (``arviz.from_pyro`` only without). Its ``log_likelihood`` group holds the model's
    observed sites: the ``energy`` factor -E(v, h) (and, with observed v, the constant base
    measure), not a normalized likelihood, since Z is unknown.

    Examples:
        >>> from pyro.infer import MCMC
        >>> from ppdgm.models.rbm import RBM
        >>> rbm = RBM(visible=4, hidden=2)
        >>> mcmc = MCMC(RBMGibbs(rbm, chains=3), num_samples=5, warmup_steps=2, disable_progbar=True)
        >>> mcmc.run(None, 2)
        >>> {k: tuple(v.shape) for k, v in mcmc.get_samples().items()}
        {'h': (5, 3, 2, 2), 'v': (5, 3, 2, 4)}
    """

    def __init__(self, rbm: RBM, chains: int | None = None, observed_visible: bool = False) -> None:
        super().__init__(chains)
        check_instance("rbm", rbm, RBM, "a ppdgm.models.rbm.RBM")
        if not isinstance(observed_visible, bool):
            raise TypeError(f"observed_visible: expected a bool, got {type(observed_visible).__name__}")
        self.rbm = rbm
        # arviz.from_pyro traces kernel.model with the run's arguments.
        self.model = rbm.model
        self.observed_visible = observed_visible
        self._x: torch.Tensor | None = None
        self._n = 1

    def setup(self, warmup_steps: int, *args, **kwargs) -> None:
        # pyro.infer.MCMC runs with validation off; the data's values are checked once here.
        with pyro.validation_enabled(True):
            self._x = self._data(args, kwargs)
        super().setup(warmup_steps, *args, **kwargs)

    def _data(self, args: tuple, kwargs: dict) -> torch.Tensor | None:
        """The observed x (with a chain dimension when chains are vectorized), or None."""
        x, num_samples = _model_args(args, kwargs)
        if x is None and num_samples is None:
            raise ValueError(
                "num_samples: RBMGibbs needs the number of points per chain when x is None; pass "
                "it positionally, mcmc.run(None, n) (MCMC.run keeps the keyword num_samples)"
            )
        n = batch_size(x, num_samples, self.rbm._check_x)
        self._n = n
        if self.observed_visible and x is None:
            raise ValueError("x: RBMGibbs(observed_visible=True) samples h | v = x; pass mcmc.run(x)")
        if not self.observed_visible:
            if x is not None:
                raise ValueError(
                    "x: RBMGibbs(observed_visible=False) samples v itself; pass "
                    "mcmc.run(None, n), or build RBMGibbs(..., observed_visible=True)"
                )
            return None
        weight = self.rbm.weight
        if x.device != weight.device:
            raise ValueError(f"x: on {x.device} but the RBM's parameters are on {weight.device}")
        return x if self.chains is None else x.expand(self.chains, *x.shape)

    def _params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rbm = self.rbm
        return rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach()

    @torch.no_grad()
    def _init_values(self, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
        W, b, c = self._params()
        if self._x is not None:
            return {HIDDEN: sample_hidden(self._x, W, c)}
        prefix = () if self.chains is None else (self.chains,)
        v = torch.bernoulli(W.new_full((*prefix, self._n, self.rbm.visible), 0.5))
        return {VISIBLE: v, HIDDEN: sample_hidden(v, W, c)}

    @torch.no_grad()
    def _sweep(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        W, b, c = self._params()
        if self._x is not None:
            return {HIDDEN: sample_hidden(self._x, W, c)}
        v, h = gibbs_step(params[VISIBLE], W, b, c)
        return {VISIBLE: v, HIDDEN: h}


def _model_args(args: tuple, kwargs: dict) -> tuple[torch.Tensor | None, int | None]:
    # The kernel takes what rbm.model takes, (x=None, num_samples=None), so that arviz.from_pyro
    # can trace the model with the run's own arguments.
    unknown = sorted(set(kwargs) - {"x", "num_samples"})
    if unknown or len(args) > 2:
        raise TypeError(
            "args: RBMGibbs takes rbm.model's arguments (x=None, num_samples=None), got "
            f"{len(args)} positional and keywords {sorted(kwargs)}"
        )
    names = ("x", "num_samples")
    values = dict(zip(names, args))
    for name in kwargs:
        if name in values:
            raise TypeError(f"{name}: given both positionally and by keyword")
    values.update(kwargs)
    return values.get("x"), values.get("num_samples")
