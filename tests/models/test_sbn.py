"""The sigmoid belief net: exact log p(x) by enumeration, ancestral sampling, the guide."""

import itertools
import math

import pyro
import pyro.poutine as poutine
import pytest
import torch

from ppdgm._pyro import local_params
from ppdgm.inference.evaluate import estimate_log_likelihood
from ppdgm.models.sbn import SBNConfig, SigmoidBeliefNet


def _all_binary(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))


def _brute_force_log_marginal(sbn, x):
    """Sum p(x, z) over the joint states of all layers at once (no layer-by-layer recursion)."""
    widths = sbn.config.layers
    total = torch.full((x.shape[0],), -math.inf, dtype=torch.float64)
    for joint in itertools.product(*[_all_binary(w) for w in widths]):
        data = {f"z{i + 1}": z.expand(x.shape[0], -1) for i, z in enumerate(joint)}
        with local_params(), torch.no_grad():
            trace = poutine.trace(poutine.condition(sbn.model, data=data)).get_trace(x)
        trace.compute_log_prob()
        log_joint = sum(site["log_prob"] for site in trace.nodes.values() if site["type"] == "sample")
        total = torch.logaddexp(total, log_joint.double())
    return total


@pytest.fixture
def sbn():
    pyro.set_rng_seed(0)
    net = SigmoidBeliefNet(x_shape=(5,), layers=(2, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 1.5)
    return net


def test_exact_log_marginal_matches_brute_force_and_normalizes(sbn):
    xs = _all_binary(5)
    exact = sbn.exact_log_marginal(xs)
    torch.testing.assert_close(exact.double(), _brute_force_log_marginal(sbn, xs), atol=1e-5, rtol=0)
    assert exact.exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_ancestral_samples_follow_the_exact_marginal(sbn):
    draws = sbn.sample(40000)
    codes = (draws * 2 ** torch.arange(4, -1, -1)).sum(-1).long()
    empirical = torch.bincount(codes, minlength=32).double() / len(codes)
    exact = sbn.exact_log_marginal(_all_binary(5)).exp().double()
    # Total variation of 40000 draws over 32 cells: its mean is about 0.01 here; 0.03 is far out.
    assert 0.5 * (empirical - exact).abs().sum().item() < 0.03


def test_importance_sampled_log_likelihood_converges_to_the_exact_one():
    pyro.set_rng_seed(1)
    net = SigmoidBeliefNet(x_shape=(6,), layers=(4,))  # default init: a usable proposal
    xs = _all_binary(6)
    exact = net.exact_log_marginal(xs).mean().item()
    small = estimate_log_likelihood(net.model, net.guide, xs, num_samples=2, seed=0).log_px.mean
    large = estimate_log_likelihood(net.model, net.guide, xs, num_samples=20000, seed=0).log_px.mean
    assert small < large
    assert large == pytest.approx(exact, abs=0.01)


def test_guide_samples_every_layer_bottom_up_and_model_has_the_generative_weights(sbn):
    x = sbn.sample(3)
    with local_params():
        guide = poutine.trace(sbn.guide).get_trace(x)
        params = poutine.trace(sbn.model, param_only=True).get_trace(x)
    samples = [n for n, s in guide.nodes.items() if s["type"] == "sample" and n != "data"]
    assert samples == ["z2", "z1"]
    assert guide.nodes["z2"]["value"].shape == (3, 3) and guide.nodes["z1"]["value"].shape == (3, 2)
    assert set(params.nodes) == {"top_logits", "generative.0.weight", "generative.0.bias",
                                 "generative.1.weight", "generative.1.bias"}


def test_pixel_probabilities_as_sample_means(sbn):
    p = sbn.sample(7, mean=True)
    assert p.shape == (7, 5) and bool(((p > 0) & (p < 1)).all())


def test_too_wide_for_enumeration_is_refused():
    net = SigmoidBeliefNet(x_shape=(4,), layers=(13, 13))
    with pytest.raises(ValueError, match="too wide to enumerate"):
        net.exact_log_marginal(torch.zeros(1, 4))


@pytest.mark.parametrize(
    "overrides, message",
    [({"layers": ()}, "layers"), ({"layers": (0,)}, "layers"), ({"x_shape": (2, -1)}, "x_shape"),
     ({"widths": (3,)}, "unknown SBNConfig fields")],
)
def test_bad_config_is_named(overrides, message):
    with pytest.raises((TypeError, ValueError), match=message):
        SigmoidBeliefNet(**overrides)


def test_non_binary_data_is_refused(sbn):
    with pytest.raises(ValueError, match="x"):
        sbn.exact_log_marginal(torch.full((2, 5), 0.5))


def test_config_round_trips_through_a_dict():
    import dataclasses

    cfg = SBNConfig(x_shape=(1, 4, 4), layers=(3, 5))
    assert SigmoidBeliefNet(**dataclasses.asdict(cfg)).config == cfg
