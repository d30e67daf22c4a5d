"""How good is the encoder? NUTS on p(z | x) beside the guide's q(z | x), for a few data points.

For each chosen data point x of a trained VAE this measures, in nats (Cremer, Li and Duvenaud
2018, "Inference suboptimality in variational autoencoders"):

* the **inference gap** log p(x) - ELBO(q_phi) = KL(q_phi(z|x) || p(z|x)), the whole cost of
  using the encoder instead of the true posterior;
* split into the **approximation gap** log p(x) - ELBO(q*), what even the best Gaussian q* for
  this one point loses (q* is fitted to the point by gradient ascent on its ELBO, starting from
  the encoder's answer), and the **amortization gap** ELBO(q*) - ELBO(q_phi), what sharing one
  encoder across the data set costs;
* the forward KL(p(z|x) || q_phi(z|x)) from NUTS draws of the true posterior, which is large
  when the guide misses posterior mass (mode dropping) even if the ELBO looks good;
* R-hat and ESS of the NUTS run, so the reference itself can be trusted.

log p(x) is importance-sampled with ``num_is`` proposals from an equal mixture of the encoder's q
and q*: the encoder alone is a poor proposal exactly when the gap is large, and the mixture's
estimate is never much worse than its better half's. It is a lower bound in expectation, so the
gaps above are, if anything, slightly underestimated.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
import torch.nn.functional as F
from pyro.infer import MCMC, NUTS, Trace_ELBO
from pyro.ops.stats import effective_sample_size, split_gelman_rubin

from .._pyro import local_params
from .._validation import check_instance, check_positive_int
from ..inference.evaluate import log_likelihood_per_point
from ..models.vae import LATENT, VAE
from .arviz_api import container, dataset

__all__ = ["AmortizationGap", "amortization_gap", "plot_amortization_gap"]


@dataclasses.dataclass
class AmortizationGap:
    """Per data point (tensors of shape ``(n,)``, nats) and the draws behind them.

    Attributes:
        log_px: importance-sampled log p(x).
        elbo_encoder, elbo_optimal: ELBO of q_phi(z|x) and of the per-point optimal Gaussian q*.
        forward_kl: KL(p(z|x) || q_phi(z|x)) estimated from the NUTS draws.
        rhat, ess: the worst split R-hat and the smallest ESS over the point's latent coordinates.
        posterior: NUTS draws, shape ``(chains, draws, n, z_dim)``.
        encoder_loc, encoder_scale, optimal_loc, optimal_scale: the two Gaussians, ``(n, z_dim)``.
    """

    log_px: torch.Tensor
    elbo_encoder: torch.Tensor
    elbo_optimal: torch.Tensor
    forward_kl: torch.Tensor
    rhat: torch.Tensor
    ess: torch.Tensor
    posterior: torch.Tensor
    encoder_loc: torch.Tensor
    encoder_scale: torch.Tensor
    optimal_loc: torch.Tensor
    optimal_scale: torch.Tensor

    @property
    def inference_gap(self) -> torch.Tensor:
        return self.log_px - self.elbo_encoder

    @property
    def approximation_gap(self) -> torch.Tensor:
        return self.log_px - self.elbo_optimal

    @property
    def amortization_gap(self) -> torch.Tensor:
        return self.elbo_optimal - self.elbo_encoder

    def summary(self) -> dict[str, list[float]]:
        """Per-point numbers as plain lists, for printing or JSON."""
        fields = {
            "log_px": self.log_px, "elbo_encoder": self.elbo_encoder, "elbo_optimal": self.elbo_optimal,
            "inference_gap": self.inference_gap, "approximation_gap": self.approximation_gap,
            "amortization_gap": self.amortization_gap, "forward_kl": self.forward_kl,
            "rhat": self.rhat, "ess": self.ess,
        }
        return {k: [round(float(v), 4) for v in t] for k, t in fields.items()}

    def to_inference_data(self) -> Any:
        """The NUTS draws as ArviZ data, with the dims a guide's draws have (``obs`` and
        ``z_dim_0``): ``InferenceData`` on ArviZ 0.x, ``xarray.DataTree`` on 1.x."""
        return container({"posterior": dataset({LATENT: self.posterior.cpu().numpy()},
                                               dims={LATENT: ["obs", f"{LATENT}_dim_0"]})})


def _local_guide(loc: torch.Tensor, raw_scale: torch.Tensor):
    def guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample(LATENT, dist.Normal(loc, F.softplus(raw_scale)).to_event(1))
    return guide


def _fit_optimal_gaussian(vae: VAE, x: torch.Tensor, steps: int, particles: int, lr: float):
    loc, scale = vae.encode(x)
    loc = loc.detach().clone().requires_grad_()
    raw = _softplus_inv(scale.detach()).requires_grad_()
    optimizer = torch.optim.Adam([loc, raw], lr=lr)
    # A learning rate decaying to zero lets the noisy reparameterized gradients settle.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1.0 - t / steps)
    elbo = Trace_ELBO(num_particles=particles, vectorize_particles=True, max_plate_nesting=1)
    guide = _local_guide(loc, raw)
    for _ in range(steps):
        optimizer.zero_grad()
        # The points are independent, so the summed loss gives each point its own gradient.
        elbo.differentiable_loss(vae.model, guide, x).backward()
        optimizer.step()
        schedule.step()
    return loc.detach(), F.softplus(raw.detach())


def _log_densities(vae: VAE, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x, z) and log q_phi(z | x) at draws ``z`` of shape ``(S, n, z_dim)``, each ``(S, n)``."""
    model_trace = poutine.trace(poutine.condition(vae.model, data={LATENT: z})).get_trace(x)
    model_trace.compute_log_prob()
    log_joint = sum(site["log_prob"] for site in model_trace.nodes.values() if site["type"] == "sample")
    guide_trace = poutine.trace(poutine.condition(vae.guide, data={LATENT: z})).get_trace(x)
    guide_trace.compute_log_prob()
    return log_joint, guide_trace.nodes[LATENT]["log_prob"]


def amortization_gap(vae: VAE, x: torch.Tensor, *, num_samples: int = 300, warmup_steps: int = 200,
                     num_chains: int = 2, num_is: int = 5000, optimal_steps: int = 300,
                     optimal_particles: int = 32, optimal_lr: float = 0.05, seed: int = 0,
                     mp_context: str | None = None) -> AmortizationGap:
    """Measure the encoder of ``vae`` against NUTS on the true posterior at the rows of ``x``.

    Args:
        vae: a trained :class:`~ppdgm.models.VAE`.
        x: a few data points, shape ``(n, *x_shape)`` (NUTS runs on all n at once; keep n small).
        num_samples: NUTS draws kept per chain.
        warmup_steps: NUTS warm-up steps per chain.
        num_chains: NUTS chains, each started from a draw of the encoder's q.
            ``MCMC(num_chains=...)`` runs the chains in parallel processes when it sees a spare
            core for each (``num_chains <= cpu_count - 1``), else one after another.
        mp_context: the processes' start method (``"spawn"`` when ``x`` is on a GPU), passed to
            ``pyro.infer.MCMC``.
        num_is: importance samples for log p(x) and the ELBOs.
        optimal_steps: the per-point Gaussian fit's optimizer steps.
        optimal_particles: the per-point Gaussian fit's ELBO particles.
        optimal_lr: the per-point Gaussian fit's learning rate.
        seed: fixes every draw; the global RNG state is restored afterwards.

    Examples:
        >>> vae = VAE(x_shape=(4,), z_dim=2, hidden=(8,))
        >>> gap = amortization_gap(vae, torch.ones(2, 4), num_samples=20, warmup_steps=20,
        ...                        num_is=100, optimal_steps=20)
        >>> gap.posterior.shape, bool((gap.amortization_gap > -0.5).all())
        (torch.Size([2, 20, 2, 2]), True)
    """
    check_instance("vae", vae, VAE, "a ppdgm.models.VAE")
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x: expected a batch of data points (n, *x_shape), got {getattr(x, 'shape', x)!r}")
    for name, value in [("num_samples", num_samples), ("num_chains", num_chains), ("num_is", num_is),
                        ("optimal_steps", optimal_steps), ("optimal_particles", optimal_particles)]:
        check_positive_int(name, value)
    check_positive_int("warmup_steps", warmup_steps, minimum=0)
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []), local_params():
        torch.manual_seed(seed)
        _, elbo_encoder = log_likelihood_per_point(vae.model, vae.guide, x, num_samples=num_is, seed=seed)
        enc_loc, enc_scale = (t.detach() for t in vae.encode(x))
        start = dist.Normal(enc_loc, enc_scale).sample((num_chains,))
        with warnings.catch_warnings():
            # The docstring says what happens without a spare core per chain.
            warnings.filterwarnings("ignore", message="num_chains=.* available_cpu", category=UserWarning)
            mcmc = MCMC(NUTS(vae.model), num_samples=num_samples, warmup_steps=warmup_steps,
                        num_chains=num_chains,
                        initial_params={LATENT: start if num_chains > 1 else start[0]},
                        mp_context=mp_context, disable_progbar=True)
            mcmc.run(x)
        posterior = mcmc.get_samples(group_by_chain=True)[LATENT]  # (chains, draws, n, z_dim)
        opt_loc, opt_scale = _fit_optimal_gaussian(vae, x, optimal_steps, optimal_particles, optimal_lr)
        with torch.no_grad():
            elbo_optimal = _gaussian_elbo(vae, x, opt_loc, opt_scale, num_is)
            log_px = _mixture_log_px(vae, x, [(enc_loc, enc_scale), (opt_loc, opt_scale)], num_is)
            draws = posterior.reshape(-1, *posterior.shape[2:])
            log_joint, log_q = _log_densities(vae, x, draws)
    forward_kl = (log_joint.double() - log_px - log_q.double()).mean(0)
    rhat = split_gelman_rubin(posterior, chain_dim=0, sample_dim=1).flatten(1).amax(-1) if num_chains > 1 \
        else torch.full((x.shape[0],), float("nan"))
    ess = effective_sample_size(posterior, chain_dim=0, sample_dim=1).flatten(1).amin(-1)
    return AmortizationGap(log_px, elbo_encoder, elbo_optimal, forward_kl, rhat, ess, posterior,
                           enc_loc, enc_scale, opt_loc, opt_scale)


def _gaussian_elbo(vae: VAE, x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, num: int,
                   chunk: int = 500) -> torch.Tensor:
    q = dist.Normal(loc, scale).to_event(1)
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, num, chunk):
        z = q.sample((min(chunk, num - start),))
        log_joint, _ = _log_densities(vae, x, z)
        total += (log_joint - q.log_prob(z)).double().sum(0)
    return total / num


def _mixture_log_px(vae: VAE, x: torch.Tensor, proposals: list[tuple[torch.Tensor, torch.Tensor]],
                    num: int, chunk: int = 500) -> torch.Tensor:
    """log p(x) by importance sampling from an equal mixture of Gaussians, per data point.

    A mixture proposal is never much worse than its best component (its weights are at most
    len(proposals) times that component's), so a poor encoder cannot spoil the estimate.
    """
    qs = [dist.Normal(loc, scale).to_event(1) for loc, scale in proposals]
    log_k = torch.log(torch.tensor(float(len(qs))))
    running = None
    for start in range(0, num, chunk):
        size = min(chunk, num - start)
        which = torch.randint(len(qs), (size, x.shape[0], 1), device=x.device)
        z = torch.stack([q.sample((size,)) for q in qs]).gather(
            0, which.unsqueeze(0).expand(1, size, x.shape[0], qs[0].event_shape[0])).squeeze(0)
        log_mix = torch.logsumexp(torch.stack([q.log_prob(z) for q in qs]), 0) - log_k
        log_joint, _ = _log_densities(vae, x, z)
        part = torch.logsumexp((log_joint - log_mix).double(), 0)
        running = part if running is None else torch.logaddexp(running, part)
    assert running is not None
    return running - torch.log(torch.tensor(float(num), dtype=torch.float64))


def _softplus_inv(scale: torch.Tensor) -> torch.Tensor:
    return scale.expm1().clamp_min(1e-12).log()


def plot_amortization_gap(gap: AmortizationGap, path: str | Path, max_points: int = 6) -> Path:
    """Per data point: NUTS draws of the first two latent coordinates, with the 2-sd ellipses of
    the encoder's q (solid) and of the per-point optimal Gaussian (dashed); the gaps in the title.

    Examples:
        >>> import tempfile
        >>> vae = VAE(x_shape=(4,), z_dim=2, hidden=(8,))
        >>> gap = amortization_gap(vae, torch.ones(1, 4), num_samples=10, warmup_steps=10,
        ...                        num_chains=1, num_is=50, optimal_steps=5)
        >>> plot_amortization_gap(gap, tempfile.mkdtemp() + "/gap.png").name
        'gap.png'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    from .figures import save_figure

    n = min(gap.posterior.shape[2], check_positive_int("max_points", max_points))
    two_d = gap.posterior.shape[-1] >= 2
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
    for i, ax in enumerate(axes[0]):
        draws = gap.posterior[:, :, i].reshape(-1, gap.posterior.shape[-1]).cpu()
        if two_d:
            ax.scatter(draws[:, 0], draws[:, 1], s=3, alpha=0.3, color="C0", label="NUTS p(z|x)")
            for loc, scale, style, label in [(gap.encoder_loc, gap.encoder_scale, "-", "encoder q"),
                                             (gap.optimal_loc, gap.optimal_scale, "--", "optimal q*")]:
                ax.add_patch(Ellipse((float(loc[i, 0]), float(loc[i, 1])), 4 * float(scale[i, 0]),
                                     4 * float(scale[i, 1]), fill=False, linestyle=style, color="C3",
                                     label=label))
            ax.set_xlabel("z[0]")
            ax.set_ylabel("z[1]")
        else:
            ax.hist(draws[:, 0].numpy(), bins=40, density=True, alpha=0.5, label="NUTS p(z|x)")
            ax.set_xlabel("z[0]")
        ax.set_title(f"point {i}: amort. {gap.amortization_gap[i]:.2f}\napprox. "
                     f"{gap.approximation_gap[i]:.2f} nats", fontsize=9)
    axes[0][0].legend(fontsize=7, loc="best")
    return save_figure(fig, path)
