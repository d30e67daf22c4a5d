"""Contrastive divergence: the exact CD-1 gradient through the engine, and training that raises
the exact log-likelihood of a small RBM."""

import pyro
import pytest
import torch
from pyro.infer import SVI

from ppdgm._pyro import local_params
from ppdgm.data.synthetic import bars_and_stripes_patterns
from ppdgm.inference import Engine, Player, TrainConfig
from ppdgm.inference.objectives import ContrastiveDivergence
from ppdgm.models.rbm import RBM


def _bars_and_stripes():
    return bars_and_stripes_patterns(3).reshape(-1, 9)  # 14 distinct 3x3 patterns


def _sgd(lr):
    return lambda params: torch.optim.SGD(params, lr=lr)


def _cd1_gradient_by_hand(rbm, x, seed):
    """Hinton's CD-1 statistics, <v p(h|v)>_data - <v p(h|v)>_reconstruction, for the summed loss."""
    W, b, c = rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach()
    torch.manual_seed(seed)
    h0 = torch.bernoulli(torch.sigmoid(x @ W + c))
    v1 = torch.bernoulli(torch.sigmoid(h0 @ W.T + b))
    p0, p1 = torch.sigmoid(x @ W + c), torch.sigmoid(v1 @ W + c)
    # d F(v) / dW = -v p(h | v)^T, d F / db = -v, d F / dc = -p(h | v); the loss is a batch sum.
    return {"weight": -(x.T @ p0) + v1.T @ p1,
            "visible_bias": -x.sum(0) + v1.sum(0),
            "hidden_bias": -p0.sum(0) + p1.sum(0)}


def test_one_engine_step_is_the_hand_computed_cd1_update():
    torch.manual_seed(0)
    rbm = RBM(visible=9, hidden=4, init_scale=0.5)
    x = _bars_and_stripes()[:8]
    before = {name: p.detach().clone() for name, p in rbm.named_parameters()}
    expected = _cd1_gradient_by_hand(rbm, x, seed=7)
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1.0, device="cpu", progress=False, seed=7,
                      shuffle=False)
    Engine(rbm.model, rbm.guide, ContrastiveDivergence(k=1), players=[Player("svi", optimizer=_sgd(1.0))],
           config=cfg).fit(x)
    for name, p in rbm.named_parameters():
        torch.testing.assert_close(before[name] - p.detach(), expected[name], rtol=1e-5, atol=1e-5)


def test_pyro_svi_takes_the_same_cd1_step():
    torch.manual_seed(0)
    rbm = RBM(visible=9, hidden=4, init_scale=0.5)
    x = _bars_and_stripes()[:8]
    before = {name: p.detach().clone() for name, p in rbm.named_parameters()}
    expected = _cd1_gradient_by_hand(rbm, x, seed=11)
    torch.manual_seed(11)
    with local_params():
        svi = SVI(rbm.model, rbm.guide, pyro.optim.SGD({"lr": 1.0}), loss=ContrastiveDivergence())
        svi.step(x)
    for name, p in rbm.named_parameters():
        torch.testing.assert_close(before[name] - p.detach(), expected[name], rtol=1e-5, atol=1e-5)


def test_the_surrogate_gradient_equals_the_cd_statistics_for_k_steps():
    torch.manual_seed(1)
    rbm = RBM(visible=9, hidden=5, init_scale=0.3)
    x = _bars_and_stripes()
    torch.manual_seed(2)
    loss = ContrastiveDivergence(k=3)(rbm.model, rbm.guide, x)
    torch.manual_seed(2)
    negative = ContrastiveDivergence(k=3).negative_samples(rbm, x)
    # The surrogate's value: sum F(data) - n mean F(negatives), not a log-likelihood.
    value = rbm.free_energy(x).sum() - x.shape[0] * rbm.free_energy(negative).mean()
    assert loss.item() == pytest.approx(value.item(), rel=1e-6)
    (g_b,) = torch.autograd.grad(loss, rbm.visible_bias)
    torch.testing.assert_close(g_b, -x.sum(0) + negative.sum(0))


def _three_patterns():
    patterns = torch.tensor([[1.0, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1], [1, 0, 1, 0, 1, 0, 1, 0]])
    return patterns.repeat(8, 1)


@pytest.mark.parametrize(
    "options,lr,epochs",
    [({}, 0.05, 50),
     # PCD's chains must keep up with the weights: a smaller step and more chains (at lr=0.05
     # with 20 chains some seeds oscillate, a known trait of PCD with large steps).
     ({"persistent": True, "num_chains": 100}, 0.02, 60)],
    ids=["cd1", "pcd1"],
)
def test_training_raises_the_exact_log_likelihood(options, lr, epochs):
    objective = ContrastiveDivergence(k=1, **options)
    pyro.set_rng_seed(0)
    rbm = RBM(visible=8, hidden=4)
    data = _three_patterns()
    start = rbm.log_prob(data).mean().item()  # about -8 log 2 = -5.55: near uniform
    cfg = TrainConfig(epochs=epochs, batch_size=6, lr=lr, device="cpu", progress=False, seed=0)
    history = Engine(rbm.model, rbm.guide, objective, config=cfg).fit(data)
    end = rbm.log_prob(data).mean().item()
    assert len(history) == 4 * epochs
    # The best any model can do is log(1/3) = -1.10. Seeds 0-4 end at -1.5..-2.4 (CD) and
    # -2.1..-2.7 (PCD); half of the way from the start, -3.3, is far from chance.
    assert end > start + 0.5 * (-1.10 - start), (start, end)
    if objective.persistent:
        assert objective.chains.shape == (100, 8)


def test_pcd_state_round_trips_and_continues_the_chains():
    torch.manual_seed(3)
    rbm = RBM(visible=9, hidden=3, init_scale=0.5)
    x = _bars_and_stripes()
    pcd = ContrastiveDivergence(k=2, persistent=True)
    pcd(rbm.model, rbm.guide, x)
    assert pcd.chains.shape == (14, 9)  # one chain per point of the first batch
    state = pcd.state_dict()
    restored = ContrastiveDivergence(k=2, persistent=True)
    restored.load_state_dict(state)
    torch.manual_seed(4)
    a = pcd.negative_samples(rbm, x[:5])  # a short batch: the chains keep their number
    torch.manual_seed(4)
    b = restored.negative_samples(rbm, x[:5])
    assert a.shape == (14, 9) and torch.equal(a, b)
    assert not torch.equal(state["chains"], a)  # the saved state is a copy, not the live chains
    assert ContrastiveDivergence().state_dict()["chains"] is None


def test_cd_starts_at_the_data_and_pcd_fills_its_chains_from_it():
    torch.manual_seed(5)
    rbm = RBM(visible=4, hidden=2)
    with torch.no_grad():
        rbm.visible_bias.fill_(50.0)  # every visible unit is on after a sweep
    x = torch.zeros(3, 4)
    assert torch.equal(ContrastiveDivergence(k=1).negative_samples(rbm, x), torch.ones(3, 4))
    pcd = ContrastiveDivergence(k=1, persistent=True, num_chains=7)
    assert pcd.negative_samples(rbm, x).shape == (7, 4)


def test_bad_arguments_name_what_is_wrong():
    rbm = RBM(visible=4, hidden=2)
    with pytest.raises(ValueError, match="k: expected an int >= 1, got 0"):
        ContrastiveDivergence(k=0)
    with pytest.raises(TypeError, match="persistent: expected a bool"):
        ContrastiveDivergence(persistent="yes")
    with pytest.raises(ValueError, match="num_chains: only persistent CD keeps chains"):
        ContrastiveDivergence(num_chains=10)
    with pytest.raises(TypeError, match=r"model: contrastive divergence needs an RBM's bound model"):
        ContrastiveDivergence()(lambda x: None, rbm.guide, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 4\), got \(2, 5\)"):
        ContrastiveDivergence()(rbm.model, rbm.guide, torch.zeros(2, 5))
    with pytest.raises(TypeError, match="args: contrastive divergence takes one data batch"):
        ContrastiveDivergence()(rbm.model, rbm.guide, torch.zeros(2, 4), torch.zeros(2))
    pcd = ContrastiveDivergence(persistent=True)
    with pytest.raises(ValueError, match=r"state: saved for \{'k': 2"):
        pcd.load_state_dict({"k": 2, "persistent": True, "num_chains": None, "chains": None})
    with pytest.raises(ValueError, match=r"state: missing keys \['chains'\]"):
        pcd.load_state_dict({"k": 1, "persistent": True, "num_chains": None})
    with pytest.raises(ValueError, match=r"state\['chains'\]: a Bernoulli likelihood needs values"):
        pcd.load_state_dict({"k": 1, "persistent": True, "num_chains": None,
                             "chains": torch.full((2, 4), 0.5)})
    pcd.load_state_dict({"k": 1, "persistent": True, "num_chains": None, "chains": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="chains: the persistent chains have 3 visible units"):
        pcd(rbm.model, rbm.guide, torch.zeros(2, 4))


def test_pcd_trains_on_the_test_device(device):
    pyro.set_rng_seed(0)
    rbm = RBM(visible=8, hidden=4)
    objective = ContrastiveDivergence(k=1, persistent=True, num_chains=10)
    cfg = TrainConfig(epochs=2, batch_size=6, lr=0.01, device=str(device), progress=False, seed=0)
    Engine(rbm.model, rbm.guide, objective, config=cfg).fit(_three_patterns())
    assert rbm.weight.device.type == device.type and objective.chains.device.type == device.type
    restored = ContrastiveDivergence(k=1, persistent=True, num_chains=10)
    restored.load_state_dict(objective.state_dict())
    assert restored.negative_samples(rbm, _three_patterns().to(device)).device.type == device.type


def test_the_sweeps_grow_from_k_to_k_final_and_resume_with_the_run():
    cd = ContrastiveDivergence(k=1, k_final=25)
    assert [cd.anneal(f) for f in (0.0, 0.04, 0.5, 1.0)] == [1, 2, 13, 25]
    saved = cd.state_dict()
    restored = ContrastiveDivergence(k=1, k_final=25)
    restored.load_state_dict(saved)
    assert restored.k == 25
    with pytest.raises(ValueError, match=r"state: saved for \{'k': 1, 'k_final': 25"):
        ContrastiveDivergence(k=1, k_final=10).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"k_final: expected at least k \(5\), got 2"):
        ContrastiveDivergence(k=5, k_final=2)
    with pytest.raises(ValueError, match="fraction"):
        cd.anneal(1.5)
    fixed = ContrastiveDivergence(k=3)
    assert fixed.anneal(1.0) == 3  # no k_final: the sweeps stay put
    # A state saved before k_final existed (its "k" is the setting) still loads.
    ContrastiveDivergence(k=2).load_state_dict({"k": 2, "persistent": False, "num_chains": None,
                                                "chains": None})


def test_the_rbm_recipe_schedules_sweeps_and_learning_rate_and_resumes_exactly(tmp_path):
    from ppdgm.data import load_dataset
    from ppdgm.inference import load_checkpoint
    from ppdgm.recipes import fit_rbm

    ds = load_dataset("bars-and-stripes")

    def run(out, **settings):
        cfg = TrainConfig(epochs=4, batch_size=10, lr=0.05, seed=0, device="cpu", progress=False,
                          out_dir=str(out), **settings)
        return fit_rbm(ds, cfg, hidden=4, cd_k=1, cd_k_final=7, lr_final=0.005, ais_runs=10)

    whole = run(tmp_path / "whole").metrics
    assert whole["objective"] == "cd-1..7" and whole["cd_k_reached"] == 7
    state = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    assert state["objective"]["k"] == 7
    lr = state["optimizers"]["cd"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(0.005 / 10)  # sgd_momentum steps on the batch mean: lr / batch
    run(tmp_path / "part", max_steps=5)  # stopped in the second epoch, k already grown to 3
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["objective"]["k"] == 3
    resumed = run(tmp_path / "part", resume=True).metrics
    assert resumed["test_log_px"] == whole["test_log_px"]
    with pytest.raises(ValueError, match="lr_final"):
        fit_rbm(ds, TrainConfig(epochs=1, batch_size=10, lr=0.05, progress=False,
                                out_dir=str(tmp_path / "bad")), hidden=4, lr_final=0.5)
