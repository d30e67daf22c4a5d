"""NVIL as Mnih and Gregor published it, against exact answers on enumerable sigmoid belief nets.

The centred estimator's average matches the exact ELBO gradient (enumerating every latent state
of a two-layer net), the normalisation only rescales each layer's score term, the local signals
keep exactly the terms a layer can change, and the running statistics resume exactly.
"""

from __future__ import annotations

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO

from ppdgm._pyro import local_params
from ppdgm.inference import Engine, TrainConfig
from ppdgm.inference.objectives.nvil import NVIL, local_signal_sites
from ppdgm.models.sbn import SigmoidBeliefNet


def _states(width: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=width)))


def _exact_elbo(sbn: SigmoidBeliefNet, x: torch.Tensor) -> torch.Tensor:
    """sum over x of E_q[log p(x, z1, z2) - log q(z1, z2 | x)], enumerating (z2, z1)."""
    w1, w2 = sbn.config.layers
    z1 = _states(w1)[None, :, None, :]  # (1, S1, 1, w1)
    z2 = _states(w2)[None, None, :, :]  # (1, 1, S2, w2)
    xb = x[:, None, None, :]
    log_q2 = dist.Bernoulli(logits=sbn.recognition[0](xb)).log_prob(z2).sum(-1)
    log_q1 = dist.Bernoulli(logits=sbn.recognition[1](z2)).log_prob(z1).sum(-1)
    log_p1 = dist.Bernoulli(logits=sbn.top_logits).log_prob(z1).sum(-1)
    log_p2 = dist.Bernoulli(logits=sbn.generative[0](z1)).log_prob(z2).sum(-1)
    log_px = dist.Bernoulli(logits=sbn.generative[1](z2)).log_prob(xb).sum(-1)
    log_q = log_q1 + log_q2
    return (log_q.exp() * (log_p1 + log_p2 + log_px - log_q)).sum()


def _net(baseline_hidden: int = 8, seed: int = 0) -> SigmoidBeliefNet:
    pyro.set_rng_seed(seed)
    sbn = SigmoidBeliefNet(x_shape=(3,), layers=(2, 2), baseline_hidden=baseline_hidden)
    with torch.no_grad():
        for name, p in sbn.named_parameters():
            if not name.startswith("baselines"):
                p.normal_(0.0, 1.0)
    return sbn


def _trained(sbn: SigmoidBeliefNet) -> list[torch.Tensor]:
    return [p for n, p in sbn.named_parameters() if not n.startswith("baselines")]


def test_local_signals_keep_the_terms_each_layer_can_change():
    sbn = SigmoidBeliefNet(x_shape=(4,), layers=(2, 2, 2))
    sites = local_signal_sites(sbn.model, sbn.guide, torch.zeros(3, 4))
    # The guide runs upwards (z3 from x, z2 from z3, z1 from z2); layer i's signal is
    # log p(h_{i-1}, ..., h_n) - log q(h_i, ..., h_n | h_{i-1}) with h_0 = x, h_1 = z3.
    assert sites == {"z3": ({"z1", "z2", "z3", "x"}, {"z3", "z2", "z1"}),
                     "z2": ({"z1", "z2", "z3"}, {"z2", "z1"}),
                     "z1": ({"z1", "z2"}, {"z1"})}


def test_the_centred_gradient_is_the_exact_elbo_gradient_on_average():
    sbn = _net()
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    params = _trained(sbn)
    truth = torch.cat([g.flatten() for g in torch.autograd.grad(_exact_elbo(sbn, x), params)])
    objective = NVIL(normalize=False)
    copies, repeats = 2000, 12
    estimates = []
    for r in range(repeats):
        pyro.set_rng_seed(300 + r)
        with local_params():
            loss = objective(sbn.model, sbn.guide, x.repeat(copies, 1))
        grads = torch.autograd.grad(-loss / copies, params + list(sbn.baselines.parameters()))
        estimates.append(torch.cat([g.flatten() for g in grads[: len(params)]]))
        with torch.no_grad():  # the baselines learn between repeats, as in training
            for p, g in zip(sbn.baselines.parameters(), grads[len(params):]):
                p += 0.05 * g
    draws = torch.stack(estimates)
    mean, stderr = draws.mean(0), draws.std(0) / math.sqrt(repeats)
    assert bool(((mean - truth).abs() <= 4 * stderr + 1e-3).all()), (mean - truth) / stderr
    assert truth.abs().max() > 0.05
    assert set(objective.stats) == {"z1", "z2"}


def test_the_normalisation_only_rescales_each_score_term():
    sbn = SigmoidBeliefNet(x_shape=(3,), layers=(2,))
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])

    def gradients(normalize: bool, variance: float) -> list[torch.Tensor]:
        objective = NVIL(decay=1.0, normalize=normalize)  # decay 1: the statistics stay put
        objective.load_state_dict({"stats": {"z1": [0.5, variance]}})
        pyro.set_rng_seed(5)
        with local_params():
            loss = objective(sbn.model, sbn.guide, x)
        return torch.autograd.grad(loss, list(sbn.parameters()))

    plain, by3, by5 = gradients(False, 9.0), gradients(True, 9.0), gradients(True, 25.0)
    names = [n for n, _ in sbn.named_parameters()]
    for name, g1, g3, g5 in zip(names, plain, by3, by5):
        if name.startswith("recognition"):  # g(s) = direct + score / s, for s = 1, 3, 5
            torch.testing.assert_close(g1 - g3, (g1 - g5) * (2 / 3) / (4 / 5))
            assert (g1 - g3).abs().max() > 1e-3
        else:  # the model's gradient is the ELBO's, untouched
            torch.testing.assert_close(g1, g3)
            torch.testing.assert_close(g1, g5)


def test_the_value_is_the_negative_elbo_of_the_same_draws():
    sbn = _net(seed=2)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    with local_params():
        pyro.set_rng_seed(9)
        ours = NVIL()(sbn.model, sbn.guide, x).item()
        pyro.set_rng_seed(9)
        theirs = Trace_ELBO().loss(sbn.model, sbn.guide, x)
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_running_statistics_resume_exactly(tmp_path):
    data = (torch.rand(40, 3, generator=torch.Generator().manual_seed(0)) < 0.5).float()

    def run(**settings):
        sbn = _net(seed=4)
        config = TrainConfig(epochs=3, batch_size=10, seed=0, progress=False,
                             out_dir=str(tmp_path), **settings)
        objective = NVIL()
        Engine(sbn.model, sbn.guide, objective, config=config).fit(data)
        return sbn, objective

    run(max_steps=5)
    resumed, resumed_objective = run(resume=True)
    (tmp_path / "checkpoint.pt").unlink()
    whole, whole_objective = run()
    assert resumed_objective.state_dict() == whole_objective.state_dict()
    for a, b in zip(resumed.state_dict().values(), whole.state_dict().values()):
        assert torch.equal(a, b)


def test_bad_settings_and_global_sites_are_refused():
    with pytest.raises(ValueError, match="decay"):
        NVIL(decay=1.5)
    with pytest.raises(TypeError, match="normalize"):
        NVIL(normalize="yes")

    def model(x):
        g = pyro.sample("g", dist.Bernoulli(0.5))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(g.expand(len(x)), 1.0), obs=x)

    def guide(x):
        pyro.sample("g", dist.Bernoulli(0.5))

    with pytest.raises(ValueError, match="outside the 'data' plate"):
        NVIL()(model, guide, torch.zeros(3))
