"""The diffusion model's schedule, chains and decoder against closed forms."""

from __future__ import annotations

import math

import pyro.poutine as poutine
import pytest
import scipy.stats
import torch
from pyro.infer import Predictive
from pyro.poutine.util import site_is_subsample

from ppdgm.models import Diffusion, DiffusionConfig
from ppdgm.models.diffusion import NOISY, PREDICTION, STEP, TARGET, chain_site
from ppdgm.models.diffusion_schedule import NoiseSchedule, cosine_betas, linear_betas, make_betas
from ppdgm.models.discretized import DiscretizedNormal, log_normal_mass


def test_linear_schedule_is_ho_et_al_and_scales_with_t():
    b = linear_betas(1000)
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02)
    assert linear_betas(100)[-1].item() == pytest.approx(0.2)
    assert linear_betas(10)[-1].item() == pytest.approx(0.999)  # 2.0 scaled, capped


def test_cosine_schedule_follows_its_alpha_bar():
    T, s = 50, 0.008
    ab = torch.cumprod(1 - cosine_betas(T), 0)
    f = [math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    expected = torch.tensor([f[t] / f[0] for t in range(1, T + 1)], dtype=torch.float64)
    assert torch.allclose(ab[:-1], expected[:-1], rtol=1e-9)  # the last beta is clipped


def test_schedule_buffers_match_the_forward_posterior_by_gaussian_conditioning():
    betas = make_betas("cosine", 30)
    sched = NoiseSchedule(betas).double()
    ab = torch.cumprod(1 - betas, 0)
    for t in (2, 10, 30):
        ab_t, ab_prev, alpha = ab[t - 1], ab[t - 2], 1 - betas[t - 1]
        # (x_{t-1}, x_t) | x_0 is jointly Gaussian; condition x_{t-1} on x_t.
        var_prev, var_t, cov = 1 - ab_prev, 1 - ab_t, alpha.sqrt() * (1 - ab_prev)
        gain = cov / var_t
        assert sched.posterior_variance[t].item() == pytest.approx((var_prev - gain * cov).item(), rel=1e-5)
        assert sched.posterior_coef_xt[t].item() == pytest.approx(gain.item(), rel=1e-5)
        # mean = sqrt(ab_prev) x0 + gain (x_t - sqrt(ab_t) x0)
        coef_x0 = ab_prev.sqrt() - gain * ab_t.sqrt()
        assert sched.posterior_coef_x0[t].item() == pytest.approx(coef_x0.item(), rel=1e-5)
    assert sched.alpha_bar[0].item() == 1 and sched.timesteps == 30


def test_forward_chain_marginals_match_q_xt_given_x0():
    torch.manual_seed(1)
    d = Diffusion(x_shape=(1,), timesteps=20, schedule="cosine", hidden=(8,))
    x0 = torch.full((20000, 1), 1.5)
    trace = poutine.trace(d.guide).get_trace(x0)
    for t in (1, 7, 20):
        ab = d.schedule.alpha_bar[t].item()
        xt = trace.nodes[chain_site(t)]["value"]
        assert xt.mean().item() == pytest.approx(math.sqrt(ab) * 1.5, abs=0.02)
        assert xt.var().item() == pytest.approx(1 - ab, rel=0.04, abs=2e-4)
    # The one-step form draws the same marginal in closed form.
    step = poutine.trace(d.guide).get_trace(x0, step=True, t=torch.full((20000,), 7))
    ab = d.schedule.alpha_bar[7].item()
    assert step.nodes[NOISY]["value"].mean().item() == pytest.approx(math.sqrt(ab) * 1.5, abs=0.02)
    assert step.nodes[NOISY]["value"].var().item() == pytest.approx(1 - ab, rel=0.04)


def test_forward_chain_posterior_matches_the_schedules_by_regression():
    torch.manual_seed(2)
    d = Diffusion(x_shape=(1,), timesteps=10, hidden=(8,), schedule="cosine")
    trace = poutine.trace(d.guide).get_trace(torch.zeros(40000, 1))
    t = 6
    prev, cur = trace.nodes[chain_site(t - 1)]["value"][:, 0], trace.nodes[chain_site(t)]["value"][:, 0]
    slope = torch.cov(torch.stack([prev, cur]))[0, 1] / cur.var()
    resid = prev - slope * cur
    assert slope.item() == pytest.approx(d.schedule.posterior_coef_xt[t].item(), rel=0.03)
    assert resid.var().item() == pytest.approx(d.schedule.posterior_variance[t].item(), rel=0.03)


def test_full_chains_have_one_site_per_step_and_generate():
    d = Diffusion(x_shape=(2,), timesteps=4, hidden=(8,))
    x = torch.randn(3, 2)
    guide = poutine.trace(d.guide).get_trace(x)
    model = poutine.trace(poutine.replay(d.model, trace=guide)).get_trace(x)
    latents = [chain_site(t) for t in range(1, 5)]
    assert _sample_sites(guide) == latents
    names = _sample_sites(model)
    assert names == [*reversed(latents), "x"] and model.nodes["x"]["is_observed"]
    draws = Predictive(d.model, num_samples=2, parallel=False)(None, num_samples=5)
    assert draws["x"].shape == (2, 5, 2) and draws["x_4"].shape == (2, 5, 2)


def _sample_sites(trace):
    return [n for n, s in trace.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)]


def test_step_form_records_prediction_and_target_for_each_parameterization():
    torch.manual_seed(0)
    x = torch.randn(6, 2)
    t = torch.tensor([1, 2, 3, 5, 8, 10])
    for prediction in ("eps", "x0", "v"):
        d = Diffusion(x_shape=(2,), timesteps=10, hidden=(8,), prediction=prediction)
        guide = poutine.trace(d.guide).get_trace(x, step=True, t=t)
        model = poutine.trace(poutine.replay(d.model, trace=guide)).get_trace(x, step=True, t=t)
        assert torch.equal(model.nodes[STEP]["value"], t)
        x_t = guide.nodes[NOISY]["value"]
        assert torch.equal(model.nodes[NOISY]["value"], x_t)
        a = d.schedule.sqrt_alpha_bar[t].unsqueeze(-1)
        s = d.schedule.sqrt_one_minus_alpha_bar[t].unsqueeze(-1)
        eps = (x_t - a * x) / s
        expected = {"eps": eps, "x0": x, "v": a * eps - s * x}[prediction]
        assert torch.allclose(model.nodes[TARGET]["value"], expected, atol=1e-5)
        assert model.nodes[PREDICTION]["value"].shape == (6, 2)


def test_predict_converts_between_parameterizations_consistently():
    torch.manual_seed(0)
    y, t = torch.randn(5, 2), torch.tensor([1, 3, 5, 7, 9])
    d = Diffusion(x_shape=(2,), timesteps=10, hidden=(8,), prediction="eps")
    x0, eps = d.predict(y, t)
    a = d.schedule.sqrt_alpha_bar[t].unsqueeze(-1)
    s = d.schedule.sqrt_one_minus_alpha_bar[t].unsqueeze(-1)
    assert torch.allclose(a * x0 + s * eps, y, atol=1e-5)  # x_t = a x0 + s eps, always
    v = a * eps - s * x0
    # The same network read as an x0- or v-predictor gives back the same pair.
    for kind, out in (("x0", x0), ("v", v)):
        other = Diffusion(x_shape=(2,), timesteps=10, prediction=kind,
                          network=_Constant(out))
        x0_k, eps_k = other.predict(y, t)
        assert torch.allclose(x0_k, x0, atol=1e-4) and torch.allclose(eps_k, eps, atol=1e-4)


class _Constant(torch.nn.Module):
    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("value", value)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.value


def test_decoder_is_in_data_units_and_discretized_for_quantized_data():
    d = Diffusion(x_shape=(1, 4, 4), timesteps=10, denoiser="unet", channels=8, multipliers=(1, 2),
                  time_dim=16, data_shift=0.5, data_scale=0.5, levels=2)
    dec = d.decoder(torch.zeros(3, 1, 4, 4))
    assert isinstance(dec, DiscretizedNormal) and dec.loc.shape == (3, 1, 4, 4)
    x = torch.randint(0, 2, (3, 1, 4, 4)).float()
    assert torch.isfinite(dec.log_prob(x)).all() and (dec.log_prob(x) <= 0).all()
    assert set(d.sample(2).unique().tolist()) <= {0.0, 1.0}


def test_discretized_normal_is_a_distribution_over_its_grid():
    loc, scale = torch.tensor([0.3, -2.0, 0.97]), torch.tensor([0.2, 0.5, 0.01])
    d = DiscretizedNormal(loc, scale, levels=17)
    grid = torch.linspace(0, 1, 17).unsqueeze(-1).expand(17, 3)
    total = d.log_prob(grid).exp().sum(0)
    assert torch.allclose(total, torch.ones(3), atol=1e-5)
    binary = DiscretizedNormal(torch.tensor(0.2), torch.tensor(0.1), levels=2)
    p1 = torch.special.ndtr(torch.tensor(-3.0, dtype=torch.float64))  # P(N(0.2, 0.1^2) > 0.5)
    assert binary.log_prob(torch.tensor(1.0)).exp().item() == pytest.approx(p1.item(), rel=1e-5)
    # Far in a tail, where Phi(u) - Phi(l) underflows in float32, the log stays accurate.
    exact = math.log(scipy.stats.norm.sf(20.0) - scipy.stats.norm.sf(21.0))
    got = log_normal_mass(torch.tensor([20.0]), torch.tensor([21.0]))
    assert got.item() == pytest.approx(exact, rel=1e-5)


def test_config_and_inputs_are_checked_with_the_arguments_name():
    with pytest.raises(ValueError, match="prediction"):
        DiffusionConfig(prediction="score").validate()
    with pytest.raises(ValueError, match="x_shape"):
        DiffusionConfig(x_shape=(2,), denoiser="unet").validate()
    with pytest.raises(ValueError, match="data_scale"):
        DiffusionConfig(data_scale=0.0).validate()
    d = Diffusion(x_shape=(2,), timesteps=5, hidden=(8,))
    with pytest.raises(ValueError, match="t: expected timesteps in 1..5"):
        poutine.trace(d.guide).get_trace(torch.zeros(2, 2), step=True, t=torch.tensor([0, 6]))
    with pytest.raises(ValueError, match="x: expected shape"):
        d.guide(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="x: the forward chain"):
        d.guide(None, num_samples=2)


def test_a_network_compiled_in_place_trains_as_the_denoiser():
    # torch.compile(net) returns a wrapper Pyro cannot convert; net.compile() keeps the module.
    from ppdgm.inference import Engine, TrainConfig
    from ppdgm.inference.objectives.denoising import DenoisingLoss
    from ppdgm.models.denoisers import DenoisingMLP

    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = DenoisingMLP(2, (16,), time_dim=8)

        def forward(self, x, t):
            return self.net(x, t)

    net = Flat()
    net.compile()
    d = Diffusion(x_shape=(2,), timesteps=10, network=net)
    before = {k: v.clone() for k, v in d.denoiser.state_dict().items()}
    engine = Engine(d.model, d.guide, DenoisingLoss(),
                    config=TrainConfig(epochs=2, batch_size=32, device="cpu", progress=False))
    history = engine.fit(torch.randn(64, 2))
    assert math.isfinite(history.last())
    assert any(name.startswith("denoiser.net.") for name in engine.parameters())
    assert any(not torch.equal(before[k], v) for k, v in d.denoiser.state_dict().items())
