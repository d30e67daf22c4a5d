"""The variational autoencoder as a Pyro model/guide pair.

p(z) = N(0, I), p(x | z) = Bernoulli(logits = f(z)) or N(f(z), sigma^2), q(z | x) = N(mu(x),
diag(s(x)^2)). ``model`` and ``guide`` are plain Pyro programs, so any ELBO, ``Predictive`` or
``poutine`` handler runs them; the engine trains them like any other pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.contrib.zuko import ZukoToPyro
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule, PyroParam, pyro_method
from pyro.nn.module import to_pyro_module_
from torch.distributions import constraints
from torch.nn import functional as F

from .._pyro import local_params
from .._random import seeded
from .._validation import check_choice, check_int_tuple, check_positive_int, check_tensor
from ._batch import batch_size, decode_latents, sized_sample
from ._config import resolve_config
from ._params import svi_compatible_
from .capabilities import Capabilities
from .flows import FLOW_POSTERIORS, FLOW_PRIORS, flow_posterior, flow_prior, require_zuko
from .nets import ACTIVATIONS, MLP, ConvDecoder, ConvEncoder

__all__ = ["VAE", "VAEConfig", "LATENT", "OBS", "ARCHS", "LIKELIHOODS"]

LATENT = "z"
OBS = "x"
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")

# softplus underflows to exactly 0 for very negative inputs, and a zero scale makes log q(z|x)
# infinite and its gradient NaN; the floor keeps the guide's density finite whatever the encoder
# outputs, and is far below any posterior width a VAE learns.
_MIN_SCALE = 1e-4
# A learned Gaussian std shrinks without bound on pixels the decoder fits exactly (constant MNIST
# borders), sending the likelihood to +inf; the lower bound stops that collapse.
_MIN_OBS_SCALE = 1e-3


@dataclass
class VAEConfig:
    """Architecture and likelihood of a :class:`VAE`.

    Attributes:
        x_shape: event shape of one data point, e.g. ``(784,)``, ``(1, 28, 28)`` or ``(2,)``.
        z_dim: latent dimension.
        hidden: MLP widths of the encoder; the decoder uses them reversed (``arch="mlp"`` only).
        arch: ``"mlp"`` (flattens x) or ``"conv"`` (needs ``x_shape=(C, H, W)``, H and W
            divisible by 4).
        likelihood: ``"bernoulli"`` (binary data) or ``"gaussian"``.
        obs_scale: Gaussian only: a fixed std, or ``None`` to learn one std per dimension
            (bounded below by 1e-3).
        activation: the hidden layers' nonlinearity, one of
            :data:`ppdgm.models.nets.ACTIVATIONS` (Burda et al.'s IWAE networks use ``"tanh"``).
        prior: p(z): ``"normal"`` (N(0, I)), or a zuko flow on a standard normal base:
            ``"maf"`` (masked autoregressive) or ``"nsf"`` (neural spline); needs
            ``ppdgm[flows]``. See :mod:`ppdgm.models.flows`.
        posterior: q(z | x): ``"gaussian"`` (diagonal), or an inverse autoregressive zuko flow
            with the encoder's output as its context: ``"iaf"`` (affine) or ``"nsf"`` (spline).
        flow_transforms, flow_hidden: the flows' number of autoregressive steps and the hidden
            widths of each step's network.

    Examples:
        >>> VAEConfig(x_shape=(784,), z_dim=2).validate()
    """

    x_shape: tuple[int, ...] = (1, 8, 8)
    z_dim: int = 8
    hidden: tuple[int, ...] = (256, 128)
    arch: str = "mlp"
    likelihood: str = "bernoulli"
    obs_scale: float | None = None
    activation: str = "relu"
    prior: str = "normal"
    posterior: str = "gaussian"
    flow_transforms: int = 2
    flow_hidden: tuple[int, ...] = (64, 64)

    def validate(self) -> None:
        """Raise ``TypeError``/``ValueError`` naming the first field that is not valid."""
        x_shape = check_int_tuple("x_shape", self.x_shape, allow_empty=False)
        check_positive_int("z_dim", self.z_dim)
        check_int_tuple("hidden", self.hidden, allow_empty=True)
        check_choice("arch", self.arch, ARCHS)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_choice("prior", self.prior, FLOW_PRIORS)
        check_choice("posterior", self.posterior, FLOW_POSTERIORS)
        check_positive_int("flow_transforms", self.flow_transforms)
        check_int_tuple("flow_hidden", self.flow_hidden, allow_empty=False)
        if self.prior != "normal":
            require_zuko(f"prior={self.prior!r}")
        if self.posterior != "gaussian":
            require_zuko(f"posterior={self.posterior!r}")
        if self.arch == "conv" and (len(x_shape) != 3 or x_shape[1] % 4 or x_shape[2] % 4):
            raise ValueError(
                "x_shape: arch='conv' needs (C, H, W) with H and W divisible by 4, "
                f"got {x_shape}"
            )
        scale = self.obs_scale
        if scale is None:
            return
        if self.likelihood != "gaussian":
            raise ValueError(
                f"obs_scale: only used by likelihood='gaussian', got obs_scale={scale!r} "
                f"with likelihood={self.likelihood!r}"
            )
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise TypeError(f"obs_scale: expected a float or None, got {type(scale).__name__}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"obs_scale: expected a finite positive float, got {scale!r}")


class VAE(Capabilities, PyroModule):
    """A variational autoencoder: ``model`` is p(z) p(x | z), ``guide`` is q(z | x).

    Pyro's ELBOs return the loss of a batch as a **sum** over its data points (the ``data``
    plate has no subsampling scale), so the per-example negative ELBO in nats is
    ``loss / batch_size``. :meth:`sample` returns the likelihood's mean by default: for the
    Bernoulli likelihood a sample grid shows pixel probabilities, not binary draws.

    The encoder and decoder are plain :mod:`ppdgm.models.nets` networks converted to PyroModules,
    so a ``poutine.trace(param_only=True)`` of ``model`` holds exactly the decoder's weights (and
    the learned ``obs_scale``) and one of ``guide`` exactly the encoder's. Those sites are this
    instance's own tensors under module-local parameters (how ppdgm builds and the engine runs it); in
    Pyro's global mode a second VAE's trace would report the first one's weights instead.

    Examples:
        >>> import pyro
        >>> from pyro.infer import Trace_ELBO
        >>> vae = VAE(x_shape=(4,), z_dim=2, hidden=(16,))
        >>> x = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
        >>> loss = Trace_ELBO().loss(vae.model, vae.guide, x)   # summed over the 2 points
        >>> vae.sample(3).shape
        torch.Size([3, 4])
        >>> vae.reconstruct(x).shape
        torch.Size([2, 4])
    """

    def __init__(self, config: VAEConfig | None = None, **overrides: object) -> None:
        # Built under local parameters whatever the process setting: Pyro gives a module its
        # local parameter state only at construction, and sample()/reconstruct() rely on it.
        with local_params():
            super().__init__()
            self.config = _resolve_config(config, overrides)
            cfg = self.config
            x_dim = math.prod(cfg.x_shape)
            if cfg.arch == "conv":
                encoder: torch.nn.Module = ConvEncoder(cfg.x_shape, 2 * cfg.z_dim,
                                                       activation=cfg.activation)
                decoder: torch.nn.Module = ConvDecoder(cfg.z_dim, cfg.x_shape,
                                                       activation=cfg.activation)
            else:
                encoder = MLP(x_dim, cfg.hidden, 2 * cfg.z_dim, activation=cfg.activation)
                decoder = MLP(cfg.z_dim, tuple(reversed(cfg.hidden)), x_dim,
                              activation=cfg.activation)
            # As PyroModules their weights appear as param sites named like named_parameters();
            # a plain submodule's would be named "decoder$$$net.0.weight" instead.
            to_pyro_module_(encoder)
            to_pyro_module_(decoder)
            self.encoder = encoder
            self.decoder = decoder
            if cfg.likelihood == "gaussian" and cfg.obs_scale is None:
                self.obs_scale = PyroParam(
                    torch.ones(cfg.x_shape), constraint=constraints.greater_than(_MIN_OBS_SCALE)
                )
            elif cfg.likelihood == "gaussian":
                self.register_buffer(
                    "obs_scale", torch.full(cfg.x_shape, float(cfg.obs_scale)), persistent=False
                )
            self.register_buffer("_prior_loc", torch.zeros(cfg.z_dim), persistent=False)
            self.register_buffer("_prior_scale", torch.ones(cfg.z_dim), persistent=False)
            flow = {"transforms": cfg.flow_transforms, "hidden": cfg.flow_hidden}
            # zuko's modules stay plain nn.Modules (their metaclass cannot be made a PyroModule);
            # read inside model/guide they still appear as param sites, as PyroModule does for any.
            if cfg.prior != "normal":
                self.prior_flow = flow_prior(cfg.prior, cfg.z_dim, **flow)
            if cfg.posterior != "gaussian":
                self.posterior_flow = flow_posterior(cfg.posterior, cfg.z_dim, min_scale=_MIN_SCALE, **flow)
        svi_compatible_(self)  # so pyro.infer.SVI can step it under module-local params

    @pyro_method
    def model(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """p(z) p(x | z); returns ``x`` (observed) or ``num_samples`` draws when ``x`` is None."""
        n = self._batch_size(x, num_samples)
        with pyro.plate("data", n):
            if self.config.prior == "normal":
                prior = dist.Normal(self._prior_loc, self._prior_scale).to_event(1)
            else:
                prior = ZukoToPyro(self.prior_flow())
            z = pyro.sample(LATENT, prior)
            return pyro.sample(OBS, self._likelihood(z), obs=x)

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """q(z | x): N(loc(x), diag(scale(x)^2)), or a flow given the encoder's output; returns z."""
        if x is None:
            raise ValueError("x: the guide needs a data batch (a tensor), got None")
        n = self._batch_size(x, num_samples)
        if self.config.posterior == "gaussian":
            loc, scale = self._encode(x)
            posterior = dist.Normal(loc, scale).to_event(1)
        else:
            posterior = ZukoToPyro(self.posterior_flow(self._features(x)))
        with pyro.plate("data", n):
            return pyro.sample(LATENT, posterior)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``loc`` and ``scale`` of q(z | x), each of shape ``(batch, z_dim)``.

        For a flow guide, ``loc`` is the flow's image of the base's mean (what
        :meth:`reconstruct` decodes) and ``scale`` the standard deviation of 256 draws.

        Examples:
            >>> vae = VAE(x_shape=(4,), z_dim=2, hidden=(8,))
            >>> loc, scale = vae.encode(torch.zeros(3, 4))
            >>> loc.shape, bool((scale > 0).all())
            (torch.Size([3, 2]), True)
        """
        self._check_x(x)
        with local_params():
            if self.config.posterior == "gaussian":
                return self._encode(x)
            with torch.no_grad(), seeded(0, x.device):
                q = self.posterior_flow(self._features(x))
                return self._flow_centre(q), q.rsample((256,)).std(0)

    @sized_sample()
    @torch.no_grad()
    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """Draw ``n`` points by running ``model`` forwards; shape ``(n, *x_shape)``.

        ``mean=True`` returns the likelihood's mean at each sampled z (Bernoulli probabilities,
        Gaussian means) instead of a draw from it.

        Examples:
            >>> VAE(x_shape=(2,), z_dim=1, hidden=(4,)).sample(5).shape
            torch.Size([5, 2])
        """
        check_positive_int("n", n)
        return self._run_model(n, mean=mean)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of x given the latents z: Bernoulli probabilities or Gaussian means.

        ``z`` has shape ``(..., z_dim)`` (the leading dimensions are flattened into one batch for
        the network); the result ``(..., *x_shape)`` keeps the graph, so a sampler can follow its
        gradient in z (:func:`ppdgm.decoder_log_likelihood` does).

        Examples:
            >>> VAE(x_shape=(1, 8, 8), z_dim=2, hidden=(8,)).decode(torch.zeros(5, 2)).shape
            torch.Size([5, 1, 8, 8])
        """
        return decode_latents(z, self.config.z_dim, self.config.x_shape,
                              lambda flat: self._likelihood(flat).mean)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mean: bool = True) -> torch.Tensor:
        """Decode the posterior mean of z for each row of ``x``; same shape as ``x``.

        Examples:
            >>> vae = VAE(x_shape=(1, 8, 8), arch="conv", z_dim=2)
            >>> vae.reconstruct(torch.zeros(3, 1, 8, 8)).shape
            torch.Size([3, 1, 8, 8])
        """
        self._check_x(x)
        return self._run_model(x.shape[0], mean=mean, x=x)

    def _run_model(self, n: int, *, mean: bool, x: torch.Tensor | None = None) -> torch.Tensor:
        # block(): these helpers must not leak sites into handlers a caller may have active.
        with local_params(), poutine.block():
            model = self.model
            if x is not None:
                model = poutine.condition(model, data={LATENT: self._centre(x)})
            trace = poutine.trace(model).get_trace(None, num_samples=n)
        site = trace.nodes[OBS]
        return site["fn"].mean if mean else site["value"]

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        flat = x if self.config.arch == "conv" else x.reshape(x.shape[0], -1)
        return self.encoder(flat)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, raw = self._features(x).split(self.config.z_dim, dim=-1)
        return loc, F.softplus(raw) + _MIN_SCALE

    def _centre(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.posterior == "gaussian":
            return self._encode(x)[0]
        return self._flow_centre(self.posterior_flow(self._features(x)))

    @staticmethod
    def _flow_centre(q: torch.distributions.Distribution) -> torch.Tensor:
        # The image of the base's mean: deterministic, and one pass for an inverse flow.
        u = q.base.mean.expand(*q.batch_shape, *q.event_shape)
        return q.transform.inv(u)

    def _likelihood(self, z: torch.Tensor) -> dist.TorchDistribution:
        cfg = self.config
        out = self.decoder(z).reshape(*z.shape[:-1], *cfg.x_shape)
        if cfg.likelihood == "bernoulli":
            base = dist.Bernoulli(logits=out)
        else:
            base = dist.Normal(out, self.obs_scale)
        return base.to_event(len(cfg.x_shape))

    def _batch_size(self, x: torch.Tensor | None, num_samples: int | None) -> int:
        return batch_size(x, num_samples, self._check_x)

    def _check_x(self, x: object) -> None:
        # Value checks read the data back from the device, so they follow Pyro's validation flag.
        values = is_validation_enabled()
        bernoulli = self.config.likelihood == "bernoulli"
        check_tensor(
            "x",
            x,
            event_shape=self.config.x_shape,
            floating=True,
            finite=values,
            support="binary" if values and bernoulli else None,
        )
        ref = self._prior_loc
        if x.dtype != ref.dtype:
            raise TypeError(f"x: expected dtype {ref.dtype} (the model's), got {x.dtype}")
        if x.device != ref.device:
            raise ValueError(f"x: expected a tensor on {ref.device} (the model's), got {x.device}")



def _resolve_config(config: VAEConfig | None, overrides: dict[str, object]) -> VAEConfig:
    return resolve_config(VAEConfig, config, overrides, ("x_shape", "hidden", "flow_hidden"))
