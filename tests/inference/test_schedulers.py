"""diffusers' schedulers driving a ppdgm diffusion model, against ppdgm's own samplers and the
Gaussian oracle whose samples have known moments (see test_denoising.py)."""

from __future__ import annotations

import math

import pytest
import torch

from ppdgm.inference.sampling import schedulers
from ppdgm.inference.sampling.diffusion import ddim_sample, ddpm_sample, sample_diffusion
from ppdgm.inference.sampling.schedulers import make_scheduler, scheduler_sample, scheduler_timesteps
from ppdgm.models import Diffusion

diffusers = pytest.importorskip("diffusers")

M, S = 0.7, 0.4


class OracleEps(torch.nn.Module):
    """The exact E[eps | x_t] for x_0 ~ N(M, S^2); t may be any real in [0, T]."""

    def __init__(self, alpha_bar: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("alpha_bar", alpha_bar.clone())

    def forward(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bar[t.long()].to(y.dtype).unsqueeze(-1)
        return (1 - ab).sqrt() * (y - ab.sqrt() * M) / (ab * S**2 + 1 - ab)


def oracle(timesteps: int) -> Diffusion:
    proto = Diffusion(x_shape=(1,), timesteps=timesteps, hidden=(2,))
    return Diffusion(proto.config, network=OracleEps(proto.schedule.alpha_bar))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("variance", ["small", "large"])
def test_diffusers_ddpm_over_every_step_draws_what_ppdgm_ddpm_draws(prediction, variance):
    torch.manual_seed(0)
    d = Diffusion(x_shape=(3,), timesteps=40, hidden=(16,), prediction=prediction, variance=variance)
    ours = ddpm_sample(d, 64, seed=5, progress=False)
    theirs = scheduler_sample(d, 64, scheduler="diffusers-ddpm", steps=40, seed=5, progress=False)
    # Same noise in the same order; only the float32 rounding of each side's alpha_bar differs.
    assert torch.allclose(ours, theirs, atol=1e-5 if prediction != "eps" else 5e-3)
    assert not torch.allclose(ours, scheduler_sample(d, 64, scheduler="diffusers-ddpm", steps=40,
                                                     seed=6, progress=False), atol=1e-2)


def test_one_diffusers_ddpm_step_is_ppdgms_reverse_step_on_the_same_noise():
    torch.manual_seed(0)
    d = Diffusion(x_shape=(4,), timesteps=100, hidden=(16,))
    sched = make_scheduler(d, "diffusers-ddpm")
    sched.set_timesteps(100)
    y = torch.randn(8, 4)
    for t in (100, 57, 2):
        tt = torch.full((8,), t)
        x0, _ = d.predict(y, tt)
        z = torch.randn(8, 4, generator=torch.Generator().manual_seed(t))
        ours = d.posterior_mean(x0, y, tt) + d.reverse_variance[t].sqrt() * z
        theirs = sched.step(x0, t - 1, y, generator=torch.Generator().manual_seed(t)).prev_sample
        assert torch.allclose(ours, theirs, atol=1e-5), t


def test_diffusers_ddim_over_every_step_is_ppdgm_ddim():
    torch.manual_seed(0)
    d = Diffusion(x_shape=(2,), timesteps=30, hidden=(16,), prediction="x0")
    ours = ddim_sample(d, 32, steps=30, seed=1, progress=False)
    theirs = scheduler_sample(d, 32, scheduler="diffusers-ddim", steps=30, seed=1, progress=False)
    assert torch.allclose(ours, theirs, atol=1e-5)


# With the exact denoiser only the solver's discretization is left: the higher-order solvers are
# close to the data's spread in 20 to 50 steps, first-order Euler needs about as many as DDIM.
@pytest.mark.parametrize("name, steps, rel", [("dpm-solver++", 20, 0.08), ("dpm-solver++", 50, 0.02),
                                              ("unipc", 50, 0.02), ("heun", 50, 0.02),
                                              ("PNDMScheduler", 20, 0.03), ("euler", 200, 0.02)])
def test_few_step_schedulers_recover_the_moments_of_the_gaussian_data(name, steps, rel):
    d = oracle(1000).double()
    x = scheduler_sample(d, 20000, scheduler=name, steps=steps, seed=0, progress=False)
    assert x.mean().item() == pytest.approx(M, abs=4 * S / math.sqrt(20000) + 2e-3)
    assert x.std().item() == pytest.approx(S, rel=rel)


def test_dpm_solver_beats_ddim_at_ten_steps_on_the_gaussian():
    # Both deterministic from the same noise; DDIM's first-order steps shrink the spread.
    d = oracle(1000).double()
    ddim = ddim_sample(d, 20000, steps=10, seed=0, progress=False).std().item()
    dpm = scheduler_sample(d, 20000, scheduler="dpm-solver++", steps=10, seed=0, progress=False).std().item()
    assert abs(dpm - S) < abs(ddim - S)


def test_quantized_models_sample_on_the_data_grid_and_report_each_step():
    torch.manual_seed(0)
    d = Diffusion(x_shape=(2,), timesteps=100, hidden=(8,), levels=5)
    seen = []
    x = scheduler_sample(d, 10, scheduler="dpm-solver++", steps=4, seed=0, progress=False,
                         on_step=lambda t, v: seen.append(t))
    assert torch.equal(x, (x * 4).round() / 4) and x.min() >= 0 and x.max() <= 1
    assert seen == [*scheduler_timesteps(d, "dpm-solver++", 4), 0] and seen[0] == 100


def test_an_instance_keeps_its_options_and_takes_the_models_schedule():
    d = Diffusion(x_shape=(2,), timesteps=50, hidden=(8,), schedule="cosine")
    mine = diffusers.DPMSolverMultistepScheduler(solver_order=3, num_train_timesteps=1000,
                                                 prediction_type="v_prediction")
    sched = make_scheduler(d, mine)
    assert sched.config.solver_order == 3 and sched.config.num_train_timesteps == 50
    assert sched.config.prediction_type == "sample"
    assert torch.allclose(sched.alphas_cumprod.double(), d.schedule.alpha_bar[1:].double(), rtol=1e-5)


def test_bad_schedulers_and_options_are_refused_in_one_line(monkeypatch):
    d = Diffusion(x_shape=(2,), timesteps=20, hidden=(8,))
    with pytest.raises(ValueError, match="sampler: expected 'ddpm', 'ddim', one of 'dpm-solver\\+\\+'"):
        sample_diffusion(d, 2, sampler="dpm-solver")
    with pytest.raises(ValueError, match="sampler: expected"):
        sample_diffusion(d, 2, sampler="SchedulerMixin")  # a diffusers base class, not a scheduler
    with pytest.raises(ValueError, match="fractional timesteps"):
        scheduler_sample(d, 2, scheduler="LMSDiscreteScheduler", steps=7)
    with pytest.raises(ValueError, match="eta: only sampler='ddim'"):
        sample_diffusion(d, 2, sampler="unipc", eta=0.5)
    with pytest.raises(ValueError, match="steps: expected at most T = 20"):
        sample_diffusion(d, 2, sampler="unipc", steps=21)
    with pytest.raises(TypeError, match="scheduler: expected a name or a diffusers scheduler"):
        make_scheduler(d, 3)
    monkeypatch.setattr(schedulers, "diffusers_available", lambda: False)
    with pytest.raises(ImportError, match=r"pip install 'ppdgm\[diffusers\]'"):
        sample_diffusion(d, 2, sampler="unipc")
    assert sample_diffusion(d, 2, sampler="ddim", steps=3, seed=0).shape == (2, 2)
