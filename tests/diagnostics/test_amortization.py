"""The amortization-gap diagnostic on a VAE whose posterior is Gaussian and known exactly."""

import pytest
import torch
from torch import nn

from ppdgm.diagnostics.amortization import amortization_gap, plot_amortization_gap
from ppdgm.models import VAE

SIGMA = 0.5
W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # orthogonal columns: a diagonal posterior


def _linear_gaussian_vae():
    torch.manual_seed(0)
    vae = VAE(x_shape=(3,), z_dim=2, hidden=(), likelihood="gaussian", obs_scale=SIGMA)
    linear = next(m for m in vae.decoder.modules() if isinstance(m, nn.Linear))
    with torch.no_grad():
        linear.weight.copy_(W)
        linear.bias.zero_()
    return vae


def _exact_posterior(x):
    precision = 1.0 + (W**2).sum(0) / SIGMA**2  # diag of I + W^T W / sigma^2
    loc = (x @ W) / SIGMA**2 / precision
    return loc, precision.rsqrt().expand_as(loc)


def _kl(loc_a, scale_a, loc_b, scale_b):
    """KL(N(a) || N(b)) for diagonal Gaussians, summed over coordinates."""
    ratio = (scale_a / scale_b) ** 2
    return 0.5 * (ratio + ((loc_a - loc_b) / scale_b) ** 2 - 1 - ratio.log()).sum(-1)


def test_gaps_match_the_exact_posterior():
    vae = _linear_gaussian_vae()
    x = torch.tensor([[1.0, 2.0, 0.3], [-1.0, 0.5, -0.2]])
    gap = amortization_gap(vae, x, num_samples=300, warmup_steps=150, num_is=4000, optimal_steps=300)
    loc, scale = _exact_posterior(x)
    # The per-point optimal Gaussian is the exact posterior, so nothing is left to approximate.
    torch.testing.assert_close(gap.optimal_loc, loc, atol=0.05, rtol=0)
    torch.testing.assert_close(gap.optimal_scale, scale, atol=0.03, rtol=0)
    assert gap.approximation_gap.abs().max() < 0.05
    # The untrained encoder's whole loss is the amortization gap, KL(q_enc || posterior) exactly.
    exact_kl = _kl(gap.encoder_loc, gap.encoder_scale, loc, scale).double()
    assert (exact_kl > 0.5).all()
    slack = 0.02 * exact_kl.max().item()
    torch.testing.assert_close(gap.inference_gap, exact_kl, atol=0.05 + slack, rtol=0)
    torch.testing.assert_close(gap.amortization_gap, exact_kl, atol=0.1 + slack, rtol=0)
    # The forward KL from the NUTS draws: noisier (300 x 2 correlated draws), hence the looser bound.
    forward = _kl(loc, scale, gap.encoder_loc, gap.encoder_scale).double()
    assert ((gap.forward_kl - forward).abs() < 0.15 * forward + 0.2).all()
    posterior_mean = gap.posterior.mean((0, 1))
    torch.testing.assert_close(posterior_mean, loc, atol=4 * scale.max().item() / gap.ess.min().item() ** 0.5,
                               rtol=0)
    assert (gap.rhat < 1.1).all()
    idata = gap.to_inference_data()
    assert dict(idata.posterior.sizes) == {"chain": 2, "draw": 300, "obs": 2, "z_dim_0": 2}


def test_plot_and_input_errors(tmp_path):
    vae = _linear_gaussian_vae()
    x = torch.tensor([[1.0, 2.0, 0.3]])
    gap = amortization_gap(vae, x, num_samples=20, warmup_steps=20, num_chains=1, num_is=100, optimal_steps=5)
    assert plot_amortization_gap(gap, tmp_path / "gap.png").stat().st_size > 0
    with pytest.raises(TypeError, match="vae: expected a ppdgm.models.VAE"):
        amortization_gap(object(), x)
    with pytest.raises(ValueError, match="x: expected a batch"):
        amortization_gap(vae, torch.ones(3))
    with pytest.raises(ValueError, match="num_chains"):
        amortization_gap(vae, x, num_chains=0)
