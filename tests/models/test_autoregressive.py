"""The autoregressive Bernoulli layer: a normalized density whose samples follow it."""

import itertools

import pyro
import pytest
import torch

from ppdgm.data import load_dataset
from ppdgm.inference import Engine, TrainConfig
from ppdgm.inference.objectives.registry import build_player_objective
from ppdgm.models.autoregressive import AutoregressiveBernoulli
from ppdgm.models.sbn import SigmoidBeliefNet


def _layer(seed=0, w=4):
    gen = torch.Generator().manual_seed(seed)
    return AutoregressiveBernoulli(torch.randn(w, generator=gen), 2 * torch.randn(w, w, generator=gen))


def test_density_sums_to_one_and_uses_only_the_strict_lower_triangle():
    d = _layer()
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    assert d.log_prob(states).exp().sum().item() == pytest.approx(1.0, abs=1e-6)
    upper = d.weight + torch.triu(torch.randn(4, 4))  # changes on and above the diagonal only
    torch.testing.assert_close(AutoregressiveBernoulli(d.base_logits, upper).log_prob(states),
                               d.log_prob(states))


def test_samples_follow_the_density():
    d = _layer(1)
    torch.manual_seed(0)
    draws = d.sample((40000,))
    codes = (draws * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(-1).long()
    empirical = torch.bincount(codes, minlength=16).double() / len(codes)
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    # 40000 draws over 16 cells: total variation is about 0.007 on average; 0.02 is far out.
    assert 0.5 * (empirical - d.log_prob(states).exp().double()).abs().sum().item() < 0.02


def test_batch_expansion_keeps_the_event():
    d = AutoregressiveBernoulli(torch.zeros(3, 5), torch.zeros(5, 5)).expand(torch.Size([2, 3]))
    assert d.batch_shape == (2, 3) and d.event_shape == (5,)
    assert d.sample().shape == (2, 3, 5)


def test_weight_of_the_wrong_shape_is_named():
    with pytest.raises(ValueError, match="weight: expected shape"):
        AutoregressiveBernoulli(torch.zeros(3), torch.zeros(2, 2))


def test_sbn_with_an_autoregressive_guide_trains_on_bars_and_stripes():
    x = load_dataset("bars-and-stripes").train
    pyro.set_rng_seed(0)
    sbn = SigmoidBeliefNet(x_shape=(1, 4, 4), layers=(8,), autoregressive=True)
    before = sbn.exact_log_marginal(x).mean().item()
    objective, players = build_player_objective("rws", k=10, lr=0.03)
    Engine(sbn.model, sbn.guide, objective, players,
           TrainConfig(epochs=60, batch_size=10, device="cpu", progress=False)).fit(x)
    assert sbn.lateral[0].weight.abs().sum() > 0  # the guide used its within-layer weights
    assert sbn.exact_log_marginal(x).mean().item() > before + 3.0
