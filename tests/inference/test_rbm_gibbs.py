"""Block Gibbs on an RBM: its draws follow the exact p(v), under pyro.infer.MCMC and ArviZ."""

import itertools

import pyro
import pytest
import torch
from pyro.infer import MCMC

from ppdgm.diagnostics import to_inference_data
from ppdgm.inference.mcmc.rbm_gibbs import RBMGibbs, gibbs_step, sample_hidden, sample_visible
from ppdgm.models.rbm import RBM, hidden_logits


def _all_binary(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))


def _codes(v):
    bits = 2 ** torch.arange(v.shape[-1] - 1, -1, -1, dtype=v.dtype)
    return (v * bits).sum(-1).long()


@pytest.fixture
def rbm():
    torch.manual_seed(3)
    machine = RBM(visible=4, hidden=3)
    with torch.no_grad():
        machine.weight.normal_(0.0, 1.0)
        machine.visible_bias.normal_(0.0, 1.0)
        machine.hidden_bias.normal_(0.0, 1.0)
    return machine


def test_pure_steps_draw_from_the_conditionals(rbm):
    W, b, c = rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach()
    v = torch.tensor([1.0, 0.0, 1.0, 0.0]).expand(40000, 4)
    h = sample_hidden(v, W, c, torch.Generator().manual_seed(0))
    # 40000 draws of a Bernoulli mean: standard error <= 0.0025, so 0.012 is ~5 sigma.
    torch.testing.assert_close(h.mean(0), torch.sigmoid(hidden_logits(v[0], W, c)), atol=0.012, rtol=0)
    hs = torch.tensor([0.0, 1.0, 1.0]).expand(40000, 3)
    vs = sample_visible(hs, W, b, torch.Generator().manual_seed(0))
    torch.testing.assert_close(vs.mean(0), torch.sigmoid(b + W @ hs[0]), atol=0.012, rtol=0)
    new_v, used_h = gibbs_step(v[:5], W, b, c, torch.Generator().manual_seed(1))
    assert new_v.shape == (5, 4) and used_h.shape == (5, 3)


def test_vectorized_chains_under_mcmc_match_the_exact_marginal(rbm):
    pyro.set_rng_seed(0)
    kernel = RBMGibbs(rbm, chains=200)
    mcmc = MCMC(kernel, num_samples=200, warmup_steps=20, disable_progbar=True)
    mcmc.run(None, 1)
    samples = mcmc.get_samples()
    assert samples["v"].shape == (200, 200, 1, 4) and samples["h"].shape == (200, 200, 1, 3)
    empirical = torch.bincount(_codes(samples["v"]).flatten(), minlength=16).double()
    empirical /= empirical.sum()
    exact = rbm.log_prob(_all_binary(4)).exp().detach().double()
    # 40000 draws over 16 cells. Independent draws would give an expected total variation of
    # sum_i sqrt(p_i (1 - p_i) / (2 pi N)) = 0.0065 here; consecutive sweeps of one chain are
    # correlated (flip rates ~0.3), which at most halves the effective size and multiplies that
    # by ~1.4 (seeds 0-9 give 0.005-0.0095). 0.03 is more than three times the mean.
    assert 0.5 * (empirical - exact).abs().sum().item() < 0.03
    # The joint (v, h) pairs are draws of p(v, h): h's marginal given v is the exact one.
    v, h = samples["v"].reshape(-1, 4), samples["h"].reshape(-1, 3)
    p_h = torch.sigmoid(hidden_logits(v, rbm.weight.detach(), rbm.hidden_bias.detach()))
    torch.testing.assert_close(h.mean(0), p_h.mean(0), atol=0.02, rtol=0)
    flips = mcmc.diagnostics()["flip rate"]["chain 0"]
    assert set(flips) == {"v", "h"} and all(0.05 < rate < 0.95 for rate in flips.values())
    assert kernel.model == rbm.model


def test_arviz_reads_the_runs():
    pyro.set_rng_seed(1)
    rbm = RBM(visible=4, hidden=2, init_scale=1.0)
    mcmc = MCMC(RBMGibbs(rbm), num_samples=30, warmup_steps=5, disable_progbar=True)
    mcmc.run(None, 3)
    data = to_inference_data(mcmc)
    assert data.posterior["v"].shape == (1, 30, 3, 4)
    assert not bool(data.sample_stats["diverging"].any())
    # Vectorized chains are folded into ArviZ's chain dimension.
    mcmc = MCMC(RBMGibbs(rbm, chains=5), num_samples=30, warmup_steps=5, disable_progbar=True)
    mcmc.run(None, 3)
    data = to_inference_data(mcmc)
    assert data.posterior["h"].shape == (5, 30, 3, 2)


def test_observed_visible_samples_the_exact_posterior(rbm):
    pyro.set_rng_seed(2)
    x = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    mcmc = MCMC(RBMGibbs(rbm, chains=50, observed_visible=True), num_samples=100, warmup_steps=0,
                disable_progbar=True)
    mcmc.run(x)
    h = mcmc.get_samples()["h"]
    assert set(mcmc.get_samples()) == {"h"} and h.shape == (100, 50, 2, 3)
    exact = torch.sigmoid(hidden_logits(x, rbm.weight.detach(), rbm.hidden_bias.detach()))
    # 5000 independent draws per unit: standard error <= 0.007.
    torch.testing.assert_close(h.mean((0, 1)), exact, atol=0.035, rtol=0)


def test_observed_visible_run_converts_with_arviz(rbm):
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    mcmc = MCMC(RBMGibbs(rbm, observed_visible=True), num_samples=10, warmup_steps=0,
                disable_progbar=True)
    mcmc.run(x)
    data = to_inference_data(mcmc)
    assert data.posterior["h"].shape == (1, 10, 1, 3)
    assert "v" in data.observed_data


def test_bad_kernel_arguments(rbm):
    with pytest.raises(TypeError, match="rbm: expected a ppdgm.models.rbm.RBM"):
        RBMGibbs(rbm.model)
    with pytest.raises(ValueError, match="chains: expected an int >= 1"):
        RBMGibbs(rbm, chains=0)
    with pytest.raises(TypeError, match="observed_visible: expected a bool"):
        RBMGibbs(rbm, observed_visible=1)
    with pytest.raises(ValueError, match=r"num_samples: .*mcmc.run\(None, n\)"):
        RBMGibbs(rbm).setup(0)
    with pytest.raises(ValueError, match=r"x: RBMGibbs\(observed_visible=False\) samples v itself"):
        RBMGibbs(rbm).setup(0, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"x: RBMGibbs\(observed_visible=True\) samples h"):
        RBMGibbs(rbm, observed_visible=True).setup(0, None, 3)
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 4\)"):
        RBMGibbs(rbm, observed_visible=True).setup(0, torch.zeros(2, 5))
    with pytest.raises(TypeError, match="args: RBMGibbs takes rbm.model's arguments"):
        RBMGibbs(rbm).setup(0, None, 2, steps=3)
    with pytest.raises(RuntimeError, match="initial_params: call setup"):
        _ = RBMGibbs(rbm).initial_params


def test_runs_on_the_test_device(device):
    rbm = RBM(visible=4, hidden=2, init_scale=1.0).to(device)
    mcmc = MCMC(RBMGibbs(rbm, chains=3), num_samples=5, warmup_steps=2, disable_progbar=True)
    mcmc.run(None, 2)
    assert mcmc.get_samples()["v"].device.type == device.type
    x = torch.ones(2, 4, device=device)
    mcmc = MCMC(RBMGibbs(rbm, observed_visible=True), num_samples=5, warmup_steps=0,
                disable_progbar=True)
    mcmc.run(x)
    assert mcmc.get_samples()["h"].device.type == device.type
