"""Autoregressive models of binary images, NADE and MADE, as Pyro programs with one site.

p(x) = prod_d p(x_d | x_<d), pixels in raster order. Both networks output all D conditional
logits from one pass over x, logit d depending only on x_<d, so log p(x) is exact and costs one
pass; a sample is drawn by ancestral sampling, one pixel after another (D passes). The Pyro model
is a single ``x`` site whose distribution is
:class:`~ppdgm.models.autoregressive.AutoregressiveBinary`; there are no latents, so the guide is
empty and ``Trace_ELBO`` is exactly -log p(x), which the engine minimizes.

* **NADE** (Larochelle and Murray, 2011): h_d = sigmoid(c + W[:, <d] x_<d), shared weights W
  for every conditional, p(x_d = 1 | x_<d) = sigmoid(b_d + V_d . h_d). The running sums over d
  are one cumulative sum, so the pass costs O(D H) per image, like a one-layer MLP, but it holds
  a (batch, H, D) tensor.
* **MADE** (Germain et al., 2015): an MLP whose weight matrices are masked so that output d sees
  only inputs before d: every hidden unit gets a degree m in [1, D - 1] (drawn with the seed),
  may see inputs with index <= m and be seen by outputs with index > m (indices from 1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pyro
import torch
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule, pyro_method
from torch import nn

from .._pyro import local_params
from .._validation import check_choice, check_int_tuple, check_positive_int, check_tensor
from ._batch import batch_size, sized_sample
from ._params import svi_compatible_
from .autoregressive import AutoregressiveBinary
from .capabilities import Capabilities

__all__ = ["AutoregressiveConfig", "NADE", "MADE", "ARCHITECTURES", "OBS"]

OBS = "x"
ARCHITECTURES: tuple[str, ...] = ("nade", "made")


@dataclass
class AutoregressiveConfig:
    """``x_shape`` of one image, ``hidden`` widths (NADE: one), ``seed`` of MADE's degrees.

    ``direct`` (MADE only) adds a masked linear map from the inputs straight to the outputs
    (logit d gets sum_{j<d} A_dj x_j, a fully visible sigmoid belief net beside the hidden
    layers).
    """

    x_shape: tuple[int, ...] = (1, 8, 8)
    hidden: tuple[int, ...] = (500,)
    seed: int = 0
    direct: bool = False

    @property
    def x_dim(self) -> int:
        return int(torch.Size(self.x_shape).numel())

    def validate(self, architecture: str) -> None:
        self.x_shape = check_int_tuple("x_shape", self.x_shape, allow_empty=False)
        self.hidden = check_int_tuple("hidden", self.hidden, allow_empty=False)
        check_positive_int("seed", self.seed, minimum=0)
        if architecture == "nade" and len(self.hidden) != 1:
            raise ValueError(f"hidden: NADE has one hidden layer, got widths {self.hidden}")
        if not isinstance(self.direct, bool):
            raise TypeError(f"direct: expected a bool, got {self.direct!r}")
        if architecture == "nade" and self.direct:
            raise ValueError("direct: only MADE has direct connections; NADE's are its weights")
        if architecture == "made" and self.x_dim < 2:
            raise ValueError(f"x_shape: MADE needs at least 2 pixels, got {self.x_shape}")


class _Autoregressive(Capabilities, PyroModule):
    unsupported = {"posterior": "an autoregressive model has no latent variables"}
    data_support = "binary"
    architecture = ""

    def __init__(self, config: AutoregressiveConfig | None) -> None:
        with local_params():
            super().__init__()
            self.config = config or AutoregressiveConfig()
            self.config.validate(self.architecture)
            self.register_buffer("_prototype", torch.zeros(()))  # the samples' device and dtype
            self._build(torch.Generator().manual_seed(self.config.seed))
        svi_compatible_(self)

    def _build(self, gen: torch.Generator) -> None:
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """All conditional logits, ``(..., D)``: logit d is log-odds of x_d = 1 given x_<d."""
        values = is_validation_enabled()
        check_tensor("x", x, floating=True, nonempty=True, finite=values,
                     support=self.data_support if values else None)
        if x.dim() == 0 or x.shape[-1] != self.config.x_dim:
            raise ValueError(f"x: expected shape (..., {self.config.x_dim}) (flattened images), "
                             f"got {tuple(x.shape)}")
        return self._logits(self._weights(), x)

    def distribution(self, n: int) -> AutoregressiveBinary:
        """p(x) of ``n`` independent flattened images, as one Pyro distribution."""
        # The weights are read here, inside the model, where Pyro records them as param sites
        # (the distribution's log_prob runs later, outside the model, when a loss is computed).
        weights = self._weights()
        return AutoregressiveBinary(functools.partial(self._logits, weights), self._prototype,
                                    self.config.x_dim, (n,),
                                    sampler=functools.partial(self._sample, weights))

    def _weights(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in self._weight_names}

    def _logits(self, w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _sample(self, w: dict[str, torch.Tensor], shape: torch.Size) -> torch.Tensor | None:
        return None  # the distribution's generic ancestral sampling

    @pyro_method
    def model(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> torch.Tensor:
        """x ~ prod_d p(x_d | x_<d); returns the images, observed or drawn, shape (N, *x_shape)."""
        n = batch_size(x, num_samples, self._check_x)
        with pyro.plate("data", n):
            flat = pyro.sample(OBS, self.distribution(n), obs=None if x is None else x.reshape(n, -1))
        return flat.reshape(n, *self.config.x_shape)

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> None:
        """Nothing to infer: the model has no latent variables (the batch is checked as the
        model checks it)."""
        if x is not None:
            batch_size(x, num_samples, self._check_x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) of every image, shape ``(N,)``."""
        n = batch_size(x, None, self._check_x)
        return self.distribution(n).log_prob(x.reshape(n, -1))

    @sized_sample()
    @torch.no_grad()
    def sample(self, n: int, *, mean: bool = False) -> torch.Tensor:
        """``n`` images by ancestral sampling, pixel by pixel, shape ``(n, *x_shape)``.

        ``mean=True`` returns, for each drawn image, every pixel's probability p(x_d = 1 | x_<d)
        given the pixels drawn before it: the grey-level picture papers show.
        """
        check_positive_int("n", n)
        x = self.distribution(n).sample()
        if mean:
            x = torch.sigmoid(self.logits(x))
        return x.reshape(n, *self.config.x_shape)

    def _check_x(self, x: object) -> None:
        from pyro.infer.util import is_validation_enabled

        values = is_validation_enabled()
        check_tensor("x", x, event_shape=self.config.x_shape, floating=True, finite=values,
                     support=self.data_support if values else None)


class NADE(_Autoregressive):
    """The neural autoregressive distribution estimator on binary images.

    Examples:
        >>> nade = NADE(AutoregressiveConfig(x_shape=(3,), hidden=(4,)))
        >>> x = torch.tensor([[0., 1., 1.]])
        >>> nade.log_prob(x).shape, nade.sample(2).shape
        (torch.Size([1]), torch.Size([2, 3]))
    """

    architecture = "nade"

    def _build(self, gen: torch.Generator) -> None:
        d, (h,) = self.config.x_dim, self.config.hidden
        self.input_weight = nn.Parameter(torch.randn(h, d, generator=gen) / d**0.5)
        self.hidden_bias = nn.Parameter(torch.zeros(h))
        self.output_weight = nn.Parameter(torch.randn(d, h, generator=gen) / h**0.5)
        self.output_bias = nn.Parameter(torch.zeros(d))

    _weight_names = ("input_weight", "hidden_bias", "output_weight", "output_bias")

    def _logits(self, w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        contributions = x.unsqueeze(-1) * w["input_weight"].T  # (..., D, H)
        # a_d = c + sum_{j<d} W_j x_j: the running sum, shifted down by one pixel.
        before = torch.cumsum(contributions, dim=-2) - contributions
        hidden = torch.sigmoid(before + w["hidden_bias"])
        return (hidden * w["output_weight"]).sum(-1) + w["output_bias"]

    def _sample(self, weights: dict[str, torch.Tensor], shape: torch.Size) -> torch.Tensor:
        # Ancestral sampling with the running sum kept: O(D H) per image, not O(D^2 H).
        w, v, b = weights["input_weight"], weights["output_weight"], weights["output_bias"]
        x = self._prototype.new_zeros(shape)
        a = weights["hidden_bias"].expand(*shape[:-1], -1).clone()
        for d in range(shape[-1]):
            p = torch.sigmoid(b[d] + torch.sigmoid(a) @ v[d])
            x[..., d] = torch.bernoulli(p)
            a += x[..., d, None] * w[:, d]
        return x


class MADE(_Autoregressive):
    """The masked autoencoder for distribution estimation on binary images.

    Examples:
        >>> made = MADE(AutoregressiveConfig(x_shape=(3,), hidden=(8, 8)))
        >>> made.log_prob(torch.tensor([[0., 1., 1.]])).shape
        torch.Size([1])
    """

    architecture = "made"

    def _build(self, gen: torch.Generator) -> None:
        d = self.config.x_dim
        degrees = [torch.arange(1, d + 1)]
        for width in self.config.hidden:
            degrees.append(torch.randint(1, d, (width,), generator=gen))
        sizes = [d, *self.config.hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        for i in range(len(self.layers)):
            # A hidden unit of degree m sees the units of degree <= m below it.
            self.register_buffer(f"mask{i}", (degrees[i + 1].unsqueeze(1) >= degrees[i]).float())
        self.output = nn.Linear(sizes[-1], d)
        # Output d (degree d) sees hidden units of degree < d: x_d is not among its inputs.
        self.register_buffer("output_mask", (degrees[0].unsqueeze(1) > degrees[-1]).float())
        if self.config.direct:
            self.direct_weight = nn.Parameter(torch.zeros(d, d))

    def _weights(self) -> dict[str, torch.Tensor]:
        w = {}
        for i, layer in enumerate([*self.layers, self.output]):
            w[f"weight{i}"], w[f"bias{i}"] = layer.weight, layer.bias
        if self.config.direct:
            w["direct"] = self.direct_weight
        return w

    def _logits(self, w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(len(self.layers)):
            h = torch.relu(nn.functional.linear(h, w[f"weight{i}"] * getattr(self, f"mask{i}"),
                                                w[f"bias{i}"]))
        out = len(self.layers)
        logits = nn.functional.linear(h, w[f"weight{out}"] * self.output_mask, w[f"bias{out}"])
        if "direct" in w:
            logits = logits + x @ torch.tril(w["direct"], diagonal=-1).T
        return logits


def build_autoregressive(architecture: str, config: AutoregressiveConfig) -> _Autoregressive:
    """NADE or MADE by name.

    Examples:
        >>> type(build_autoregressive("made", AutoregressiveConfig(x_shape=(4,), hidden=(8,)))).__name__
        'MADE'
    """
    check_choice("architecture", architecture, ARCHITECTURES)
    return (NADE if architecture == "nade" else MADE)(config)
