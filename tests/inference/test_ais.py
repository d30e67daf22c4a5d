"""AIS for the RBM's log Z against the exact enumeration, and the log-likelihood built on it."""

import math

import pytest
import torch
import torch.nn.functional as F

from ppdgm.inference.ais import (
    AISResult,
    ais_log_partition,
    base_rate_visible_bias,
    default_betas,
    rbm_log_likelihood,
)
from ppdgm.models.rbm import RBM


def _random_rbm(visible=10, hidden=6, scale=1.0, seed=0):
    torch.manual_seed(seed)
    rbm = RBM(visible=visible, hidden=hidden)
    with torch.no_grad():
        rbm.weight.normal_(0.0, scale)
        rbm.visible_bias.normal_(0.0, scale)
        rbm.hidden_bias.normal_(0.0, scale)
    return rbm


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_ais_log_z_is_within_a_few_stderr_of_the_exact_one(compile):
    rbm = _random_rbm()
    exact = rbm.log_partition_exact().item()
    result = ais_log_partition(rbm, num_runs=100, betas=1000, seed=0, compile=compile)
    assert isinstance(result, AISResult) and result.log_weights.shape == (100,)
    assert result.log_z_stderr < 0.03
    assert abs(result.log_z - exact) < max(4 * result.log_z_stderr, 0.01)
    assert abs(result.log_z - exact) < 0.05
    assert result.log_z_lower < exact < result.log_z_upper


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_a_one_step_schedule_is_plain_importance_sampling_from_the_base_rate(compile):
    rbm = _random_rbm(visible=5, hidden=3)
    b_a = torch.linspace(-1.0, 1.0, 5)
    result = ais_log_partition(rbm, num_runs=50, betas=1, base_visible_bias=b_a, seed=3,
                               compile=compile)
    # The same draws v ~ p_A by hand; w = p~_B(v) / p~_A(v), with p~_A(v) = exp(b_A.v) 2^H.
    v = torch.bernoulli(torch.sigmoid(b_a).expand(50, -1), generator=torch.Generator().manual_seed(3))
    by_hand = -rbm.free_energy(v).detach() - v @ b_a - 3 * math.log(2.0)
    torch.testing.assert_close(result.log_weights.float(), by_hand, rtol=0, atol=1e-5)
    assert result.log_z_base == pytest.approx(F.softplus(b_a).sum().item() + 3 * math.log(2.0), abs=1e-6)


def test_the_weights_are_unbiased_for_z_and_their_log_is_biased_low():
    rbm = _random_rbm(seed=1)
    exact = rbm.log_partition_exact().item()
    # A coarse schedule makes the weights vary: E[w] Z_A = Z still (unbiased), but
    # E[log w] + log Z_A = log Z - KL(forward || backward) < log Z.
    result = ais_log_partition(rbm, num_runs=4000, betas=10, seed=0)
    assert result.log_weights.std().item() > 0.3  # the weights do vary here (seeds 0-4: 0.62)
    assert abs(result.log_z - exact) < 3 * result.log_z_stderr
    mean_log_w = result.log_weights.mean().item() + result.log_z_base
    spread = result.log_weights.std().item() / math.sqrt(4000)
    assert mean_log_w < exact - 5 * spread  # seeds 0-4: 0.19 below, 19 spreads


def test_a_data_based_base_rate_and_explicit_betas():
    rbm = _random_rbm(seed=2, scale=0.7)
    data = rbm.sample(200, steps=50, generator=torch.Generator().manual_seed(0))
    b_a = base_rate_visible_bias(data)
    torch.testing.assert_close(torch.sigmoid(b_a), (data.sum(0) + 1) / 202)
    exact = rbm.log_partition_exact().item()
    result = ais_log_partition(rbm, num_runs=100, betas=300, base_visible_bias=b_a, seed=1)
    assert abs(result.log_z - exact) < 0.05
    # An int K is the uniform grid of K steps: the same schedule as a tensor gives the same run.
    same = ais_log_partition(rbm, num_runs=100, betas=torch.linspace(0, 1, 301, dtype=torch.float64),
                             base_visible_bias=b_a, seed=1)
    assert same.log_z == result.log_z


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_seeded_runs_repeat_and_leave_the_global_rng_alone(compile):
    rbm = _random_rbm(visible=4, hidden=3)
    state = torch.get_rng_state()
    a = ais_log_partition(rbm, num_runs=10, betas=20, seed=5, compile=compile)
    b = ais_log_partition(rbm, num_runs=10, betas=20, generator=torch.Generator().manual_seed(5),
                          compile=compile)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.log_weights, b.log_weights)
    torch.manual_seed(0)
    c = ais_log_partition(rbm, num_runs=10, betas=20, seed=None)
    assert not torch.equal(torch.get_rng_state(), state) and c.log_weights.shape == (10,)


def test_default_schedule_is_salakhutdinov_and_murrays():
    betas = default_betas()
    steps = betas.diff()
    assert len(betas) == 14501 and betas[0] == 0 and betas[-1] == 1 and bool((steps > 0).all())
    assert steps[0].item() == pytest.approx(1e-3) and steps[1000].item() == pytest.approx(1e-4)
    assert steps[-1].item() == pytest.approx(1e-5)


def test_log_likelihood_from_log_z():
    rbm = _random_rbm(visible=6, hidden=4)
    data = rbm.sample(30, steps=20, generator=torch.Generator().manual_seed(0))
    log_z = rbm.log_partition_exact()
    est = rbm_log_likelihood(rbm, data, log_z, batch_size=7)
    per_point = rbm.log_prob(data, log_z).detach().double()
    assert est.n == 30 and est.mean == pytest.approx(per_point.mean().item(), abs=1e-5)
    assert est.stderr == pytest.approx(per_point.std().item() / math.sqrt(30), rel=1e-4)
    result = AISResult(log_z.item(), 0.0, log_z.item(), log_z.item(), 0.0, torch.zeros(1))
    assert rbm_log_likelihood(rbm, data, result).mean == pytest.approx(est.mean, abs=1e-6)


def test_bad_arguments_name_what_is_wrong():
    rbm = RBM(visible=4, hidden=2)
    with pytest.raises(TypeError, match="rbm: expected a ppdgm.models.rbm.RBM"):
        ais_log_partition(rbm.model)
    with pytest.raises(ValueError, match="num_runs: expected an int >= 1, got 0"):
        ais_log_partition(rbm, num_runs=0)
    with pytest.raises(ValueError, match="betas: expected an int >= 1, got 0"):
        ais_log_partition(rbm, betas=0)
    with pytest.raises(ValueError, match="betas: expected an increasing schedule from 0 to 1"):
        ais_log_partition(rbm, betas=torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="betas: expected strictly increasing"):
        ais_log_partition(rbm, betas=torch.tensor([0.0, 0.6, 0.4, 1.0]))
    with pytest.raises(TypeError, match="betas: expected None, an int"):
        ais_log_partition(rbm, betas=[0.0, 1.0])
    with pytest.raises(ValueError, match=r"base_visible_bias: expected shape \(4,\), got \(3,\)"):
        ais_log_partition(rbm, base_visible_bias=torch.zeros(3))
    with pytest.raises(TypeError, match="seed: expected an int or None"):
        ais_log_partition(rbm, betas=2, seed=1.5)
    with pytest.raises(TypeError, match="compile: expected True or False"):
        ais_log_partition(rbm, betas=2, compile="inductor")
    with pytest.raises(ValueError, match="data: a Bernoulli likelihood needs values in"):
        base_rate_visible_bias(torch.full((3, 4), 0.5))
    with pytest.raises(ValueError, match="pseudocount: expected a finite number > 0"):
        base_rate_visible_bias(torch.zeros(3, 4), pseudocount=0.0)
    with pytest.raises(ValueError, match=r"data: expected shape \(batch, 4\)"):
        rbm_log_likelihood(rbm, torch.zeros(3, 5), 1.0)
    with pytest.raises(ValueError, match="log_z: expected a finite number, got nan"):
        rbm_log_likelihood(rbm, torch.zeros(3, 4), float("nan"))
    with pytest.raises(TypeError, match="log_z: expected a number, a 0-dim tensor or an AISResult"):
        rbm_log_likelihood(rbm, torch.zeros(3, 4), "1.0")


def test_runs_on_the_test_device(device):
    rbm = _random_rbm(visible=6, hidden=4, scale=0.5).to(device)
    result = ais_log_partition(rbm, num_runs=20, betas=30, seed=0)
    assert result.log_weights.device.type == device.type
    assert abs(result.log_z - rbm.log_partition_exact().item()) < 0.1
    data = torch.ones(3, 6, device=device)
    assert math.isfinite(rbm_log_likelihood(rbm, data, result).mean)
    b_a = base_rate_visible_bias(data)
    assert ais_log_partition(rbm, num_runs=5, betas=5, base_visible_bias=b_a).log_weights.shape == (5,)
