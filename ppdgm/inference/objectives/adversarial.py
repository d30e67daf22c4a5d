"""Adversarial objectives: a GAN's two losses as a custom Pyro loss over any model/guide pair.

Read as in Hu et al. ("On Unifying Deep Generative Models"), the generator is a Pyro model whose
deterministic site ``"x"`` holds generated points, and the discriminator is a guide
q(y | x) = Bernoulli(logits = D(x)) at the site ``"y"``, y = 1 meaning "real". The losses only
need those two sites:

* fakes are the ``"x"`` of a trace of ``model(None, num_samples=n)`` (n = the real batch's size);
* D's logits, or a critic's values f(x), are the ``.logits`` of the guide's ``"y"`` distribution
  in a trace of ``guide(x)``.

Sign conventions: both players **minimize** their loss, and every loss is a **mean** over the
discriminator's inputs in the batch (not a sum as Pyro's ELBOs are), so ``History.loss_mean`` is
its per-step value. With l the logits, D = sigmoid(l), log D = logsigmoid(l) and
log(1 - D) = logsigmoid(-l) (computed that way, never as log(sigmoid)):

========================  =================================================  ============================
kind                      discriminator / critic                             generator
========================  =================================================  ============================
``"minimax"``             -[log D(x) + log(1 - D(G(z)))]                     log(1 - D(G(z))) (saturating)
``"non-saturating"``      same as minimax                                    -log D(G(z))
``"wasserstein-gp"``      f(G(z)) - f(x) + w (||grad f(x_hat)|| - 1)^2       -f(G(z))
``"hinge"``               relu(1 - f(x)) + relu(1 + f(G(z)))                 -f(G(z))
========================  =================================================  ============================

(f = the logits read as critic values; x_hat = eps x + (1 - eps) G(z), eps ~ U(0, 1), the random
interpolates of Gulrajani et al. 2017; w = ``gp_weight``.) The discriminator's loss sees the fakes
drawn under ``torch.no_grad()``, so it never builds a graph through the generator; the
generator's loss differentiates through the fakes into the generator (and through the
discriminator's layers, whose own parameters the engine's ``Player(owns="model")`` leaves alone).

PacGAN (Lin et al. 2018): ``pack=m`` says that the guide judges m consecutive points of its batch
at once and returns one logit per group (:class:`ppdgm.models.GAN` with ``GANConfig.pack=m``).
The loss keeps the first ``m * (n // m)`` real points and draws as many fakes, so real and fake
points are never mixed in a group; the last ``n mod m`` real points of a batch are dropped.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable
from typing import Any

import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from torch.nn import functional as F

from ..._validation import check_choice, check_positive_int
from .base import MultiPlayerObjective

__all__ = ["AdversarialLoss", "ADVERSARIAL_LOSSES", "guide_logits", "gradient_penalty"]

#: kind -> what it is.
ADVERSARIAL_LOSSES = {
    "non-saturating": "Goodfellow et al. 2014's practical GAN: the generator maximizes log D(G(z))",
    "minimax": "the original minimax game: the generator minimizes log(1 - D(G(z))) (saturates)",
    "wasserstein-gp": "WGAN-GP (Gulrajani et al. 2017): a critic with a gradient penalty",
    "hinge": "hinge loss (Lim & Ye 2017; Miyato et al. 2018)",
}

_FAKE = "x"
_LABEL = "y"


def guide_logits(guide: Callable[..., Any], x: torch.Tensor, *, site: str = _LABEL) -> torch.Tensor:
    """The logits of the guide's Bernoulli site ``site`` in a trace of ``guide(x)``.

    ``Independent`` and masked wrappers are unwrapped; the guide's other effects are hidden from
    any handler outside (``poutine.block``), except its parameters, which stay visible to
    ``pyro.infer.SVI`` and the engine. This is how the adversarial losses read D(x).

    Examples:
        >>> import pyro
        >>> def guide(x):
        ...     with pyro.plate("data", len(x)):
        ...         pyro.sample("y", dist.Bernoulli(logits=2 * x.sum(-1)))
        >>> guide_logits(guide, torch.tensor([[1.0, 0.5], [0.0, -1.0]]))
        tensor([ 3., -2.])
    """
    if not callable(guide):
        raise TypeError(f"guide: expected a callable, got {type(guide).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    with poutine.block(expose_types=["param"]):
        trace = poutine.trace(guide).get_trace(x)
    node = trace.nodes.get(site)
    if node is None or node["type"] != "sample":
        found = [n for n, s in trace.nodes.items() if s["type"] == "sample"]
        raise ValueError(
            f"guide: expected a sample site {site!r} (the discriminator's label y ~ "
            f"Bernoulli(logits=D(x))), found sample sites {found}"
        )
    fn = node["fn"]
    while isinstance(fn, (dist.Independent, dist.MaskedDistribution)):
        fn = fn.base_dist
    if not isinstance(fn, torch.distributions.Bernoulli):
        raise ValueError(
            f"guide: site {site!r} must be a Bernoulli distribution (its logits are D(x)), "
            f"got {type(fn).__name__}"
        )
    return fn.logits


def gradient_penalty(guide: Callable[..., Any], x_real: torch.Tensor, x_fake: torch.Tensor, *,
                     pack: int = 1, eps: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP's penalty, the mean over groups of (||grad_x f(x_hat)|| - 1)^2.

    x_hat = eps x_real + (1 - eps) x_fake, with one eps ~ U(0, 1) per group of ``pack``
    consecutive points (per point when ``pack=1``; pass ``eps`` of shape ``(n // pack,)`` to fix
    it), and f the logits of the guide's ``"y"`` site. The gradient is taken with respect to all
    the critic's input, so for ``pack > 1`` its norm is over the whole group. ``x_fake`` is
    detached; the result is differentiable in the critic's parameters (``create_graph=True``).

    Examples:
        >>> import pyro
        >>> def guide(x):  # a linear critic 3 x1 + 4 x2: its gradient has norm 5 everywhere
        ...     with pyro.plate("data", len(x)):
        ...         pyro.sample("y", dist.Bernoulli(logits=x @ torch.tensor([3.0, 4.0])))
        >>> gradient_penalty(guide, torch.randn(4, 2), torch.randn(4, 2)).item()
        16.0
    """
    check_positive_int("pack", pack)
    real, fake = _check_pair(x_real, x_fake, pack)
    groups = real.shape[0] // pack
    if eps is None:
        eps = torch.rand(groups, dtype=real.dtype, device=real.device)
    elif not isinstance(eps, torch.Tensor) or eps.shape != (groups,):
        raise ValueError(
            f"eps: expected a tensor of shape ({groups},), one weight per group of {pack}, "
            f"got {getattr(eps, 'shape', type(eps).__name__)}"
        )
    weight = eps.repeat_interleave(pack).reshape(-1, *([1] * (real.dim() - 1)))
    with torch.enable_grad():  # a penalty is a gradient even when the caller evaluates under no_grad
        x_hat = (weight * real.detach() + (1 - weight) * fake.detach()).requires_grad_(True)
        f = guide_logits(guide, x_hat)
        _check_logits(f, x_hat.shape[0], pack)
        (grad,) = torch.autograd.grad(f.sum(), x_hat, create_graph=True)
    norms = grad.reshape(groups, -1).norm(dim=1)
    return (norms - 1).square().mean()


class AdversarialLoss(MultiPlayerObjective):
    """A GAN's discriminator and generator losses, as ``{"discriminator": ..., "generator": ...}``.

    ``loss(model, guide, x_real)`` computes both; the engine calls
    ``player_loss(name, model, guide, x_real)``, which computes only the named player's. Train
    with ``Player("discriminator", owns="guide")`` and ``Player("generator", owns="model",
    every=k)`` for k discriminator steps per generator step. See the module docstring for the
    losses, their signs and packing.

    Args:
        kind: one of :data:`ADVERSARIAL_LOSSES`.
        gp_weight: the gradient penalty's weight (``"wasserstein-gp"`` only).
        pack: PacGAN's m, which must equal the guide's (``GANConfig.pack``).

    Examples:
        >>> from ppdgm.models import GAN
        >>> gan = GAN(x_shape=(2,), hidden=(8,))
        >>> losses = AdversarialLoss("hinge")(gan.model, gan.guide, torch.randn(6, 2))
        >>> sorted(losses), losses["generator"].shape
        (['discriminator', 'generator'], torch.Size([]))
    """

    player_names = ("discriminator", "generator")
    #: Every loss is a batch mean (data-parallel training averages, not sums, its gradients).
    loss_reduction = "mean"

    def __init__(self, kind: str = "non-saturating", gp_weight: float = 10.0, pack: int = 1) -> None:
        check_choice("kind", kind, tuple(ADVERSARIAL_LOSSES))
        if isinstance(gp_weight, bool) or not isinstance(gp_weight, numbers.Real):
            raise TypeError(f"gp_weight: expected a float, got {type(gp_weight).__name__}")
        if not (0 <= float(gp_weight) < float("inf")):
            raise ValueError(f"gp_weight: expected a finite float >= 0, got {gp_weight!r}")
        self.kind = kind
        self.gp_weight = float(gp_weight)
        self.pack = check_positive_int("pack", pack)

    def __repr__(self) -> str:
        return f"AdversarialLoss(kind={self.kind!r}, gp_weight={self.gp_weight}, pack={self.pack})"

    def player_loss(self, player: str, model: Callable[..., Any], guide: Callable[..., Any],
                    x_real: torch.Tensor) -> torch.Tensor:
        """The loss of ``player`` (``"discriminator"`` or ``"generator"``) on this batch."""
        if player == "discriminator":
            return self.discriminator_loss(model, guide, x_real)
        if player == "generator":
            return self.generator_loss(model, guide, x_real)
        raise ValueError(f"player: expected one of {self.player_names}, got {player!r}")

    def discriminator_loss(self, model: Callable[..., Any], guide: Callable[..., Any],
                           x_real: torch.Tensor) -> torch.Tensor:
        """The discriminator's (critic's) loss; the fakes are drawn without a graph.

        Real and generated points go through the guide in one call (the discriminator judges
        each group on its own, which :class:`~ppdgm.models.nets.DCGANDiscriminator` and
        :class:`~ppdgm.models.nets.MLP` do: neither has batch norm).
        """
        real = self._real(model, guide, x_real)
        fake = _generate(model, real, grad=False)
        logits = guide_logits(guide, torch.cat([real, fake]))
        _check_logits(logits, 2 * real.shape[0], self.pack)
        f_real, f_fake = logits.chunk(2)
        if self.kind in ("minimax", "non-saturating"):
            return -(F.logsigmoid(f_real).mean() + F.logsigmoid(-f_fake).mean())
        if self.kind == "hinge":
            return F.relu(1 - f_real).mean() + F.relu(1 + f_fake).mean()
        loss = f_fake.mean() - f_real.mean()
        if self.gp_weight > 0:
            loss = loss + self.gp_weight * gradient_penalty(guide, real, fake, pack=self.pack)
        return loss

    def generator_loss(self, model: Callable[..., Any], guide: Callable[..., Any],
                       x_real: torch.Tensor) -> torch.Tensor:
        """The generator's loss on as many fakes as the (packed) real batch has points."""
        real = self._real(model, guide, x_real)
        fake = _generate(model, real, grad=True)
        f_fake = guide_logits(guide, fake)
        _check_logits(f_fake, fake.shape[0], self.pack)
        if self.kind == "minimax":
            return F.logsigmoid(-f_fake).mean()
        if self.kind == "non-saturating":
            return -F.logsigmoid(f_fake).mean()
        return -f_fake.mean()

    def _real(self, model: Any, guide: Any, x_real: object) -> torch.Tensor:
        if not callable(model):
            raise TypeError(f"model: expected a callable, got {type(model).__name__}")
        if not callable(guide):
            raise TypeError(f"guide: expected a callable, got {type(guide).__name__}")
        if not isinstance(x_real, torch.Tensor):
            raise TypeError(f"x_real: expected a torch.Tensor batch, got {type(x_real).__name__}")
        if x_real.dim() < 2 or x_real.shape[0] < self.pack:
            raise ValueError(
                f"x_real: expected shape (batch, *event_shape) with batch >= pack={self.pack}, "
                f"got {tuple(x_real.shape)}"
            )
        used = self.pack * (x_real.shape[0] // self.pack)
        return x_real[:used]


def _generate(model: Callable[..., Any], real: torch.Tensor, *, grad: bool) -> torch.Tensor:
    """``len(real)`` fakes: the site "x" of ``model(None, num_samples=n)``."""
    n = real.shape[0]
    context = contextlib.nullcontext() if grad else torch.no_grad()
    with poutine.block(expose_types=["param"]), context:
        trace = poutine.trace(model).get_trace(None, num_samples=n)
    node = trace.nodes.get(_FAKE)
    if node is None or node["type"] != "sample":
        raise ValueError(
            f"model: expected a site {_FAKE!r} holding the generated batch "
            f"(pyro.deterministic({_FAKE!r}, G(z))) in model(None, num_samples=n)"
        )
    fake = node["value"]
    if not isinstance(fake, torch.Tensor) or fake.shape != real.shape:
        raise ValueError(
            f"model: model(None, num_samples={n}) must generate a batch shaped like the real one "
            f"{tuple(real.shape)} at site {_FAKE!r}, got {getattr(fake, 'shape', type(fake).__name__)}"
        )
    return fake if grad else fake.detach()


def _check_pair(x_real: object, x_fake: object, pack: int) -> tuple[torch.Tensor, torch.Tensor]:
    for name, value in (("x_real", x_real), ("x_fake", x_fake)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if x_real.shape != x_fake.shape or x_real.dim() < 2:
        raise ValueError(
            f"x_fake: expected the shape of x_real {tuple(x_real.shape)} (batch, *event_shape), "
            f"got {tuple(x_fake.shape)}"
        )
    if x_real.shape[0] == 0 or x_real.shape[0] % pack:
        raise ValueError(
            f"x_real: expected a positive batch size that is a multiple of pack={pack}, "
            f"got {x_real.shape[0]}"
        )
    return x_real, x_fake


def _check_logits(logits: torch.Tensor, n: int, pack: int) -> None:
    if logits.shape != (n // pack,):
        raise ValueError(
            f"pack: the loss groups {pack} point(s) per discriminator input, so {n} points should "
            f"give {n // pack} logits, but the guide's site {_LABEL!r} has logits of shape "
            f"{tuple(logits.shape)}; set the loss's pack to the model's (GANConfig.pack)"
        )
