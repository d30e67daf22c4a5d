"""What every ppdgm MCMC kernel shares: the state it carries, the flip statistics it reports.

A ppdgm kernel is a :class:`pyro.infer.mcmc.MCMCKernel`, so ``pyro.infer.MCMC`` runs it and
``arviz.from_pyro`` converts the run. Two ppdgm conventions sit on top:

* **Vectorized chains.** A kernel built with ``chains=C`` runs C independent chains as one batch
  dimension (the leftmost dimension of every site's value), which is how chains run fast on a
  GPU. ``MCMC`` then sees one chain whose draws have a leading ``C`` axis;
  :func:`ppdgm.diagnostics.to_inference_data` folds that axis into ArviZ's ``chain`` dimension.
  ``chains=None`` (the default) keeps site shapes as the model makes them, and
  ``MCMC(..., num_chains=N)`` runs N chains the usual Pyro way.
* **Flip statistics.** Gibbs moves always accept, so instead of an acceptance rate a discrete kernel
  reports, per site, the fraction of elements whose value changed in a sweep (its *flip rate*);
  a flip rate near zero says the chain is stuck.
* **Draws in their own dtype, diagnostics on floats.** Inside ``MCMC`` draws are stored as
  floating-point tensors (whole numbers for categorical sites), because Pyro's own ESS/R-hat
  (``MCMC.summary``, ``MCMC.diagnostics``) fail on integer tensors. The kernel hands the model each
  site in its own dtype, records the dtypes in :attr:`DiscreteKernel.site_dtypes`, and
  :func:`typed_samples` (which :func:`ppdgm.diagnostics.to_inference_data` uses) gives the draws
  back in them, so a model that indexes a tensor with a ``Categorical`` draw gets its
  log-likelihood computed as it was sampled.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

import torch
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel

from ..._validation import check_positive_int

__all__ = ["DiscreteKernel", "SweepInfo", "flip_rates", "typed_samples"]


class SweepInfo(NamedTuple):
    """What one sweep did.

    Attributes:
        flip_rate: per site, the fraction of its elements (over chains and data) that changed.
    """

    flip_rate: dict[str, float]


def flip_rates(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> SweepInfo:
    """The :class:`SweepInfo` of a move from ``old`` to ``new`` site values."""
    return SweepInfo({name: (new[name] != old[name]).float().mean().item() for name in new})


class DiscreteKernel(MCMCKernel):
    """Base of ppdgm's kernels over discrete sites: initial values, vectorized chains, flip rates.

    Subclasses implement :meth:`setup` (calling ``super().setup``), :meth:`_init_values` and
    :meth:`_sweep`; :meth:`sample` records the flip rates and counts the steps.

    Args:
        chains: run this many chains as a leading batch dimension (``None``: no chain dimension).
    """

    #: Discrete sites live in their own space: nothing to transform.
    transforms: dict = {}

    def __init__(self, chains: int | None = None) -> None:
        super().__init__()
        self.chains = None if chains is None else check_positive_int("chains", chains)
        self._initial_params: dict[str, torch.Tensor] | None = None
        self._warmup_steps = 0
        self._t = 0
        self._flip_sums: dict[str, torch.Tensor] = {}
        self._flip_count = 0
        self._logged: OrderedDict = OrderedDict()
        self._dtypes: dict[str, torch.dtype] = {}

    @property
    def vectorized_chains(self) -> int | None:
        """The number of chains carried as a batch dimension (``None`` when there is none)."""
        return self.chains

    @staticmethod
    def check_data(args: tuple, kwargs: dict) -> None:
        """Refuse data holding NaN or Inf, naming the argument (``args[0]``, a keyword)."""
        for where, value in [*((f"args[{i}]", a) for i, a in enumerate(args)), *kwargs.items()]:
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(
                    torch.isfinite(value).all()):
                # NaN log-densities compare false with everything: the chain would never move.
                raise ValueError(f"{where}: the data hold NaN or Inf; a Gibbs update cannot weigh "
                                 "candidates against them (drop or impute those entries)")

    def setup(self, warmup_steps: int, *args, **kwargs) -> None:
        self.check_data(args, kwargs)
        self._warmup_steps = warmup_steps
        self._t = 0
        self._flip_sums, self._flip_count, self._logged = {}, 0, OrderedDict()
        given = self._initial_params
        init = self._init_values(args, kwargs) if given is None else given
        self._dtypes = {name: value.dtype for name, value in init.items()}
        self._initial_params = _floats(init)

    @property
    def site_dtypes(self) -> dict[str, torch.dtype]:
        """Each sampled site's own dtype (``MCMC`` stores its draws as floats)."""
        return dict(self._dtypes)

    @property
    def initial_params(self) -> dict[str, torch.Tensor]:
        if self._initial_params is None:
            raise RuntimeError("initial_params: call setup() (or run under pyro.infer.MCMC) first")
        return self._initial_params

    @initial_params.setter
    def initial_params(self, params: dict[str, torch.Tensor]) -> None:
        self._initial_params = dict(params)

    def sample(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        params = {k: v.to(self._dtypes[k]) if k in self._dtypes else v for k, v in params.items()}
        new = self._sweep(params)
        self._t += 1
        if self._t > self._warmup_steps:
            # Counted on the device and read back only when reported: no sync per sweep.
            self._flip_count += 1
            for name, value in new.items():
                changed = torch.count_nonzero(value != params[name]) / value.numel()
                total = self._flip_sums.get(name)
                self._flip_sums[name] = changed if total is None else total + changed
        return _floats(new)

    @property
    def flip_rates(self) -> dict[str, float]:
        """Per site, the mean fraction of elements changed per sweep since warm-up ended."""
        return {name: total.item() / self._flip_count for name, total in self._flip_sums.items()}

    def cleanup(self) -> None:
        # A second chain run sequentially by MCMC must start from its own draw, not this one's.
        self._initial_params = None

    def logging(self) -> OrderedDict:
        # MCMC asks after every sweep; refreshing now and then keeps the progress bar cheap.
        if self._flip_count and (not self._logged or self._t % 50 == 0):
            rates = self.flip_rates
            self._logged = OrderedDict((f"flip {name}", f"{rate:.3f}") for name, rate in rates.items())
        return self._logged

    def diagnostics(self) -> dict:
        # arviz.from_pyro reads "divergences"; a Gibbs move never diverges.
        return {"flip rate": self.flip_rates, "divergences": []}

    # ------------------------------------------------------------------ for subclasses

    def _init_values(self, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _sweep(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError


def _floats(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v if v.is_floating_point() else v.to(torch.get_default_dtype()) for k, v in values.items()}


def typed_samples(mcmc: Any, *, group_by_chain: bool = False) -> dict[str, torch.Tensor]:
    """``mcmc.get_samples(...)`` with every site back in the dtype its kernel sampled it in.

    Kernels that record ``site_dtypes`` (every ppdgm kernel) have their floating-point draws cast
    back (a ``Categorical`` site to ``int64``); other kernels' draws are returned as they are.

    Examples:
        >>> import pyro, pyro.distributions as dist
        >>> from pyro.infer import MCMC
        >>> from ppdgm.inference.mcmc import Gibbs
        >>> def model():
        ...     pyro.sample("k", dist.Categorical(torch.ones(3)))
        >>> mcmc = MCMC(Gibbs(model), num_samples=5, warmup_steps=0, disable_progbar=True)
        >>> mcmc.run()
        >>> mcmc.get_samples()["k"].dtype, typed_samples(mcmc)["k"].dtype
        (torch.float32, torch.int64)
    """
    samples = mcmc.get_samples(group_by_chain=group_by_chain)
    dtypes = getattr(mcmc.kernel, "site_dtypes", None) or {}
    return {name: value.to(dtypes[name]) if name in dtypes else value
            for name, value in samples.items()}
