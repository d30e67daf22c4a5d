"""The VAE-GAN's three losses (Larsen et al. 2016, Algorithm 1) over Pyro programs.

The programs are those of :class:`ppdgm.models.VAEGAN` (any with the same sites will do):

* ``guide(x)``: the encoder q(z | x) at site ``"z"``;
* ``model(x)``: z ~ p(z) at ``"z"``, x~ = Dec(z) at the deterministic site ``"x"`` and the
  feature-space likelihood at the observed site ``"x_features"`` (Dis_l(x) ~ N(Dis_l(x~), I));
  ``model(None, num_samples=n)`` draws n points Dec(z_p), z_p ~ p(z), at ``"x"``;
* ``discriminator(x)``: q(y | x) = Bernoulli(logits=D(x)) at ``"y"``, read with
  :func:`~ppdgm.inference.objectives.adversarial.guide_logits` as the GAN losses do. It is
  ``model.__self__.discriminator`` (a VAEGAN's bound ``model`` method) unless passed explicitly.

With L_prior = KL(q(z | x) || p(z)), L_llike = -log N(Dis_l(x); Dis_l(x~), I) for x~ decoded
from z ~ q(z | x), and x_p = Dec(z_p) decoded from the prior, each loss a **mean** over the
batch (as the adversarial losses are; a Pyro ELBO's loss is the sum, n times larger):

================  ======================================================================
player            loss (minimized)
================  ======================================================================
``encoder``       L_prior + L_llike
``decoder``       gamma * L_llike + g(D(x_p)) + g(D(x~))
``discriminator`` r(D(x)) + f(D(x_p)) + f(D(x~))  (+ WGAN-GP's penalty)
================  ======================================================================

r, f and g are the real, fake and generator terms of the chosen ``kind``, the formulas of
:class:`~ppdgm.inference.objectives.AdversarialLoss` (non-saturating: r = -log D,
f = -log(1 - D), g = -log D, via ``logsigmoid``); the discriminator's loss is therefore
AdversarialLoss's on (x, x_p) plus the term f(D(x~)) of the reconstructions (the paper's eq. 9
with samples from both p(z) and q(z | x)); WGAN-GP's penalty averages over interpolates of x
with x_p and of x with x~. The encoder gets no GAN term (the paper does not pass
L_GAN to the encoder), the decoder's reconstruction and the encoder's terms never reach the
discriminator's weights (the model detaches Dis_l in its likelihood), and the discriminator's
loss sees x_p and x~ drawn under ``torch.no_grad()``. Each player's turn evaluates its loss
afresh, so a player steps on new draws of z, after the previous player's update.

L_prior is the closed-form KL (``analytic_kl=True``, as the paper and ``TraceMeanField_ELBO``
do) or the one-sample estimate log q(z | x) - log p(z) (as ``Trace_ELBO``): the encoder's loss is
that ELBO's loss divided by the batch size, on the same draw of z.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable
from typing import Any

import pyro.poutine as poutine
import torch
from torch.distributions import kl_divergence
from torch.nn import functional as F

from ..._validation import check_choice
from .adversarial import ADVERSARIAL_LOSSES, gradient_penalty, guide_logits
from .base import MultiPlayerObjective

__all__ = ["VAEGANLoss", "VAEGAN_PLAYERS"]

#: The players, in the order the paper updates them.
VAEGAN_PLAYERS = ("encoder", "decoder", "discriminator")

_LATENT = "z"
_FAKE = "x"
_FEATURES = "x_features"


def _real_term(kind: str, f: torch.Tensor) -> torch.Tensor:
    # -log D(x), hinge or critic: the discriminator's reward for calling real points real.
    if kind in ("minimax", "non-saturating"):
        return -F.logsigmoid(f)
    if kind == "hinge":
        return F.relu(1 - f)
    return -f


def _fake_term(kind: str, f: torch.Tensor) -> torch.Tensor:
    # -log(1 - D(x)) = -logsigmoid(-l): never computed as log(1 - sigmoid(l)), which underflows.
    if kind in ("minimax", "non-saturating"):
        return -F.logsigmoid(-f)
    if kind == "hinge":
        return F.relu(1 + f)
    return f


def _generator_term(kind: str, f: torch.Tensor) -> torch.Tensor:
    if kind == "minimax":
        return F.logsigmoid(-f)  # log(1 - D): the saturating original
    if kind == "non-saturating":
        return -F.logsigmoid(f)
    return -f


class VAEGANLoss(MultiPlayerObjective):
    """The VAE-GAN's encoder, decoder and discriminator losses (see the module docstring).

    ``loss(model, guide, x)`` returns ``{"encoder": ..., "decoder": ..., "discriminator": ...}``;
    the engine calls ``player_loss(name, model, guide, x)`` for one player's alone. Train with
    ``Player(name, owns=VAEGAN.owns(name))`` for the three names.

    Args:
        kind: the GAN terms, one of :data:`~ppdgm.inference.objectives.ADVERSARIAL_LOSSES`.
        gamma: the decoder's weight of the feature-space reconstruction against fooling the
            discriminator (the paper's gamma; 0 makes the decoder a pure GAN generator).
        gp_weight: WGAN-GP's penalty weight (``kind="wasserstein-gp"`` only), applied to
            interpolates of the real points with x_p and with x~.
        analytic_kl: the closed-form KL in the encoder's loss, or its one-sample estimate.

    Examples:
        >>> from ppdgm.models import VAEGAN
        >>> m = VAEGAN(x_shape=(2,), hidden=(8,))
        >>> losses = VAEGANLoss(gamma=0.5)(m.model, m.guide, torch.randn(6, 2))
        >>> sorted(losses), losses["decoder"].shape
        (['decoder', 'discriminator', 'encoder'], torch.Size([]))
    """

    player_names = VAEGAN_PLAYERS
    #: Every loss is a batch mean (data-parallel training averages, not sums, its gradients).
    loss_reduction = "mean"

    def __init__(self, kind: str = "non-saturating", gamma: float = 1.0, *,
                 gp_weight: float = 10.0, analytic_kl: bool = True) -> None:
        check_choice("kind", kind, tuple(ADVERSARIAL_LOSSES))
        self.kind = kind
        self.gamma = _non_negative("gamma", gamma)
        self.gp_weight = _non_negative("gp_weight", gp_weight)
        if not isinstance(analytic_kl, bool):
            raise TypeError(f"analytic_kl: expected a bool, got {type(analytic_kl).__name__}")
        self.analytic_kl = analytic_kl

    def __repr__(self) -> str:
        return (f"VAEGANLoss(kind={self.kind!r}, gamma={self.gamma}, gp_weight={self.gp_weight}, "
                f"analytic_kl={self.analytic_kl})")

    def player_loss(self, player: str, model: Callable[..., Any], guide: Callable[..., Any],
                    x: torch.Tensor, *, discriminator: Callable[..., Any] | None = None
                    ) -> torch.Tensor:
        """The loss of ``player`` (``"encoder"``, ``"decoder"`` or ``"discriminator"``)."""
        if player == "encoder":
            return self.encoder_loss(model, guide, x)
        if player == "decoder":
            return self.decoder_loss(model, guide, x, discriminator=discriminator)
        if player == "discriminator":
            return self.discriminator_loss(model, guide, x, discriminator=discriminator)
        raise ValueError(f"player: expected one of {self.player_names}, got {player!r}")

    def encoder_loss(self, model: Callable[..., Any], guide: Callable[..., Any],
                     x: torch.Tensor) -> torch.Tensor:
        """L_prior + L_llike, the batch mean of the negative feature-space ELBO."""
        _check_programs(model, guide, x)
        kl, nll, _ = self._vae_terms(model, guide, x)
        return (kl + nll).mean()

    def decoder_loss(self, model: Callable[..., Any], guide: Callable[..., Any], x: torch.Tensor,
                     *, discriminator: Callable[..., Any] | None = None) -> torch.Tensor:
        """gamma L_llike plus the generator term on prior samples and on reconstructions."""
        disc = _discriminator_of(model, discriminator)
        _check_programs(model, guide, x)
        _, nll, x_tilde = self._vae_terms(model, guide, x)
        x_prior = _prior_samples(model, x, grad=True)
        f = _logits(disc, torch.cat([x_prior, x_tilde]))
        f_prior, f_tilde = f.chunk(2)
        gan = (_generator_term(self.kind, f_prior).mean()
               + _generator_term(self.kind, f_tilde).mean())
        return self.gamma * nll.mean() + gan

    def discriminator_loss(self, model: Callable[..., Any], guide: Callable[..., Any],
                           x: torch.Tensor, *, discriminator: Callable[..., Any] | None = None
                           ) -> torch.Tensor:
        """The GAN loss on real points against prior samples and reconstructions (no graph)."""
        disc = _discriminator_of(model, discriminator)
        _check_programs(model, guide, x)
        x_prior = _prior_samples(model, x, grad=False)
        with torch.no_grad():
            x_tilde = _reconstructions(model, guide, x)
        # One call for all three sets: the discriminator judges each point on its own (no batch
        # norm), and one forward pass is cheaper than three.
        f = _logits(disc, torch.cat([x, x_prior, x_tilde]))
        f_real, f_prior, f_tilde = f.chunk(3)
        loss = (_real_term(self.kind, f_real).mean() + _fake_term(self.kind, f_prior).mean()
                + _fake_term(self.kind, f_tilde).mean())
        if self.kind == "wasserstein-gp" and self.gp_weight > 0:
            loss = loss + self.gp_weight * gradient_penalty(
                disc, torch.cat([x, x]), torch.cat([x_prior, x_tilde]))
        return loss

    def _vae_terms(self, model: Callable[..., Any], guide: Callable[..., Any], x: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-point L_prior and L_llike, and the reconstructions x~, from one draw of z."""
        with poutine.block(expose_types=["param"]):
            guide_trace = poutine.trace(guide).get_trace(x)
            model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x)
        q = _site(guide_trace, _LATENT, "guide", "the encoder's latent z ~ q(z | x)")
        p = _site(model_trace, _LATENT, "model", "the prior z ~ p(z)")
        obs = _site(model_trace, _FEATURES, "model",
                    "the observed feature-space likelihood Dis_l(x) ~ N(Dis_l(Dec(z)), I)")
        x_tilde = _site(model_trace, _FAKE, "model", "the decoded batch Dec(z)")["value"]
        if not obs["is_observed"]:
            raise ValueError(f"model: site {_FEATURES!r} must be observed (obs=Dis_l(x)) when x is given")
        if self.analytic_kl:
            kl = kl_divergence(q["fn"], p["fn"])
        else:
            kl = q["fn"].log_prob(q["value"]) - p["fn"].log_prob(q["value"])
        nll = -obs["fn"].log_prob(obs["value"])
        n = x.shape[0]
        for name, value in (("L_prior", kl), ("L_llike", nll)):
            if value.shape != (n,):
                raise ValueError(
                    f"model: {name} should have one value per point, shape ({n},), got "
                    f"{tuple(value.shape)}; sites {_LATENT!r} and {_FEATURES!r} need all their "
                    "non-batch dimensions as event dimensions (.to_event) inside a data plate"
                )
        _check_like(x_tilde, x, f"model(x): the decoded batch at site {_FAKE!r}")
        return kl, nll, x_tilde


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    if not (0 <= float(value) < float("inf")):
        raise ValueError(f"{name}: expected a finite float >= 0, got {value!r}")
    return float(value)


def _check_programs(model: object, guide: object, x: object) -> None:
    if not callable(model):
        raise TypeError(f"model: expected a callable, got {type(model).__name__}")
    if not callable(guide):
        raise TypeError(f"guide: expected a callable, got {type(guide).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor batch, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"x: expected shape (batch, *event_shape) with batch >= 1, "
                         f"got {tuple(x.shape)}")


def _discriminator_of(model: object, discriminator: object) -> Callable[..., Any]:
    if discriminator is not None:
        if not callable(discriminator):
            raise TypeError(f"discriminator: expected a callable Pyro program, "
                            f"got {type(discriminator).__name__}")
        return discriminator
    program = getattr(getattr(model, "__self__", None), "discriminator", None)
    if not callable(program):
        raise TypeError(
            "discriminator: model is not the bound method of an object with a discriminator(x) "
            "program (a VAEGAN's model is); pass discriminator= explicitly"
        )
    return program


def _site(trace: Any, name: str, program: str, what: str) -> dict[str, Any]:
    node = trace.nodes.get(name)
    if node is None or node["type"] != "sample":
        found = [n for n, s in trace.nodes.items() if s["type"] == "sample"]
        raise ValueError(f"{program}: expected a sample site {name!r} ({what}), "
                         f"found sample sites {found}")
    return node


def _check_like(value: object, x: torch.Tensor, what: str) -> None:
    if not isinstance(value, torch.Tensor) or value.shape != x.shape:
        raise ValueError(f"{what} must have the data's shape {tuple(x.shape)}, "
                         f"got {getattr(value, 'shape', type(value).__name__)}")


def _prior_samples(model: Callable[..., Any], x: torch.Tensor, *, grad: bool) -> torch.Tensor:
    """``len(x)`` points Dec(z_p), z_p ~ p(z): the site "x" of ``model(None, num_samples=n)``."""
    n = x.shape[0]
    context = contextlib.nullcontext() if grad else torch.no_grad()
    with poutine.block(expose_types=["param"]), context:
        trace = poutine.trace(model).get_trace(None, num_samples=n)
    fake = _site(trace, _FAKE, "model", "pyro.deterministic('x', Dec(z)) in model(None, num_samples=n)")
    _check_like(fake["value"], x, f"model(None, num_samples={n}): the batch at site {_FAKE!r}")
    return fake["value"]


def _reconstructions(model: Callable[..., Any], guide: Callable[..., Any],
                     x: torch.Tensor) -> torch.Tensor:
    """x~ = Dec(z), z ~ q(z | x), without the likelihood (the model is run with x=None)."""
    with poutine.block(expose_types=["param"]):
        guide_trace = poutine.trace(guide).get_trace(x)
        trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
            None, num_samples=x.shape[0])
    x_tilde = _site(trace, _FAKE, "model", "the decoded batch Dec(z)")["value"]
    _check_like(x_tilde, x, f"model: the reconstructions at site {_FAKE!r}")
    return x_tilde


def _logits(discriminator: Callable[..., Any], x: torch.Tensor) -> torch.Tensor:
    logits = guide_logits(discriminator, x)
    if logits.shape != (x.shape[0],):
        raise ValueError(
            f"discriminator: expected one logit per point, shape ({x.shape[0]},), at site 'y', "
            f"got {tuple(logits.shape)} (a packed PacGAN discriminator is not supported)"
        )
    return logits
