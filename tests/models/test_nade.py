"""NADE and MADE against exact answers: normalization over all 2^D images, the autoregressive
property, ancestral sampling against the enumerated distribution, and Trace_ELBO = -log p(x)."""

import itertools

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO

from ppdgm.data import load_dataset
from ppdgm.inference import Engine, Player, TrainConfig
from ppdgm.models.autoregressive import AutoregressiveBinary
from ppdgm.models.nade import MADE, NADE, AutoregressiveConfig

MODELS = [(NADE, (5,)), (MADE, (7,)), (MADE, (7, 6)), (MADE, (7, "direct"))]
IDS = ["nade", "made-1", "made-2", "made-direct"]


def _model(cls, hidden, d=4, seed=0):
    direct = "direct" in hidden
    hidden = tuple(h for h in hidden if h != "direct")
    model = cls(AutoregressiveConfig(x_shape=(d,), hidden=hidden, seed=seed, direct=direct))
    with torch.no_grad():  # larger weights than at initialization: a far from uniform p(x)
        for p in model.parameters():
            p.mul_(3).add_(0.5 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    return model


def _all_images(d):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))


@pytest.mark.parametrize("cls, hidden", MODELS, ids=IDS)
def test_probabilities_sum_to_one_over_every_image(cls, hidden):
    model = _model(cls, hidden)
    total = model.log_prob(_all_images(4)).logsumexp(0).exp().item()
    assert total == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("cls, hidden", MODELS, ids=IDS)
def test_logit_d_depends_only_on_earlier_pixels(cls, hidden):
    model = _model(cls, hidden, d=6)
    x = torch.bernoulli(torch.full((6,), 0.5))
    jacobian = torch.autograd.functional.jacobian(model.logits, x)  # (out d, in j)
    assert torch.count_nonzero(torch.triu(jacobian)) == 0
    assert torch.count_nonzero(torch.tril(jacobian, -1)) > 0


@pytest.mark.parametrize("cls, hidden", MODELS, ids=IDS)
def test_ancestral_samples_follow_the_enumerated_distribution(cls, hidden):
    model = _model(cls, hidden)
    images = _all_images(4)
    exact = model.log_prob(images).exp()
    torch.manual_seed(0)
    draws = model.sample(40_000).reshape(-1, 4)
    index = (draws * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(-1).long()
    empirical = torch.bincount(index, minlength=16).float() / len(draws)
    # 40000 draws of 16 outcomes: the total-variation distance is ~0.01 by chance.
    assert 0.5 * (empirical - exact.detach()).abs().sum().item() < 0.02


def test_nades_running_sum_sampler_is_the_generic_one():
    model = _model(NADE, (5,))
    generic = AutoregressiveBinary(model.logits, torch.zeros(()), 4)
    torch.manual_seed(3)
    fast = model.sample(30_000).reshape(-1, 4).mean(0)
    torch.manual_seed(4)
    slow = generic.sample((30_000,)).mean(0)
    torch.testing.assert_close(fast, slow, atol=0.015, rtol=0)


@pytest.mark.parametrize("cls, hidden", MODELS, ids=IDS)
def test_trace_elbo_with_the_empty_guide_is_minus_log_px(cls, hidden):
    model = _model(cls, hidden)
    x = _all_images(4)[::3]
    loss = Trace_ELBO().loss(model.model, model.guide, x)
    assert loss == pytest.approx(-model.log_prob(x).sum().item(), rel=1e-5)


@pytest.mark.parametrize("cls", [NADE, MADE], ids=["nade", "made"])
def test_the_engine_lowers_the_exact_nll_on_digits(cls):
    data = load_dataset("digits-binarized", num_train=300)
    model = cls(AutoregressiveConfig(x_shape=data.event_shape, hidden=(32,)))
    before = -model.log_prob(data.test).mean().item()
    config = TrainConfig(epochs=3, batch_size=50, lr=1e-2, device="cpu", progress=False)
    Engine(model.model, model.guide, Trace_ELBO(), [Player("svi")], config).fit(data.train)
    after = -model.log_prob(data.test).mean().item()
    assert after < before - 5
    assert model.sample(3).shape == (3, 1, 8, 8)


def test_pyro_sees_one_observed_site():
    model = MADE(AutoregressiveConfig(x_shape=(1, 2, 2), hidden=(4,)))
    trace = pyro.poutine.trace(model.model).get_trace(torch.ones(5, 1, 2, 2))
    assert trace.nodes["x"]["is_observed"] and trace.nodes["x"]["fn"].event_shape == (4,)
    # Its weights are param sites of the model's trace, so plain SVI finds and trains them.
    params = {name for name, site in trace.nodes.items() if site["type"] == "param"}
    assert len(params) == 4
    assert model.model(num_samples=2).shape == (2, 1, 2, 2)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="hidden: NADE has one hidden layer"):
        NADE(AutoregressiveConfig(x_shape=(4,), hidden=(3, 3)))
    with pytest.raises(ValueError, match="direct: only MADE"):
        NADE(AutoregressiveConfig(x_shape=(4,), hidden=(3,), direct=True))
    with pytest.raises(ValueError, match="MADE needs at least 2 pixels"):
        MADE(AutoregressiveConfig(x_shape=(1,), hidden=(3,)))
    model = MADE(AutoregressiveConfig(x_shape=(4,), hidden=(3,)))
    with pytest.raises(ValueError, match="Bernoulli likelihood needs values"):
        model.log_prob(torch.full((2, 4), 0.5))
    with pytest.raises(ValueError, match="x: expected shape"):
        model.log_prob(torch.zeros(2, 5))
