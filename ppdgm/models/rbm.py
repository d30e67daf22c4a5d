"""The restricted Boltzmann machine (binary visible and hidden units) as a Pyro model/guide pair.

An RBM is an undirected model over visible units v in {0, 1}^V and hidden units h in {0, 1}^H
with energy E(v, h) = -v.W.h - b.v - c.h and joint p(v, h) = exp(-E(v, h)) / Z. Summing out h
in closed form gives the free energy F(v) = -b.v - sum_j softplus(c_j + (vW)_j), so that
p(v) = exp(-F(v)) / Z. Both conditionals factorize: p(h | v) = Bernoulli(sigmoid(c + vW)) and
p(v | h) = Bernoulli(sigmoid(b + W h)), which is what block Gibbs sampling
(:mod:`ppdgm.inference.mcmc.rbm_gibbs`) and contrastive divergence
(:mod:`ppdgm.inference.objectives.contrastive_divergence`) rely on.

The maths is written as pure functions of tensors (:func:`energy`, :func:`free_energy`,
:func:`hidden_logits`, :func:`visible_logits`) that work on any device and any leading batch
dimensions; :class:`RBM` holds the parameters and wraps them. Z is exact for small machines
(:meth:`RBM.log_partition_exact`) and estimated by annealed importance sampling otherwise
(:func:`ppdgm.inference.ais.ais_log_partition`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule, pyro_method
from torch import nn

from .._pyro import local_params
from .._validation import check_layer_size, check_positive_int, check_tensor
from ._batch import batch_size, sized_sample
from ._config import resolve_config
from ._params import svi_compatible_
from .capabilities import Capabilities

__all__ = [
    "RBM",
    "RBMConfig",
    "VISIBLE",
    "HIDDEN",
    "ENERGY",
    "MAX_EXACT_STATES",
    "GibbsState",
    "energy",
    "free_energy",
    "gibbs_step",
    "hidden_logits",
    "sample_hidden",
    "sample_visible",
    "visible_logits",
]

VISIBLE = "v"
HIDDEN = "h"
ENERGY = "energy"
#: :meth:`RBM.log_partition_exact` enumerates the smaller layer; above this many states it refuses.
MAX_EXACT_STATES = 2**20
# States enumerated per block: bounds the memory of the exact log Z at 2^14 x (V + H) numbers.
_ENUM_CHUNK = 2**14


@dataclass
class RBMConfig:
    """Size and initialization of an :class:`RBM`.

    Attributes:
        visible: V, the number of visible units (the data are flat binary vectors of length V).
        hidden: H, the number of hidden units.
        init_scale: the standard deviation of the initial weights (biases start at zero);
            small weights start the machine near the uniform distribution, as Hinton's
            practical guide recommends (0.01).

    Examples:
        >>> RBMConfig(visible=6, hidden=3).hidden
        3
        >>> RBMConfig(visible=0)
        Traceback (most recent call last):
        ...
        ValueError: visible: expected an int >= 1, got 0
    """

    visible: int = 16
    hidden: int = 8
    init_scale: float = 0.01

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``TypeError``/``ValueError`` naming the first field that is not valid."""
        check_positive_int("visible", self.visible)
        check_positive_int("hidden", self.hidden)
        check_layer_size("hidden", self.visible, self.hidden)
        scale = self.init_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise TypeError(f"init_scale: expected a number, got {type(scale).__name__}")
        if not (math.isfinite(scale) and 0 <= scale <= 1e3):
            # The initial weights' standard deviation (0.01 is usual); past this, energies overflow.
            raise ValueError(f"init_scale: expected a finite number >= 0 and <= 1000, got {scale!r}")


# ---------------------------------------------------------------------- pure functions


def _check_params(W: object, b: object | None, c: object | None) -> tuple[int, int]:
    # Shape and type checks only: these functions run inside sampling loops, where a check that
    # reads the values (NaN, support) would synchronize with the GPU at every step.
    if not isinstance(W, torch.Tensor):
        raise TypeError(f"W: expected a torch.Tensor, got {type(W).__name__}")
    if W.dim() != 2:
        raise ValueError(f"W: expected shape (visible, hidden), got {tuple(W.shape)}")
    V, H = W.shape
    for name, bias, size in (("b", b, V), ("c", c, H)):
        if bias is None:
            continue
        if not isinstance(bias, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(bias).__name__}")
        if tuple(bias.shape) != (size,):
            raise ValueError(f"{name}: expected shape ({size},), got {tuple(bias.shape)}")
    return V, H


def _check_units(name: str, value: object, size: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {value.dtype}")
    if value.dim() == 0 or value.shape[-1] != size:
        raise ValueError(f"{name}: expected shape (..., {size}), got {tuple(value.shape)}")
    return value


def hidden_logits(v: torch.Tensor, W: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The logits of p(h | v), c + vW, shape ``(..., H)`` for ``v`` of shape ``(..., V)``.

    Examples:
        >>> W = torch.tensor([[1.0, -1.0]])
        >>> hidden_logits(torch.tensor([[1.0], [0.0]]), W, torch.tensor([0.5, 0.0]))
        tensor([[ 1.5000, -1.0000],
                [ 0.5000,  0.0000]])
    """
    V, _ = _check_params(W, None, c)
    _check_units("v", v, V)
    return v @ W + c


def visible_logits(h: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The logits of p(v | h), b + W h, shape ``(..., V)`` for ``h`` of shape ``(..., H)``.

    Examples:
        >>> W = torch.tensor([[1.0, -1.0]])
        >>> visible_logits(torch.tensor([1.0, 1.0]), W, torch.tensor([0.25]))
        tensor([0.2500])
    """
    _, H = _check_params(W, b, None)
    _check_units("h", h, H)
    return h @ W.T + b


class GibbsState(NamedTuple):
    """The state after one sweep.

    Attributes:
        v: the new visible units, drawn from p(v | h).
        h: the hidden units the new v was drawn from (drawn from p(h | v_old)); if v_old was a
            draw from p(v), the pair (v, h) is a draw from the joint p(v, h).
    """

    v: torch.Tensor
    h: torch.Tensor


def sample_hidden(v: torch.Tensor, W: torch.Tensor, c: torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """h ~ p(h | v) = Bernoulli(sigmoid(c + vW)), shape ``(..., H)``.

    Examples:
        >>> W = torch.full((2, 3), 50.0)
        >>> sample_hidden(torch.ones(2), W, torch.zeros(3))  # saturated: always on
        tensor([1., 1., 1.])
    """
    return torch.bernoulli(torch.sigmoid(hidden_logits(v, W, c)), generator=generator)


def sample_visible(h: torch.Tensor, W: torch.Tensor, b: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """v ~ p(v | h) = Bernoulli(sigmoid(b + W h)), shape ``(..., V)``.

    Examples:
        >>> W = torch.full((2, 3), -50.0)
        >>> sample_visible(torch.ones(3), W, torch.zeros(2))  # saturated: always off
        tensor([0., 0.])
    """
    return torch.bernoulli(torch.sigmoid(visible_logits(h, W, b)), generator=generator)


def gibbs_step(v: torch.Tensor, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
               generator: torch.Generator | None = None) -> GibbsState:
    """One block Gibbs sweep from ``v``: h ~ p(h | v), then v_new ~ p(v | h); returns
    ``(v_new, h)``. Leading dimensions of ``v`` (chains, data) are carried through.

    Examples:
        >>> W, b, c = torch.zeros(4, 2), torch.zeros(4), torch.zeros(2)
        >>> v, h = gibbs_step(torch.zeros(3, 4), W, b, c, generator=torch.Generator().manual_seed(0))
        >>> v.shape, h.shape
        (torch.Size([3, 4]), torch.Size([3, 2]))
    """
    h = sample_hidden(v, W, c, generator)
    return GibbsState(sample_visible(h, W, b, generator), h)


def energy(v: torch.Tensor, h: torch.Tensor, W: torch.Tensor, b: torch.Tensor,
           c: torch.Tensor) -> torch.Tensor:
    """E(v, h) = -v.W.h - b.v - c.h, over the broadcast leading dimensions of ``v`` and ``h``.

    Examples:
        >>> W, b, c = torch.ones(2, 1), torch.tensor([0.5, 0.0]), torch.tensor([-1.0])
        >>> energy(torch.tensor([1.0, 1.0]), torch.tensor([1.0]), W, b, c)
        tensor(-1.5000)
    """
    V, H = _check_params(W, b, c)
    _check_units("v", v, V)
    _check_units("h", h, H)
    return -((v @ W) * h).sum(-1) - v @ b - h @ c


def free_energy(v: torch.Tensor, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """F(v) = -b.v - sum_j softplus(c_j + (vW)_j) = -log sum_h exp(-E(v, h)), shape ``v.shape[:-1]``.

    Swapping the layers' roles, ``free_energy(h, W.T, c, b)`` is the hidden layer's free energy.

    Examples:
        >>> W, b, c = torch.zeros(3, 2), torch.zeros(3), torch.zeros(2)
        >>> free_energy(torch.ones(3), W, b, c)  # two free hidden units: -log 4
        tensor(-1.3863)
    """
    V, _ = _check_params(W, b, c)
    _check_units("v", v, V)
    return -(v @ b) - F.softplus(v @ W + c).sum(-1)


def _all_states(width: int, start: int, stop: int, like: torch.Tensor) -> torch.Tensor:
    codes = torch.arange(start, stop, device=like.device).unsqueeze(-1)
    bits = 2 ** torch.arange(width - 1, -1, -1, device=like.device)
    return ((codes & bits) > 0).to(like.dtype)


# ---------------------------------------------------------------------- the model


class RBM(Capabilities, PyroModule):
    """A binary restricted Boltzmann machine: parameters ``weight`` (W, V x H), ``visible_bias``
    (b) and ``hidden_bias`` (c).

    As a Pyro program, :meth:`model` draws v and h from the uniform base measure (Bernoulli
    sites with logits 0) and adds the factor ``-E(v, h)``, so the trace's log density is
    log p(v, h) + log Z - (V + H) log 2: the unnormalized joint exp(-E) up to a constant that
    depends on no parameter. Z itself is never part of the trace (it is what makes an RBM
    undirected), so the model's log density is right for MCMC, importance weights and
    conditional inference, but an ELBO of it is not a bound on log p(v); train with
    :class:`~ppdgm.inference.objectives.contrastive_divergence.ContrastiveDivergence`.
    Data are flat binary vectors, shape ``(N, V)``.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> rbm = RBM(visible=4, hidden=3)
        >>> x = rbm.sample(5, steps=10)
        >>> x.shape, bool(((x == 0) | (x == 1)).all())
        (torch.Size([5, 4]), True)
        >>> log_z = rbm.log_partition_exact()
        >>> all_v = torch.tensor([[float(d) for d in f"{i:04b}"] for i in range(16)])
        >>> round(rbm.log_prob(all_v, log_z).exp().sum().item(), 4)
        1.0
    """

    #: Measurements this model does not support, and why (see :mod:`ppdgm.models.capabilities`).
    unsupported = {
        "likelihood": (
            "an RBM's log p(x) needs its log Z, which importance sampling from the guide does not give; "
            "`ppdgm fit rbm` reports it (exact or AIS)"
        ),
        "posterior": (
            "an RBM's guide is its exact conditional p(h | v), so its importance weights are constant "
            "and there is nothing to report; diagnose a Gibbs run instead (RBMGibbs under "
            "pyro.infer.MCMC, then ppdgm.diagnostics.to_inference_data)"
        ),
    }

    def __init__(self, config: RBMConfig | None = None, **overrides: object) -> None:
        with local_params():  # see ppdgm._pyro: each instance owns its weights
            super().__init__()
            self.config = resolve_config(RBMConfig, config, overrides, ())
            V, H = self.config.visible, self.config.hidden
            self.weight = nn.Parameter(self.config.init_scale * torch.randn(V, H))
            self.visible_bias = nn.Parameter(torch.zeros(V))
            self.hidden_bias = nn.Parameter(torch.zeros(H))
        svi_compatible_(self)

    @property
    def visible(self) -> int:
        return self.config.visible

    @property
    def hidden(self) -> int:
        return self.config.hidden

    @pyro_method
    def energy_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W, b, c), read the way :meth:`model` reads them: as Pyro ``param`` sites, so that
        an objective that calls this instead of running the model (contrastive divergence) is
        still seen by ``pyro.infer.SVI``, which optimizes the param sites it traces.

        Examples:
            >>> W, b, c = RBM(visible=3, hidden=2).energy_parameters()
            >>> W.shape, b.shape, c.shape
            (torch.Size([3, 2]), torch.Size([3]), torch.Size([2]))
        """
        return self.weight, self.visible_bias, self.hidden_bias

    # ------------------------------------------------------------------ Pyro program

    @pyro_method
    def model(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """v ~ Uniform, h ~ Uniform, factor exp(-E(v, h)), in the ``data`` plate; returns v.

        With ``x=None`` the sites are drawn from the uniform base measure and the ``energy``
        factor carries the model: a plain run is an importance sample, not a draw from p (use
        :meth:`sample` or :class:`~ppdgm.inference.mcmc.rbm_gibbs.RBMGibbs` for that). Site values
        may carry extra leading dimensions (chains, particles): the factor broadcasts over them.
        """
        n = batch_size(x, num_samples, self._check_x)
        W, b, c = self.weight, self.visible_bias, self.hidden_bias
        with pyro.plate("data", n):
            v = pyro.sample(VISIBLE, dist.Bernoulli(logits=b.new_zeros(self.visible)).to_event(1),
                            obs=x)
            h = pyro.sample(HIDDEN, dist.Bernoulli(logits=c.new_zeros(self.hidden)).to_event(1))
            pyro.factor(ENERGY, -energy(v, h, W, b, c))
        return v

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """The exact posterior q(h | v) = p(h | v) = Bernoulli(sigmoid(c + vW)); returns h.

        It is computed from the model's own parameters, detached: at the exact posterior the
        ELBO's gradient through q vanishes in expectation, and detaching removes its noise. With
        this guide an importance weight is log p~(v, h) - log q(h | v) = -F(v) - (V + H) log 2 for
        every h, so importance sampling and SVI see the free energy with no variance.
        """
        if x is None:
            raise ValueError("x: the posterior over the hidden units needs data (a tensor), got None")
        n = batch_size(x, num_samples, self._check_x)
        logits = hidden_logits(x, self.weight, self.hidden_bias).detach()
        with pyro.plate("data", n):
            return pyro.sample(HIDDEN, dist.Bernoulli(logits=logits).to_event(1))

    def visible_program(self) -> Callable[[], torch.Tensor]:
        """The Pyro program of the visible units alone: v ~ Uniform, factor exp(-F(v)).

        The hidden units summed out (:func:`free_energy`), so p(v) is its only distribution: the
        target a kernel over binary units (:class:`~ppdgm.inference.mcmc.GibbsWithGradients`,
        :class:`~ppdgm.inference.mcmc.DMALA`) samples, one chain per draw. The weights are read
        detached: sampling moves no parameter.

        Examples:
            >>> program = RBM(visible=4, hidden=2).visible_program()
            >>> pyro.poutine.trace(program).get_trace().nodes[VISIBLE]["value"].shape
            torch.Size([4])
        """
        W, b, c = self.weight.detach(), self.visible_bias.detach(), self.hidden_bias.detach()

        def program() -> torch.Tensor:
            v = pyro.sample(VISIBLE, dist.Bernoulli(logits=b.new_zeros(self.visible)).to_event(1))
            pyro.factor(ENERGY, -free_energy(v, W, b, c))
            return v
        return program

    # ------------------------------------------------------------------ exact quantities

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) for each row of ``v`` (shape ``(..., V)``), differentiable in the parameters.

        Examples:
            >>> RBM(visible=3, hidden=2, init_scale=0.0).free_energy(torch.zeros(2, 3))
            tensor([-1.3863, -1.3863], grad_fn=<SubBackward0>)
        """
        _check_units("v", v, self.visible)
        self._check_values(v)
        return free_energy(v, self.weight, self.visible_bias, self.hidden_bias)

    def log_unnormalized(self, v: torch.Tensor) -> torch.Tensor:
        """log p~(v) = -F(v) = log p(v) + log Z.

        Examples:
            >>> RBM(visible=3, hidden=2, init_scale=0.0).log_unnormalized(torch.ones(3))
            tensor(1.3863, grad_fn=<NegBackward0>)
        """
        return -self.free_energy(v)

    def log_partition_exact(self) -> torch.Tensor:
        """log Z, exactly: enumerates the 2^min(V, H) states of the smaller layer and sums the
        other one out in closed form. Differentiable in the parameters; for small machines only.

        Examples:
            >>> rbm = RBM(visible=3, hidden=2, init_scale=0.0)
            >>> rbm.log_partition_exact()  # 2^5 equally likely states
            tensor(3.4657, grad_fn=<LogsumexpBackward0>)
        """
        V, H = self.visible, self.hidden
        width = min(V, H)
        if 2**width > MAX_EXACT_STATES:
            raise ValueError(
                f"rbm: exact log Z enumerates 2^min(visible={V}, hidden={H}) = 2^{width} states, "
                f"more than {MAX_EXACT_STATES} (2^{int(math.log2(MAX_EXACT_STATES))}); estimate it "
                "with ppdgm.inference.ais.ais_log_partition"
            )
        W, b, c = self.weight, self.visible_bias, self.hidden_bias
        # The smaller layer is enumerated; by symmetry the hidden layer's free energy is the
        # visible one's with W transposed and the biases swapped.
        args = (W, b, c) if V <= H else (W.T, c, b)
        parts = []
        for start in range(0, 2**width, _ENUM_CHUNK):
            states = _all_states(width, start, min(start + _ENUM_CHUNK, 2**width), W)
            parts.append(torch.logsumexp(-free_energy(states, *args), dim=0))
        return torch.logsumexp(torch.stack(parts), dim=0)

    def log_prob(self, v: torch.Tensor, log_z: float | torch.Tensor | None = None) -> torch.Tensor:
        """log p(v) = -F(v) - log Z for each row of binary ``v``; ``log_z=None`` computes the
        exact log Z (small machines only), a number uses it (e.g. an AIS estimate).

        Examples:
            >>> rbm = RBM(visible=3, hidden=2, init_scale=0.0)
            >>> rbm.log_prob(torch.ones(1, 3)).exp()  # uniform over 2^3 visible states
            tensor([0.1250], grad_fn=<ExpBackward0>)
        """
        check_tensor("v", v, floating=True, support="binary", nonempty=True)
        if log_z is None:
            log_z = self.log_partition_exact()
        elif isinstance(log_z, bool) or not isinstance(log_z, (int, float, torch.Tensor)):
            raise TypeError(f"log_z: expected a number, a 0-dim tensor or None, got {type(log_z).__name__}")
        elif isinstance(log_z, torch.Tensor) and log_z.dim() != 0:
            raise ValueError(f"log_z: expected a 0-dim tensor, got shape {tuple(log_z.shape)}")
        return -self.free_energy(v) - log_z

    # ------------------------------------------------------------------ sampling

    @sized_sample(chunked=False)  # chains started from init, one piece
    @torch.no_grad()
    def sample(self, n: int, steps: int = 1000, *, init: torch.Tensor | None = None,
               generator: torch.Generator | None = None, mean: bool = False) -> torch.Tensor:
        """``n`` visible draws, shape ``(n, V)``, after ``steps`` block Gibbs sweeps (h | v, v | h)
        of ``n`` independent chains started at uniformly random states (or at ``init``).
        ``mean=True`` returns the last sweep's p(v = 1 | h) instead of its binary draw.

        The draws are exact only in the limit of many sweeps; how many is enough depends on the
        weights (a trained machine mixes slowly between modes).

        Examples:
            >>> rbm = RBM(visible=5, hidden=2)
            >>> rbm.sample(3, steps=2, generator=torch.Generator().manual_seed(0)).shape
            torch.Size([3, 5])
        """
        check_positive_int("n", n)
        check_positive_int("steps", steps, minimum=0)
        W, b, c = self.weight.detach(), self.visible_bias.detach(), self.hidden_bias.detach()
        if init is None:
            v = torch.bernoulli(W.new_full((n, self.visible), 0.5), generator=generator)
        else:
            check_tensor("init", init, event_shape=(self.visible,), floating=True, support="binary")
            if init.shape[0] != n:
                raise ValueError(f"init: expected {n} rows (n), got shape {tuple(init.shape)}")
            v = init.to(W)
        h = None
        for _ in range(steps):
            v, h = gibbs_step(v, W, b, c, generator=generator)
        if mean:
            h = sample_hidden(v, W, c, generator) if h is None else h
            return torch.sigmoid(visible_logits(h, W, b))
        return v

    def _check_x(self, x: object) -> None:
        from pyro.infer.util import is_validation_enabled

        values = is_validation_enabled()
        check_tensor("x", x, event_shape=(self.visible,), floating=True, finite=values,
                     support="binary" if values else None)

    @staticmethod
    def _check_values(v: torch.Tensor) -> None:
        # A score of no rows, or of NaN or non-binary rows, is a number nobody asked for; the
        # value checks follow Pyro's validation flag, as the model's own do.
        from pyro.infer.util import is_validation_enabled

        values = is_validation_enabled()
        check_tensor("v", v, nonempty=True, finite=values, support="binary" if values else None)
