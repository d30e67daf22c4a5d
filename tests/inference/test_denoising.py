"""The denoising loss, the exact bound and the DDPM/DDIM samplers against derived answers.

On 1-D Gaussian data x_0 ~ N(m, s^2) everything is known: x_t ~ N(sqrt(ab) m, ab s^2 + 1 - ab), the
optimal noise predictor is E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) m) / (ab s^2 + 1 - ab) and
its squared error is Var(eps | x_t) = ab s^2 / (ab s^2 + 1 - ab).
"""

from __future__ import annotations

import math

import pyro
import pyro.optim
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO

from ppdgm.inference.objectives.denoising import DenoisingLoss, gaussian_kl, variational_bound
from ppdgm.inference.sampling.diffusion import (
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    sample_diffusion,
)
from ppdgm.models import Diffusion

M, S = 0.7, 0.4


class OracleEps(torch.nn.Module):
    """The exact E[eps | x_t] for x_0 ~ N(M, S^2)."""

    def __init__(self, alpha_bar: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("alpha_bar", alpha_bar.clone())

    def forward(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bar[t.long()].to(y.dtype).unsqueeze(-1)
        return (1 - ab).sqrt() * (y - ab.sqrt() * M) / (ab * S**2 + 1 - ab)


def oracle(timesteps: int, **config: object) -> Diffusion:
    proto = Diffusion(x_shape=(1,), timesteps=timesteps, hidden=(2,), **config)
    return Diffusion(proto.config, network=OracleEps(proto.schedule.alpha_bar))


def test_loss_of_the_optimal_denoiser_is_the_posterior_variance_of_the_noise():
    torch.manual_seed(0)
    d = oracle(100)
    x = M + S * torch.randn(200000, 1)
    per_point = DenoisingLoss().per_point(d.model, d.guide, x)
    ab = d.schedule.alpha_bar[1:].double()
    expected = (ab * S**2 / (ab * S**2 + 1 - ab)).mean().item()  # t uniform on 1..T
    assert per_point.mean().item() == pytest.approx(expected, rel=0.02)
    # At one fixed t it is that t's variance, and the sum over the batch is what is returned.
    t = torch.full((200000,), 30)
    at_30 = DenoisingLoss()(d.model, d.guide, x, t=t) / 200000
    ab30 = d.schedule.alpha_bar[30].item()
    assert at_30.item() == pytest.approx(ab30 * S**2 / (ab30 * S**2 + 1 - ab30), rel=0.02)


def test_svi_accepts_the_loss_and_training_lowers_it():
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    d = Diffusion(x_shape=(2,), timesteps=50, hidden=(32, 32))
    x = torch.randn(512, 2) * 0.5 + 1.0
    svi = SVI(d.model, d.guide, pyro.optim.Adam({"lr": 3e-3}), DenoisingLoss())
    losses = [svi.step(x) / len(x) for _ in range(150)]
    assert sum(losses[-20:]) / 20 < 0.8 * sum(losses[:10]) / 10


def test_bound_is_the_sum_of_its_terms_and_the_expectation_of_trace_elbo():
    torch.manual_seed(0)
    d = oracle(6, schedule="cosine")
    x = torch.full((1, 1), 0.3)
    bound = variational_bound(d, x.expand(20000, 1).contiguous(), seed=1)
    assert torch.allclose(bound.total, bound.prior + bound.steps.sum(1) + bound.decoder)
    assert bound.steps.shape == (20000, 5)
    # Trace_ELBO on the full chains estimates the same expectation with sampled log-ratios.
    elbo_loss = Trace_ELBO().loss(d.model, d.guide, x.expand(40000, 1).contiguous()) / 40000
    assert elbo_loss == pytest.approx(bound.total.mean().item(), abs=0.03)
    summary = bound.summary()
    assert summary["bits_per_dim"] == pytest.approx(summary["nats"] / math.log(2), rel=1e-6)


def _expected_bound_of_the_oracle(d: Diffusion) -> float:
    # Every term is Gaussian: E KL = variance mismatch + c0^2 Var(x_0 | x_t) / (2 sigma_t^2).
    sched, T = d.schedule, d.config.timesteps
    ab = sched.alpha_bar.double()
    post_var = S**2 * (1 - ab) / (ab * S**2 + 1 - ab)  # Var(x_0 | x_t)
    var = d.reverse_variance.double()
    total = 0.5 * (ab[T] * (M**2 + S**2) + (1 - ab[T]) - 1 - torch.log(1 - ab[T]))
    for t in range(2, T + 1):
        beta_tilde, c0 = sched.posterior_variance[t].double(), sched.posterior_coef_x0[t].double()
        total += 0.5 * (torch.log(var[t] / beta_tilde) + beta_tilde / var[t] - 1)
        total += c0**2 * post_var[t] / (2 * var[t])
    total += 0.5 * torch.log(2 * math.pi * var[1]) + post_var[1] / (2 * var[1])
    return total.item()


@pytest.mark.parametrize("variance", ["small", "large"])
def test_bound_of_the_optimal_denoiser_matches_its_closed_form_above_the_true_nll(variance):
    torch.manual_seed(0)
    d = oracle(1000, variance=variance).double()
    x = M + S * torch.randn(4000, 1, dtype=torch.float64)
    total = variational_bound(d, x, steps_per_call=250).total
    expected = _expected_bound_of_the_oracle(d)
    assert total.mean().item() == pytest.approx(expected, abs=4 * total.std().item() / math.sqrt(4000))
    entropy = 0.5 * math.log(2 * math.pi * math.e * S**2)  # E[-log p(x)] under the true density
    assert expected > entropy


def test_bound_of_a_model_that_knows_nothing_is_large_and_chunking_does_not_change_it():
    torch.manual_seed(0)
    d = Diffusion(x_shape=(3,), timesteps=40, hidden=(8,))
    x = torch.randn(64, 3) * 3
    a = variational_bound(d, x, steps_per_call=7, seed=5).total
    b = variational_bound(d, x, steps_per_call=40, seed=5).total
    assert torch.allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="x: expected shape"):
        variational_bound(d, torch.zeros(2, 2))


def test_gaussian_kl_matches_torch():
    p = torch.distributions.Normal(torch.tensor(0.3), torch.tensor(0.5))
    q = torch.distributions.Normal(torch.tensor(-0.2), torch.tensor(1.5))
    expected = torch.distributions.kl_divergence(q, p)
    got = gaussian_kl(torch.tensor(-0.2), torch.tensor(1.5**2), torch.tensor(0.3), torch.tensor(0.25))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def _linear_chain_moments(d: Diffusion) -> tuple[float, float]:
    # With the oracle every DDPM step is x_{t-1} = A x_t + B + sigma z: propagate mean and variance.
    mean, var = 0.0, 1.0
    for t in range(d.config.timesteps, 0, -1):
        tt = torch.tensor([t])
        y0, y1 = torch.zeros(1, 1), torch.ones(1, 1)
        b = d.posterior_mean(d.predict(y0, tt)[0], y0, tt).item()
        a = d.posterior_mean(d.predict(y1, tt)[0], y1, tt).item() - b
        noise = d.reverse_variance[t].item() if t > 1 else 0.0
        mean, var = a * mean + b, a * a * var + noise
    return mean, var


def test_ddpm_samples_of_the_optimal_denoiser_have_the_derived_moments():
    d = oracle(1000).double()
    mean, var = _linear_chain_moments(d)
    assert mean == pytest.approx(M, abs=1e-3) and var == pytest.approx(S**2, rel=0.02)
    x = ddpm_sample(d, 20000, seed=0, progress=False)
    assert x.mean().item() == pytest.approx(mean, abs=4 * math.sqrt(var / 20000))
    assert x.var().item() == pytest.approx(var, rel=0.04)


def test_ddim_with_eta_one_and_every_step_is_ddpm():
    d = oracle(200).double()
    a = ddpm_sample(d, 500, seed=3, progress=False)
    b = ddim_sample(d, 500, steps=200, eta=1.0, seed=3, progress=False)
    assert torch.allclose(a, b, atol=1e-5)  # the schedule's buffers are float32
    # ... and statistically, on independent draws.
    a = ddpm_sample(d, 20000, seed=1, progress=False)
    b = ddim_sample(d, 20000, steps=200, eta=1.0, seed=2, progress=False)
    assert a.mean().item() == pytest.approx(b.mean().item(), abs=4 * S * math.sqrt(2 / 20000))
    assert a.std().item() == pytest.approx(b.std().item(), rel=0.03)


def test_ddim_is_deterministic_and_converges_to_the_data_distribution_with_more_steps():
    d = oracle(1000).double()
    stds = {}
    for steps in (50, 1000):
        x = ddim_sample(d, 20000, steps=steps, eta=0.0, seed=0, progress=False)
        stds[steps] = x.std().item()
        assert x.mean().item() == pytest.approx(M, abs=0.015)
    # eta = 0 is deterministic given the initial noise, and with this oracle affine in it.
    x = ddim_sample(d, 20000, steps=50, seed=0, progress=False)
    assert torch.equal(x, ddim_sample(d, 20000, steps=50, seed=0, progress=False))
    torch.manual_seed(0)
    y_T = torch.randn(20000, 1, dtype=torch.float64)
    slope = ((x - x.mean()) * (y_T - y_T.mean())).sum() / ((y_T - y_T.mean()) ** 2).sum()
    assert torch.allclose(x, x.mean() + slope * (y_T - y_T.mean()), atol=1e-6)
    # Coarse steps shrink the spread (first-order discretization); all T steps recover S.
    assert stds[1000] == pytest.approx(S, rel=0.02) and 0.85 * S < stds[50] < stds[1000]


def test_samplers_check_their_arguments_and_follow_the_seed():
    d = Diffusion(x_shape=(2,), timesteps=20, hidden=(8,))
    assert ddim_timesteps(20, 20).tolist() == list(range(20, 0, -1))
    with pytest.raises(ValueError, match="steps: expected at most T = 20"):
        ddim_sample(d, 2, steps=21)
    with pytest.raises(ValueError, match="steps: DDPM takes all T = 20"):
        sample_diffusion(d, 2, sampler="ddpm", steps=10)
    with pytest.raises(ValueError, match="sampler"):
        sample_diffusion(d, 2, sampler="eulr")
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(d, 2, eta=-1.0)
    assert torch.equal(ddpm_sample(d, 3, seed=4), ddpm_sample(d, 3, seed=4))
    seen = []
    ddim_sample(d, 3, steps=4, seed=0, on_step=lambda t, x: seen.append((t, tuple(x.shape))))
    assert [t for t, _ in seen] == [20, 14, 7, 1, 0] and seen[-1][1] == (3, 2)


def test_quantized_samples_are_on_the_grid():
    d = Diffusion(x_shape=(3,), timesteps=10, hidden=(8,), data_shift=0.5, data_scale=0.5, levels=17)
    x = ddim_sample(d, 50, steps=5, seed=0)
    assert torch.allclose(x * 16, (x * 16).round()) and x.min() >= 0 and x.max() <= 1


class MixtureEps(torch.nn.Module):
    """The exact E[eps | x_t] for an equal-weight isotropic Gaussian mixture (normalized units)."""

    def __init__(self, alpha_bar: torch.Tensor, centres: torch.Tensor, var: float) -> None:
        super().__init__()
        self.register_buffer("alpha_bar", alpha_bar.clone())
        self.register_buffer("centres", centres.clone())
        self.var = var

    def forward(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bar[t.long()].to(y.dtype).unsqueeze(-1)
        c = self.centres.to(y.dtype)
        spread = ab * self.var + 1 - ab
        mu = ab.sqrt().unsqueeze(1) * c
        w = (-((y.unsqueeze(1) - mu) ** 2).sum(-1) / (2 * spread)).softmax(-1)
        x0 = c + (ab.sqrt() * self.var / spread).unsqueeze(1) * (y.unsqueeze(1) - mu)
        x0 = (w.unsqueeze(-1) * x0).sum(1)
        return (y - ab.sqrt() * x0) / (1 - ab).sqrt()


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_samplers_with_the_exact_mixture_denoiser_cover_grid25(schedule):
    # What the mode-coverage benchmark asks of a trained model, reached by the exact denoiser:
    # the samplers and the data's normalization are not what stands between a model and it.
    from ppdgm.data import load_dataset
    from ppdgm.inference.coverage import mode_coverage

    ds = load_dataset("grid25", num_train=2000)
    shift, scale = ds.train.mean().item(), ds.train.std().item()
    proto = Diffusion(x_shape=(2,), timesteps=1000, hidden=(2,), schedule=schedule,
                      data_shift=shift, data_scale=scale)
    exact = MixtureEps(proto.schedule.alpha_bar, (ds.centres - shift) / scale, (ds.scale / scale) ** 2)
    d = Diffusion(proto.config, network=exact).double()
    ddpm = mode_coverage(ddpm_sample(d, 1000, seed=0).float(), ds.centres, ds.scale)
    ddim = mode_coverage(ddim_sample(d, 1000, steps=50, seed=0).float(), ds.centres, ds.scale)
    assert ddpm.modes_captured == 25 and ddpm.high_quality >= 0.99
    assert ddim.modes_captured == 25 and ddim.high_quality >= 0.95
