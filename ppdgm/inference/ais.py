"""Annealed importance sampling of an RBM's log partition function (Salakhutdinov and Murray 2008).

AIS moves ``num_runs`` independent runs from a tractable base-rate RBM A (no weights, visible
biases b_A, hidden biases 0) to the target RBM B through the intermediate distributions

    p_k(v) ~ exp((1 - beta_k) b_A.v) exp(beta_k b.v) prod_j (1 + exp(beta_k (c_j + (vW)_j))),

for 0 = beta_0 < beta_1 < ... < beta_K = 1, with one block Gibbs sweep at inverse temperature
beta_k as the transition between them. Each run's importance weight w estimates Z_B / Z_A with
E[w] = Z_B / Z_A exactly, and Z_A = 2^H prod_i (1 + exp(b_A,i)) in closed form. So mean(w) Z_A is
an unbiased estimate of Z; its logarithm, log Z, is biased low by Jensen's inequality (a little,
when the weights vary little): AIS tends to *underestimate* log Z, and then to overestimate the
log-likelihood -F(v) - log Z. A base rate close to the data (:func:`base_rate_visible_bias`)
makes the first distributions closer to the last, and the estimate sharper.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from .._memory import check_fits
from .._validation import check_instance, check_positive_int, check_tensor
from ..models.rbm import RBM
from .evaluate import Estimate

__all__ = [
    "AISResult",
    "ais_log_partition",
    "base_rate_visible_bias",
    "default_betas",
    "rbm_log_likelihood",
]


class AISResult(NamedTuple):
    """What an AIS run found.

    Attributes:
        log_z: log of the mean importance weight times Z_A: the estimate of log Z.
        log_z_stderr: the delta-method standard error of ``log_z``, std(w) / (sqrt(M) mean(w)).
        log_z_lower, log_z_upper: log(Z_hat -/+ 3 sigma_hat), where sigma_hat is the standard
            error of the mean weight (times Z_A); the bounds Salakhutdinov and Murray report.
            ``log_z_lower`` is ``-inf`` when 3 sigma_hat exceeds Z_hat.
        log_z_base: log Z_A of the base-rate RBM.
        log_weights: the M runs' log importance weights, log w = log (Z_B / Z_A) estimates,
            shape ``(num_runs,)``.
    """

    log_z: float
    log_z_stderr: float
    log_z_lower: float
    log_z_upper: float
    log_z_base: float
    log_weights: torch.Tensor


def default_betas(like: torch.Tensor | None = None) -> torch.Tensor:
    """Salakhutdinov and Murray's schedule: steps of 1e-3 up to 0.5, 1e-4 up to 0.9, 1e-5 up to
    1: 14,500 intermediate distributions (14,501 inverse temperatures), denser where p_k changes
    fastest. Float64 on ``like``'s device (CPU by default).

    Examples:
        >>> betas = default_betas()
        >>> len(betas) - 1, betas[0].item(), betas[-1].item()
        (14500, 0.0, 1.0)
    """
    device = None if like is None else like.device
    pieces = [torch.linspace(0.0, 0.5, 501, dtype=torch.float64, device=device)[:-1],
              torch.linspace(0.5, 0.9, 4001, dtype=torch.float64, device=device)[:-1],
              torch.linspace(0.9, 1.0, 10001, dtype=torch.float64, device=device)]
    return torch.cat(pieces)


def base_rate_visible_bias(data: torch.Tensor, pseudocount: float = 1.0) -> torch.Tensor:
    """Visible biases of the base-rate RBM that match ``data``'s marginals: logit of each unit's
    mean, smoothed with ``pseudocount`` on and off counts (so no unit is certain).

    Examples:
        >>> base_rate_visible_bias(torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]]))
        tensor([ 1.3863, -0.4055])
    """
    check_tensor("data", data, ndim=2, floating=True, support="binary")
    if isinstance(pseudocount, bool) or not isinstance(pseudocount, (int, float)):
        raise TypeError(f"pseudocount: expected a number, got {type(pseudocount).__name__}")
    if not (math.isfinite(pseudocount) and pseudocount > 0):
        raise ValueError(f"pseudocount: expected a finite number > 0, got {pseudocount!r}")
    p = (data.sum(0) + pseudocount) / (data.shape[0] + 2 * pseudocount)
    return torch.log(p) - torch.log1p(-p)


def _check_betas(betas: int | torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    if betas is None:
        return default_betas(like)
    if isinstance(betas, int) and not isinstance(betas, bool):
        check_positive_int("betas", betas)
        return torch.linspace(0.0, 1.0, betas + 1, dtype=torch.float64, device=like.device)
    if not isinstance(betas, torch.Tensor):
        raise TypeError(
            f"betas: expected None, an int (uniform steps) or a 1-D tensor, got {type(betas).__name__}"
        )
    check_tensor("betas", betas, ndim=1, floating=True)
    if betas.numel() < 2 or betas[0].item() != 0.0 or betas[-1].item() != 1.0:
        raise ValueError(
            f"betas: expected an increasing schedule from 0 to 1, got {betas.numel()} values "
            f"from {betas[0].item() if betas.numel() else None} to "
            f"{betas[-1].item() if betas.numel() else None}"
        )
    if not bool((betas[1:] > betas[:-1]).all()):
        raise ValueError("betas: expected strictly increasing inverse temperatures")
    return betas.to(device=like.device, dtype=torch.float64)


def _softplus_gap(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """softplus(a + delta) - softplus(a), accurate for small ``delta``.

    With steps of 1e-5 in beta, subtracting two softplus values of similar size would lose most
    of the digits of their difference; log1p(sigmoid(a) expm1(delta)) is the same quantity
    without the cancellation, and the plain difference is kept where delta is large (expm1 could
    overflow there, and nothing cancels).
    """
    small = delta.abs() < 1.0
    fine = torch.log1p(torch.sigmoid(a) * torch.expm1(torch.where(small, delta, 0.0)))
    return torch.where(small, fine, F.softplus(a + delta) - F.softplus(a))


def _transition(v: torch.Tensor, log_w: torch.Tensor, W: torch.Tensor, b_a: torch.Tensor,
                b: torch.Tensor, c: torch.Tensor, bias_gap: torch.Tensor, beta_prev: torch.Tensor,
                beta: torch.Tensor, noise_h: torch.Tensor, noise_v: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One temperature of AIS as a function of tensors (what ``compile=True`` compiles): the
    weight update from beta_prev to beta at v, then a block Gibbs sweep at beta whose Bernoulli
    draws are ``noise < probability``. After the last temperature the sweep is not used."""
    x = v @ W + c
    d = beta - beta_prev
    log_w = log_w + (d * (v @ bias_gap) + _softplus_gap(beta_prev * x, d * x).sum(-1)).to(log_w.dtype)
    h = (noise_h < torch.sigmoid(beta * x)).to(v.dtype)
    logits = (1.0 - beta) * b_a + beta * (b + h @ W.T)
    return (noise_v < torch.sigmoid(logits)).to(v.dtype), log_w


@functools.cache
def _compiled_transition() -> Any:
    return torch.compile(_transition, dynamic=False)


def _log_mean_exp(x: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(x, 0) - math.log(x.numel())


@torch.no_grad()
def ais_log_partition(
    rbm: RBM,
    num_runs: int = 100,
    betas: int | torch.Tensor | None = None,
    base_visible_bias: torch.Tensor | None = None,
    *,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
    compile: bool = False,
) -> AISResult:
    """Estimate log Z of ``rbm`` by AIS from the base-rate RBM with ``num_runs`` parallel runs.

    Args:
        rbm: the RBM whose partition function is wanted.
        num_runs: M, independent annealing runs (run as one batch).
        betas: the inverse temperatures: ``None`` for :func:`default_betas` (14,500 steps), an int
            K for K uniform steps, or a 1-D tensor increasing from 0 to 1.
        base_visible_bias: b_A (shape ``(V,)``); ``None`` is zeros (the uniform distribution).
            :func:`base_rate_visible_bias` of the training data is the usual, better choice.
        seed: seeds a private generator, so the draws are repeatable and the global RNG is left
            alone; ``None`` uses the global RNG. Ignored when ``generator`` is given.
        generator: a ``torch.Generator`` on the RBM's device to draw from.
        compile: run each temperature's weight update and Gibbs sweep as one function compiled
            by ``torch.compile`` (Inductor fuses the elementwise work around the two products).
            Its Bernoulli draws compare uniform noise from the same generator with the
            probabilities: the same distribution and the same estimator, other numbers than
            the eager run's. On 2 CPU threads it took a temperature of a 784-500 RBM with 1000
            runs from 38.3 to 22.5 ms (``benchmarks/compiled.py --rows rbm-ais``), after about 2 s
            of compiling.

    Runs on the RBM's device; log weights are accumulated in float64 (where the device has it).

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> rbm = RBM(visible=4, hidden=3, init_scale=0.5)
        >>> result = ais_log_partition(rbm, num_runs=50, betas=50)
        >>> abs(result.log_z - rbm.log_partition_exact().item()) < 3 * result.log_z_stderr + 0.01
        True
    """
    check_instance("rbm", rbm, RBM, "a ppdgm.models.rbm.RBM")
    check_positive_int("num_runs", num_runs)
    # Each run holds v, h, their probabilities and inputs, and its weight.
    check_fits("num_runs", num_runs, 3 * (rbm.visible + rbm.hidden) * 4 + 8, rbm.weight.device,
               what="runs")
    check_instance("compile", compile, bool, "True or False")
    W, b, c = rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach()
    betas = _check_betas(betas, W)
    if base_visible_bias is None:
        b_a = torch.zeros_like(b)
    else:
        check_tensor("base_visible_bias", base_visible_bias, floating=True)
        if tuple(base_visible_bias.shape) != (rbm.visible,):
            raise ValueError(
                f"base_visible_bias: expected shape ({rbm.visible},), got {tuple(base_visible_bias.shape)}"
            )
        b_a = base_visible_bias.detach().to(b)
    if generator is None and seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
        generator = torch.Generator(device=W.device).manual_seed(seed)

    acc = torch.float64 if W.device.type != "mps" else torch.float32  # MPS has no float64
    log_w = torch.zeros(num_runs, dtype=acc, device=W.device)
    # v_1 ~ p_0 = the base rate: independent Bernoulli(sigmoid(b_A)).
    v = torch.bernoulli(torch.sigmoid(b_a).expand(num_runs, -1), generator=generator)
    bias_gap = b - b_a
    if compile:
        transition = _compiled_transition()
        for k in range(1, len(betas)):
            noise = (torch.rand(num_runs, rbm.hidden, generator=generator, device=W.device),
                     torch.rand(num_runs, rbm.visible, generator=generator, device=W.device))
            v, log_w = transition(v, log_w, W, b_a, b, c, bias_gap, betas[k - 1], betas[k], *noise)
        steps: list[float] = []
    else:
        steps = betas.tolist()
    for k in range(1, len(steps)):
        beta_prev, beta = steps[k - 1], steps[k]
        x = v @ W + c  # (M, H): the hidden units' input at the current v
        d = beta - beta_prev
        log_w += (d * (v @ bias_gap) + _softplus_gap(beta_prev * x, d * x).sum(-1)).to(acc)
        if k < len(steps) - 1:
            # One Gibbs sweep that leaves p_k invariant: h ~ p_k(h | v), v ~ p_k(v | h).
            h = torch.bernoulli(torch.sigmoid(beta * x), generator=generator)
            logits = (1.0 - beta) * b_a + beta * (b + h @ W.T)
            v = torch.bernoulli(torch.sigmoid(logits), generator=generator)

    log_z_base = (F.softplus(b_a).sum() + rbm.hidden * math.log(2.0)).to(acc)
    log_mean = _log_mean_exp(log_w)
    # Normalized weights r = w / mean(w) keep the moments finite for any size of log w.
    r = torch.exp(log_w - log_mean)
    sem = (r.std() / math.sqrt(num_runs)).item() if num_runs > 1 else float("nan")
    log_z = (log_mean + log_z_base).item()
    lower = log_z + math.log(1 - 3 * sem) if 3 * sem < 1 else -math.inf
    upper = log_z + math.log1p(3 * sem)
    return AISResult(log_z, sem, lower, upper, log_z_base.item(), log_w)


@torch.no_grad()
def rbm_log_likelihood(rbm: RBM, data: torch.Tensor, log_z: float | torch.Tensor | AISResult,
                       *, batch_size: int = 1024) -> Estimate:
    """Mean log p(v) = -F(v) - log Z over the rows of ``data``, with its standard error across
    data points (the uncertainty of ``log_z`` itself is not included: it shifts every point
    alike). ``log_z`` is a number, a 0-dim tensor or an :class:`AISResult`.

    Examples:
        >>> rbm = RBM(visible=3, hidden=2, init_scale=0.0)
        >>> est = rbm_log_likelihood(rbm, torch.ones(4, 3), rbm.log_partition_exact())
        >>> round(est.mean, 4), est.n  # uniform over 2^3 states
        (-2.0794, 4)
    """
    check_instance("rbm", rbm, RBM, "a ppdgm.models.rbm.RBM")
    check_tensor("data", data, event_shape=(rbm.visible,), floating=True, support="binary")
    check_positive_int("batch_size", batch_size)
    if isinstance(log_z, AISResult):
        log_z = log_z.log_z
    if isinstance(log_z, torch.Tensor):
        if log_z.dim() != 0:
            raise ValueError(f"log_z: expected a 0-dim tensor, got shape {tuple(log_z.shape)}")
        log_z = log_z.item()
    if isinstance(log_z, bool) or not isinstance(log_z, (int, float)):
        raise TypeError(
            f"log_z: expected a number, a 0-dim tensor or an AISResult, got {type(log_z).__name__}"
        )
    if not math.isfinite(log_z):
        raise ValueError(f"log_z: expected a finite number, got {log_z}")
    per_point = torch.cat([-rbm.free_energy(chunk) for chunk in data.split(batch_size)])
    return Estimate.of(per_point - log_z)
