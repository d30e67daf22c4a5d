"""A denoising diffusion model (Ho et al. 2020) as a Pyro model/guide pair.

* The **guide** is the forward (noising) chain q(x_1:T | x_0): x_t ~ N(sqrt(1 - beta_t) x_{t-1},
  beta_t I). It has no parameters.
* The **model** is the reverse chain p(x_0:T): x_T ~ N(0, I), then
  x_{t-1} ~ N(mu(x_t, t), sigma_t^2 I) down to the observed x_0 (site ``"x"``). A denoiser
  network predicts the noise (``prediction="eps"``), the clean data (``"x0"``) or the velocity
  v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (``"v"``); mu follows from it through
  the forward posterior q(x_{t-1} | x_t, x_0) (:mod:`ppdgm.models.diffusion_schedule`).

Called as ``model(x)`` / ``guide(x)`` they are the **full chains**, sites ``"x_T"`` ... ``"x_1"``
and ``"x"``: tracing the pair gives the variational bound, and ``Trace_ELBO`` on it is an unbiased
(and noisy) estimate of what :func:`~ppdgm.inference.objectives.denoising.variational_bound`
computes with analytic KLs. ``model()`` with ``x=None`` is ancestral (DDPM) sampling.

Called with ``step=True`` they are **one random step** of the chain, what training needs: the
guide draws t ~ Uniform{1..T} (site ``"t"``) and x_t ~ q(x_t | x_0) in closed form (site
``"x_t"``); the model, replayed on the guide's draws, records its ``"prediction"`` at (x_t, t)
and the ``"target"`` that prediction estimates. Its ``"x_t"`` site is masked: the model's
marginal p(x_t) is intractable and the loss does not need it. The loss of
:class:`~ppdgm.inference.objectives.denoising.DenoisingLoss` is the squared error between the two.

The chain runs on normalized data y = (x - data_shift) / data_scale (images in [0, 1] become
[-1, 1]); the decoder p(x_0 | x_1) and every sample are in the data's own units. Data quantized
to ``levels`` values in [0, 1] get the discretized Gaussian decoder, so that the bound is a
discrete log-likelihood; ``levels=None`` keeps a Gaussian density (2-D data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule, pyro_method
from pyro.nn.module import to_pyro_module_
from torch.distributions import constraints

from .._pyro import local_params
from .._validation import check_choice, check_int_tuple, check_positive_int, check_tensor
from ._batch import batch_size, sized_sample
from ._config import resolve_config
from ._params import svi_compatible_
from .capabilities import Capabilities
from .denoisers import DenoisingMLP, DenoisingUNet
from .diffusion_schedule import SCHEDULES, NoiseSchedule, make_betas
from .discretized import DiscretizedNormal

__all__ = ["Diffusion", "DiffusionConfig", "PREDICTIONS", "VARIANCES", "OBS", "STEP",
           "NOISY", "PREDICTION", "TARGET", "UniformSteps", "chain_site", "diffusion_config_for",
           "quantization_levels", "LEVEL_CANDIDATES"]

PREDICTIONS = ("eps", "x0", "v")
#: Quantizations a dataset in [0, 1] is recognised as: binary, the digits' 17 levels, 8 bits.
LEVEL_CANDIDATES = (2, 17, 256)
VARIANCES = ("small", "large")
DENOISERS = ("mlp", "unet")
_SCALAR = torch.Size()
#: The observed data x_0.
OBS = "x"
#: ``step=True``: the timestep t, x_t, the denoiser's output and what it estimates.
STEP, NOISY, PREDICTION, TARGET = "t", "x_t", "prediction", "target"


def chain_site(t: int) -> str:
    """The site name of x_t in the full chains (t >= 1; x_0 is ``"x"``).

    Examples:
        >>> chain_site(1000)
        'x_1000'
    """
    return f"x_{t}"


@dataclass
class DiffusionConfig:
    """Architecture and process of a :class:`Diffusion` model.

    Attributes:
        x_shape: event shape of one data point: ``(2,)`` or ``(C, H, W)``.
        timesteps: T, the number of noising steps.
        schedule: ``"linear"`` (Ho et al.) or ``"cosine"`` (Nichol & Dhariwal).
        prediction: what the denoiser outputs: ``"eps"``, ``"x0"`` or ``"v"``.
        variance: the reverse steps' sigma_t^2 for t >= 2: ``"small"`` is the forward
            posterior's beta_tilde_t, ``"large"`` is beta_t. The decoder step (t = 1) uses
            beta_tilde_2 either way, as Ho et al.'s code does (beta_tilde_1 is 0).
        denoiser: ``"mlp"`` (:class:`~ppdgm.models.denoisers.DenoisingMLP`, for vectors) or
            ``"unet"`` (:class:`~ppdgm.models.denoisers.DenoisingUNet`, for (C, H, W) images).
        hidden: ``"mlp"``: the hidden widths.
        fourier: ``"mlp"``: sin/cos input features at this many octaves (0: the raw input).
        channels, multipliers: ``"unet"``: the base width and the width multiplier per level.
        time_dim: size of the timestep embedding.
        data_shift, data_scale: the chain diffuses (x - data_shift) / data_scale.
        levels: ``None`` for continuous data (Gaussian decoder), else the number of values
            the data take in [0, 1] (256 for 8-bit images, 2 for binary, 17 for digits).

    Examples:
        >>> DiffusionConfig(x_shape=(1, 28, 28), denoiser="unet", levels=256).validate()
    """

    x_shape: tuple[int, ...] = (2,)
    timesteps: int = 1000
    schedule: str = "linear"
    prediction: str = "eps"
    variance: str = "small"
    denoiser: str = "mlp"
    hidden: tuple[int, ...] = (256, 256, 256)
    fourier: int = 0
    channels: int = 32
    multipliers: tuple[int, ...] = (1, 2, 2)
    time_dim: int = 64
    data_shift: float = 0.0
    data_scale: float = 1.0
    levels: int | None = None

    def validate(self) -> None:
        """Raise ``TypeError``/``ValueError`` naming the first field that is not valid."""
        check_int_tuple("x_shape", self.x_shape)
        # Schedules are buffers of length T; a million steps is already far past any paper's.
        check_positive_int("timesteps", self.timesteps, maximum=2**20)
        check_int_tuple("hidden", self.hidden)
        check_int_tuple("multipliers", self.multipliers)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("prediction", self.prediction, PREDICTIONS)
        check_choice("variance", self.variance, VARIANCES)
        check_choice("denoiser", self.denoiser, DENOISERS)
        if self.denoiser == "unet" and len(self.x_shape) != 3:
            raise ValueError(f"x_shape: denoiser='unet' needs (C, H, W), got {tuple(self.x_shape)}")
        check_positive_int("channels", self.channels, maximum=4096)  # a U-Net's base width
        # Fourier features multiply the input width; the time embedding is a square layer.
        check_positive_int("fourier", self.fourier, minimum=0, maximum=64)
        check_positive_int("time_dim", self.time_dim, minimum=2, maximum=2**14)
        if self.time_dim % 2:
            raise ValueError(f"time_dim: expected an even int, got {self.time_dim}")
        for name in ("data_shift", "data_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name}: expected a finite number, got {value!r}")
        if not self.data_scale > 0:
            raise ValueError(f"data_scale: expected a positive number, got {self.data_scale!r}")
        if self.levels is not None:
            check_positive_int("levels", self.levels, minimum=2)


class Diffusion(Capabilities, PyroModule):
    """A denoising diffusion model: the reverse chain as ``model``, the forward chain as ``guide``.

    ``model(x=None, num_samples=None, step=False, t=None)`` and ``guide`` of the same signature
    (see the module docstring): the full chains by default, one step of them with
    ``step=True`` (``t`` a tensor of timesteps in 1..T, one per point, or ``None`` to draw them).
    ``network`` replaces the denoiser the config would build (any module called as
    ``network(x_t, t)``), e.g. a known optimal denoiser in a test. To compile a network, call
    ``network.compile()`` before passing it: ``torch.compile(network)`` returns a wrapper that
    Pyro cannot turn into a PyroModule.

    Examples:
        >>> from pyro.infer import Trace_ELBO
        >>> d = Diffusion(x_shape=(2,), timesteps=10, hidden=(16,))
        >>> d.sample(4).shape
        torch.Size([4, 2])
        >>> x = torch.randn(3, 2)
        >>> bool(torch.isfinite(torch.tensor(Trace_ELBO().loss(d.model, d.guide, x))))
        True
    """

    #: Measurements this model does not support, and why (see :mod:`ppdgm.models.capabilities`).
    unsupported = {
        "posterior": (
            "a diffusion model's posterior is its fixed forward chain, so there is nothing to diagnose; "
            "`ppdgm evaluate` reports its exact variational bound"
        ),
    }

    def __init__(self, config: DiffusionConfig | None = None, *,
                 network: torch.nn.Module | None = None, **overrides: object) -> None:
        with local_params():
            super().__init__()
            self.config = resolve_config(DiffusionConfig, config, overrides,
                                         ("x_shape", "hidden", "multipliers"))
            cfg = self.config
            self.schedule = NoiseSchedule(make_betas(cfg.schedule, cfg.timesteps))
            denoiser = network
            if denoiser is None:
                if cfg.denoiser == "unet":
                    denoiser = DenoisingUNet(tuple(cfg.x_shape), channels=cfg.channels,
                                             multipliers=tuple(cfg.multipliers), time_dim=cfg.time_dim)
                else:
                    denoiser = _FlatDenoiser(DenoisingMLP(math.prod(cfg.x_shape), tuple(cfg.hidden),
                                                          time_dim=cfg.time_dim, fourier=cfg.fourier),
                                             cfg.x_shape)
            if not isinstance(denoiser, torch.nn.Module):
                raise TypeError(f"network: expected a torch.nn.Module, got {type(denoiser).__name__}")
            to_pyro_module_(denoiser)
            self.denoiser = denoiser
            t = self.schedule
            # sigma_t^2 of the reverse steps, indexed by t; entry 1 is the decoder's.
            var = (t.posterior_variance if cfg.variance == "small" else t.betas).clone()
            var[1] = t.posterior_variance[2] if cfg.timesteps >= 2 else t.betas[1]
            self.register_buffer("reverse_variance", var, persistent=False)
            self.register_buffer("_zero", torch.zeros(()), persistent=False)
        svi_compatible_(self)

    # ---- the chains -------------------------------------------------------------------------

    @pyro_method
    def model(self, x: torch.Tensor | None = None, num_samples: int | None = None, *,
              step: bool = False, t: torch.Tensor | None = None) -> torch.Tensor:
        """The reverse chain (returns x_0), or with ``step=True`` the denoiser's prediction."""
        n = self._batch_size(x, num_samples)
        k, shape = len(self.config.x_shape), (n, *self.config.x_shape)
        with pyro.plate("data", n):
            if step:
                y0 = self._normalize(self._require_x(x))
                t = pyro.sample(STEP, self._uniform_step(n), obs=self._check_t(t, n, y0))
                # x_t comes from the guide (replay); the model's own marginal p(x_t) is not needed.
                y_t = pyro.sample(NOISY, dist.Normal(self._zero, 1.0).expand(shape).to_event(k)
                                  .mask(False))
                out = pyro.deterministic(PREDICTION, self.denoiser(y_t, t.to(y_t.dtype)), event_dim=k)
                pyro.deterministic(TARGET, self.target(y0, y_t, t), event_dim=k)
                return out
            y = pyro.sample(chain_site(self.config.timesteps),
                            dist.Normal(self._zero, 1.0).expand(shape).to_event(k))
            for s in range(self.config.timesteps, 1, -1):
                mean, var = self.reverse_moments(y, self._fill(s, y))
                y = pyro.sample(chain_site(s - 1), dist.Normal(mean, var.sqrt()).to_event(k))
            return pyro.sample(OBS, self.decoder(y).to_event(k), obs=x)

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, num_samples: int | None = None, *,
              step: bool = False, t: torch.Tensor | None = None) -> torch.Tensor:
        """The forward chain from x_0 (returns x_T), or with ``step=True`` one draw of x_t."""
        n = self._batch_size(self._require_x(x), num_samples)
        y = self._normalize(x)
        k, sched = len(self.config.x_shape), self.schedule
        with pyro.plate("data", n):
            if step:
                t = pyro.sample(STEP, self._uniform_step(n), obs=self._check_t(t, n, y))
                loc = sched.at("sqrt_alpha_bar", t, y) * y
                return pyro.sample(NOISY, dist.Normal(loc, sched.at("sqrt_one_minus_alpha_bar", t, y)
                                                      .expand_as(loc)).to_event(k))
            for s in range(1, self.config.timesteps + 1):
                beta = sched.betas[s].to(y.dtype)
                y = pyro.sample(chain_site(s), dist.Normal((1 - beta).sqrt() * y, beta.sqrt()
                                                           .expand_as(y)).to_event(k))
            return y

    # ---- the maths of one reverse step -------------------------------------------------------

    def predict(self, y_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The denoiser's (x0_hat, eps_hat) at (x_t, t), whatever it predicts; normalized units.

        Examples:
            >>> d = Diffusion(x_shape=(2,), timesteps=10, hidden=(8,))
            >>> [v.shape for v in d.predict(torch.zeros(3, 2), torch.full((3,), 5))]
            [torch.Size([3, 2]), torch.Size([3, 2])]
        """
        out = self.denoiser(y_t, t.to(y_t.dtype))
        a = self.schedule.at("sqrt_alpha_bar", t, y_t)
        s = self.schedule.at("sqrt_one_minus_alpha_bar", t, y_t)
        kind = self.config.prediction
        if kind == "eps":
            return (y_t - s * out) / a, out
        if kind == "x0":
            return out, (y_t - a * out) / s
        return a * y_t - s * out, a * out + s * y_t  # v = a eps - s x0

    def target(self, y0: torch.Tensor, y_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the denoiser should output at (x_t, t) given the clean y0 (normalized units)."""
        a = self.schedule.at("sqrt_alpha_bar", t, y_t)
        s = self.schedule.at("sqrt_one_minus_alpha_bar", t, y_t)
        if self.config.prediction == "x0":
            return y0
        eps = (y_t - a * y0) / s
        return eps if self.config.prediction == "eps" else a * eps - s * y0

    def reverse_moments(self, y_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mu(x_t, t) and sigma_t^2 of p(x_{t-1} | x_t), normalized units.

        Examples:
            >>> d = Diffusion(x_shape=(2,), timesteps=10, hidden=(8,))
            >>> [v.shape for v in d.reverse_moments(torch.zeros(3, 2), torch.full((3,), 5))]
            [torch.Size([3, 2]), torch.Size([3, 1])]
        """
        x0, _ = self.predict(y_t, t)
        return self.posterior_mean(x0, y_t, t), _at(self.reverse_variance, t, y_t)

    def posterior_mean(self, y0: torch.Tensor, y_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The mean of the forward posterior q(x_{t-1} | x_t, x_0)."""
        return (self.schedule.at("posterior_coef_x0", t, y_t) * y0
                + self.schedule.at("posterior_coef_xt", t, y_t) * y_t)

    def decoder(self, y_1: torch.Tensor) -> dist.Distribution:
        """p(x_0 | x_1) in the data's units (batch-shaped; ``.to_event`` it for a whole point)."""
        cfg = self.config
        mean, var = self.reverse_moments(y_1, self._fill(1, y_1))
        loc, scale = cfg.data_shift + cfg.data_scale * mean, cfg.data_scale * var.sqrt().expand_as(mean)
        if cfg.levels is None:
            return dist.Normal(loc, scale)
        return DiscretizedNormal(loc, scale, cfg.levels)

    @sized_sample()
    @torch.no_grad()
    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """Draw ``n`` points by running the reverse chain (DDPM); shape ``(n, *x_shape)``.

        ``mean=True`` returns the decoder's noise-free output at the last step (the mean, or for
        quantized data the grid value nearest it), as sample grids show; ``False`` a draw.
        :mod:`ppdgm.inference.sampling.diffusion` has faster loops, DDIM and a progress bar.
        """
        check_positive_int("n", n)
        with local_params(), poutine.block():
            trace = poutine.trace(self.model).get_trace(None, num_samples=n)
        if not mean:
            return trace.nodes[OBS]["value"]
        decoder = self.decoder(trace.nodes[chain_site(1)]["value"])
        return decoder.rounded_loc if isinstance(decoder, DiscretizedNormal) else decoder.loc

    # ---- helpers -----------------------------------------------------------------------------

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """x in the data's units to the chain's: (x - data_shift) / data_scale."""
        return self._normalize(x)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """The chain's units back to the data's."""
        return self.config.data_shift + self.config.data_scale * y

    def to_data(self, y: torch.Tensor) -> torch.Tensor:
        """A sampler's final y in the data's units; for quantized data, the nearest grid value.

        Examples:
            >>> d = Diffusion(x_shape=(2,), timesteps=10, hidden=(8,), levels=3)
            >>> d.to_data(torch.tensor([[0.2, 0.8]])).tolist()
            [[0.0, 1.0]]
        """
        x = self.denormalize(y)
        levels = self.config.levels
        if levels is None:
            return x
        step = 1 / (levels - 1)
        return (x / step).round().clamp(0, levels - 1) * step

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.config.data_shift) / self.config.data_scale

    def _uniform_step(self, n: int) -> dist.Distribution:
        return UniformSteps(self.config.timesteps, self._zero).expand([n])

    def _fill(self, t: int, like: torch.Tensor) -> torch.Tensor:
        return torch.full((like.shape[0],), t, dtype=torch.long, device=like.device)

    def _check_t(self, t: torch.Tensor | None, n: int, like: torch.Tensor) -> torch.Tensor | None:
        if t is None:
            return None
        if not isinstance(t, torch.Tensor) or t.shape != (n,) or t.is_floating_point():
            raise ValueError(f"t: expected None or an integer tensor of shape ({n},), got {t!r}")
        if bool((t < 1).any()) or bool((t > self.config.timesteps).any()):
            raise ValueError(f"t: expected timesteps in 1..{self.config.timesteps}, got {t.tolist()}")
        return t.to(like.device)

    def _require_x(self, x: torch.Tensor | None) -> torch.Tensor:
        if x is None:
            raise ValueError("x: the forward chain (and step=True) needs data, got None")
        return x

    def _batch_size(self, x: torch.Tensor | None, num_samples: int | None) -> int:
        return batch_size(x, num_samples, self._check_x)

    def _check_x(self, x: object) -> None:
        values = is_validation_enabled()
        levels = self.config.levels
        check_tensor("x", x, event_shape=self.config.x_shape, floating=True, finite=values,
                     support="unit" if values and levels is not None else None)
        if values and levels is not None:
            # The discretized decoder scores the grid's bins: a value between them is no datum.
            scaled = x * (levels - 1)
            if bool(((scaled - scaled.round()).abs() > 1e-3).any()):
                raise ValueError(f"x: the model was built for data quantized to {levels} levels in "
                                 "[0, 1] (multiples of 1/(levels - 1)); got values between them")
        if x.dtype != self._zero.dtype:
            raise TypeError(f"x: expected dtype {self._zero.dtype} (the model's), got {x.dtype}")
        if x.device != self._zero.device:
            raise ValueError(f"x: expected a tensor on {self._zero.device} (the model's), got {x.device}")


class UniformSteps(dist.TorchDistribution):
    """The uniform distribution on the timesteps {1, ..., T}.

    ``Categorical`` would do, but its sampler (``torch.multinomial`` over T + 1 classes) costs
    more than a small denoiser's training step; this one draws with ``torch.randint``.

    Examples:
        >>> d = UniformSteps(10, torch.zeros(())).expand([3])
        >>> d.sample().shape, round(d.log_prob(torch.tensor(4)).exp().item(), 3)
        (torch.Size([3]), 0.1)
    """

    arg_constraints: dict = {}
    has_enumerate_support = False

    def __init__(self, timesteps: int, like: torch.Tensor, batch_shape: torch.Size = _SCALAR,
                 validate_args: bool | None = None) -> None:
        self.timesteps, self._like = timesteps, like
        super().__init__(torch.Size(batch_shape), validate_args=validate_args)

    @property
    def support(self) -> constraints.Constraint:
        return constraints.integer_interval(1, self.timesteps)

    def expand(self, batch_shape: torch.Size, _instance: object = None) -> UniformSteps:
        return UniformSteps(self.timesteps, self._like, torch.Size(batch_shape), validate_args=False)

    def sample(self, sample_shape: torch.Size = _SCALAR) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        return torch.randint(1, self.timesteps + 1, shape, device=self._like.device)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        inside = (value >= 1) & (value <= self.timesteps)
        return torch.where(inside, -math.log(self.timesteps), -math.inf).to(self._like.dtype)


def _at(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return values[t].to(x.dtype).reshape(*t.shape, *([1] * (x.dim() - t.dim())))


class _FlatDenoiser(torch.nn.Module):
    """An MLP denoiser on flattened points of any event shape."""

    def __init__(self, net: torch.nn.Module, x_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net, self.x_shape = net, tuple(x_shape)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], -1), t).reshape(x.shape)


def quantization_levels(x: torch.Tensor) -> int | None:
    """The fewest of :data:`LEVEL_CANDIDATES` values in [0, 1] that ``x`` lies on, else ``None``.

    Examples:
        >>> quantization_levels(torch.tensor([0.0, 0.5, 1.0])), quantization_levels(torch.rand(9))
        (17, None)
    """
    if bool((x < 0).any()) or bool((x > 1).any()):
        return None
    for levels in LEVEL_CANDIDATES:
        scaled = x * (levels - 1)
        if bool(((scaled - scaled.round()).abs() < 1e-3).all()):
            return levels
    return None


def diffusion_config_for(dataset: Any, **overrides: Any) -> DiffusionConfig:
    """The default :class:`DiffusionConfig` for a dataset, with ``overrides`` applied.

    ``dataset`` is a :class:`ppdgm.data.Dataset` (or anything with its ``train``,
    ``event_shape`` and ``support``).

    Images get the U-Net and the [0, 1] -> [-1, 1] map; quantized data (binary, digits, 8-bit)
    get the discretized decoder. Other data are standardized by the training set's mean and
    standard deviation (one number each, over all coordinates), keep a Gaussian decoder, and get
    the MLP with 8 octaves of Fourier input features.

    Examples:
        >>> from ppdgm.data import load_dataset
        >>> cfg = diffusion_config_for(load_dataset("digits"))
        >>> cfg.denoiser, cfg.levels, cfg.data_shift, cfg.data_scale
        ('unet', 17, 0.5, 0.5)
    """
    x = dataset.train
    images = x.dim() == 4
    defaults: dict[str, Any] = {"x_shape": tuple(dataset.event_shape),
                                "denoiser": "unet" if images else "mlp",
                                "time_dim": 128 if images else 64,
                                # Sharp, close modes need the input's high frequencies (grid25:
                                # 12% of samples within 3 std at 15,000 steps without, 97% with).
                                "fourier": 0 if images else 8}
    levels = quantization_levels(x) if dataset.support in ("binary", "unit") else None
    if dataset.support in ("binary", "unit"):
        defaults.update(data_shift=0.5, data_scale=0.5, levels=levels)
    else:
        defaults.update(data_shift=round(x.mean().item(), 6), data_scale=round(x.std().item(), 6))
    defaults.update({k: v for k, v in overrides.items() if v is not None})
    cfg = DiffusionConfig(**defaults)
    cfg.validate()
    return cfg
