"""The RBM: energy and free energy against enumeration, the exact log Z, the Pyro program."""

import dataclasses
import itertools
import math

import pyro
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import Trace_ELBO

from ppdgm._pyro import local_params
from ppdgm.models import MODELS, RBM, RBMConfig, build_model
from ppdgm.models.rbm import (
    ENERGY,
    HIDDEN,
    VISIBLE,
    energy,
    free_energy,
    hidden_logits,
    visible_logits,
)


def _all_binary(n, dtype=torch.float64):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=dtype)


def _random_rbm(visible, hidden, scale=1.0, seed=0):
    torch.manual_seed(seed)
    rbm = RBM(visible=visible, hidden=hidden).double()
    with torch.no_grad():
        rbm.weight.normal_(0.0, scale)
        rbm.visible_bias.normal_(0.0, scale)
        rbm.hidden_bias.normal_(0.0, scale)
    return rbm


def _params(rbm):
    return rbm.weight, rbm.visible_bias, rbm.hidden_bias


def test_free_energy_is_minus_log_sum_over_hidden_states():
    rbm = _random_rbm(5, 4)
    vs, hs = _all_binary(5), _all_binary(4)
    # E for every (v, h) pair by broadcasting: (32, 1, 5) with (16, 4) -> (32, 16).
    e = energy(vs[:, None, :], hs, *_params(rbm))
    torch.testing.assert_close(free_energy(vs, *_params(rbm)), -torch.logsumexp(-e, dim=1))
    torch.testing.assert_close(rbm.free_energy(vs), -torch.logsumexp(-e, dim=1))
    torch.testing.assert_close(rbm.log_unnormalized(vs), torch.logsumexp(-e, dim=1))


def test_energy_matches_its_definition_elementwise():
    rbm = _random_rbm(3, 2)
    W, b, c = _params(rbm)
    v, h = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    by_hand = -sum(v[i] * W[i, j] * h[j] for i in range(3) for j in range(2)) - v @ b - h @ c
    torch.testing.assert_close(energy(v, h, W, b, c), by_hand)


@pytest.mark.parametrize("visible,hidden", [(5, 4), (4, 5), (3, 3)])
def test_log_partition_exact_matches_brute_force_over_all_pairs(visible, hidden):
    rbm = _random_rbm(visible, hidden, seed=visible + 10 * hidden)
    vs, hs = _all_binary(visible), _all_binary(hidden)
    brute = torch.logsumexp((-energy(vs[:, None, :], hs, *_params(rbm))).flatten(), dim=0)
    torch.testing.assert_close(rbm.log_partition_exact(), brute)
    assert rbm.log_prob(vs).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


def test_log_partition_exact_over_several_chunks_and_its_gradient():
    from ppdgm.models import rbm as rbm_module

    rbm = _random_rbm(6, 9, scale=0.3)
    log_z = rbm.log_partition_exact()
    original = rbm_module._ENUM_CHUNK
    rbm_module._ENUM_CHUNK = 5  # 64 states in 13 uneven blocks
    try:
        torch.testing.assert_close(rbm.log_partition_exact(), log_z)
    finally:
        rbm_module._ENUM_CHUNK = original
    # d log Z / d b = E_p[v]: the gradient is the model's visible marginals.
    vs = _all_binary(6)
    p = rbm.log_prob(vs, log_z.detach()).exp()
    (grad_b,) = torch.autograd.grad(log_z, rbm.visible_bias)
    torch.testing.assert_close(grad_b, (p[:, None] * vs).sum(0).detach())


def test_conditionals_are_ratios_of_the_joint():
    rbm = _random_rbm(3, 2)
    W, b, c = _params(rbm)
    vs, hs = _all_binary(3), _all_binary(2)
    log_joint = -energy(vs[:, None, :], hs, W, b, c)  # (8, 4)
    p_h1 = torch.sigmoid(hidden_logits(vs, W, c))  # (8, 2)
    for j in range(2):
        on = torch.logsumexp(log_joint[:, hs[:, j] == 1], 1) - torch.logsumexp(log_joint, 1)
        torch.testing.assert_close(p_h1[:, j], on.exp())
    p_v1 = torch.sigmoid(visible_logits(hs, W, b))  # (4, 3)
    for i in range(3):
        on = torch.logsumexp(log_joint[vs[:, i] == 1], 0) - torch.logsumexp(log_joint, 0)
        torch.testing.assert_close(p_v1[:, i], on.exp())


def test_model_trace_is_the_energy_plus_a_constant_and_broadcasts_over_chains():
    rbm = _random_rbm(4, 3)
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    h = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    with local_params():
        trace = poutine.trace(poutine.condition(rbm.model, data={HIDDEN: h})).get_trace(x)
    trace.compute_log_prob()
    assert {VISIBLE, HIDDEN, ENERGY} <= set(trace.nodes)
    constant = -(4 + 3) * math.log(2.0) * 2
    expected = -energy(x, h, *_params(rbm)).sum() + constant
    assert trace.log_prob_sum().item() == pytest.approx(expected.item(), abs=1e-9)
    # Five chains of the same two points: the factor carries the extra leading dimension.
    chains = {HIDDEN: h.expand(5, 2, 3)}
    with local_params():
        trace = poutine.trace(poutine.condition(rbm.model, data=chains)).get_trace(x)
    assert trace.nodes[ENERGY]["fn"].batch_shape == (5, 2)


def test_guide_is_the_exact_posterior_so_the_elbo_is_minus_the_free_energy():
    rbm = _random_rbm(4, 3)
    x = _all_binary(4)
    with local_params():
        guide = poutine.trace(rbm.guide).get_trace(x)
        loss = Trace_ELBO().differentiable_loss(rbm.model, rbm.guide, x)
    site = guide.nodes[HIDDEN]
    assert site["value"].shape == (16, 3)
    torch.testing.assert_close(site["fn"].base_dist.logits, hidden_logits(x, *_params(rbm)[::2]))
    # Exact posterior: log p~(v, h) - log q(h | v) is -F(v) - (V + H) log 2 for every h.
    expected = (rbm.free_energy(x) + 7 * math.log(2.0)).sum()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-9)


def test_sample_chains_reach_the_exact_distribution():
    rbm = _random_rbm(3, 2, scale=0.7)
    draws = rbm.sample(20000, steps=30, generator=torch.Generator().manual_seed(0))
    codes = (draws * torch.tensor([4.0, 2.0, 1.0], dtype=draws.dtype)).sum(-1).long()
    empirical = torch.bincount(codes, minlength=8).double() / len(codes)
    exact = rbm.log_prob(_all_binary(3)).exp().detach()
    # 20000 independent chains, 8 cells: the expected total variation is about 0.007.
    assert 0.5 * (empirical - exact).abs().sum().item() < 0.025


def test_seeded_sample_leaves_the_global_rng_alone_and_repeats():
    rbm = RBM(visible=5, hidden=3)
    state = torch.get_rng_state()
    a = rbm.sample(4, steps=3, generator=torch.Generator().manual_seed(1))
    b = rbm.sample(4, steps=3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)
    start = torch.ones(4, 5)
    assert torch.equal(rbm.sample(4, steps=0, init=start), start)


def test_registry_builds_the_rbm_from_its_stored_config():
    assert MODELS["rbm"] == (RBM, RBMConfig)
    cfg = RBMConfig(visible=6, hidden=2, init_scale=0.1)
    rbm = build_model("rbm", dataclasses.asdict(cfg))
    assert isinstance(rbm, RBM) and rbm.config == cfg
    assert rbm.weight.shape == (6, 2) and rbm.visible_bias.shape == (6,)
    assert RBM(cfg, hidden=3).config.hidden == 3


def test_instances_keep_their_own_parameters():
    a, b = RBM(visible=3, hidden=2), RBM(visible=3, hidden=2)
    with torch.no_grad():
        a.visible_bias.fill_(1.0)
    with local_params():
        trace = poutine.trace(b.model, param_only=True).get_trace(torch.zeros(1, 3))
    assert trace.nodes["visible_bias"]["value"].abs().sum().item() == 0.0
    assert set(trace.nodes) == {"weight", "visible_bias", "hidden_bias"}


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="hidden: expected an int >= 1, got 0"):
        RBMConfig(hidden=0)
    with pytest.raises(TypeError, match="visible: expected an int, got float"):
        RBMConfig(visible=2.0)
    with pytest.raises(ValueError, match="init_scale: expected a finite number >= 0"):
        RBMConfig(init_scale=-1.0)
    with pytest.raises(TypeError, match="config: expected a RBMConfig"):
        RBM({"visible": 3})
    rbm = RBM(visible=3, hidden=2)
    with pytest.raises(ValueError, match=r"v: expected shape \(\.\.\., 3\), got \(2, 4\)"):
        rbm.free_energy(torch.zeros(2, 4))
    with pytest.raises(TypeError, match="v: expected a floating-point tensor"):
        rbm.free_energy(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"W: expected shape \(visible, hidden\)"):
        energy(torch.zeros(3), torch.zeros(2), torch.zeros(3), torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match=r"c: expected shape \(2,\), got \(3,\)"):
        hidden_logits(torch.zeros(3), torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="v: a Bernoulli likelihood needs values in"):
        rbm.log_prob(torch.full((1, 3), 0.5))
    with pytest.raises(ValueError, match="log_z: expected a 0-dim tensor"):
        rbm.log_prob(torch.zeros(1, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="x: a Bernoulli likelihood needs values in"), local_params():
        rbm.model(torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 3\)"), local_params():
        rbm.model(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="x: the posterior over the hidden units needs data"):
        rbm.guide(None)
    with pytest.raises(ValueError, match="num_samples: needed when x is None"), local_params():
        rbm.model()
    with pytest.raises(ValueError, match="n: expected an int >= 1"):
        rbm.sample(0)
    with pytest.raises(ValueError, match=r"init: expected 2 rows \(n\)"):
        rbm.sample(2, init=torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"rbm: exact log Z enumerates 2\^min\(visible=30, hidden=21\)"):
        RBM(visible=30, hidden=21).log_partition_exact()
    pyro.clear_param_store()


def test_runs_on_the_test_device(device):
    rbm = RBM(visible=5, hidden=3, init_scale=0.5).to(device)
    x = rbm.sample(4, steps=3, generator=torch.Generator(device=device).manual_seed(0))
    assert x.device.type == device.type
    log_z = rbm.log_partition_exact()
    assert log_z.device.type == device.type and rbm.log_prob(x, log_z).shape == (4,)
    with local_params():
        model = poutine.trace(rbm.model).get_trace(x)
        guide = poutine.trace(rbm.guide).get_trace(x)
    model.compute_log_prob()
    assert model.nodes[ENERGY]["log_prob"].device.type == device.type
    assert guide.nodes[HIDDEN]["value"].device.type == device.type
