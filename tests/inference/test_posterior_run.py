"""The model run on posterior draws: vector latents keep their axes, and a vectorized run that
disagrees with the model run alone is never used."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Predictive
from pyro.ops.indexing import Vindex

from ppdgm.inference.sampling import run_on_draws

Y = torch.tensor([-3.0, 0.1, 2.9, 3.2])


def vindex_mixture(y):
    mus = pyro.sample("mus", dist.Normal(torch.zeros(3), 3.0).to_event(1))
    with pyro.plate("data", len(y)):
        c = pyro.sample("c", dist.Categorical(torch.ones(3) / 3))
        pyro.sample("y", dist.Normal(Vindex(mus)[..., c], 1.0), obs=y)


def plain_index_mixture(y):
    mus = pyro.sample("mus", dist.Normal(torch.zeros(3), 3.0).to_event(1))
    with pyro.plate("data", len(y)):
        c = pyro.sample("c", dist.Categorical(torch.ones(3) / 3))
        pyro.sample("y", dist.Normal(mus[c], 1.0), obs=y)


def total_of_everything(y):
    # .sum() over the whole tensor: runs over many draws without a shape error, and is wrong.
    mus = pyro.sample("mus", dist.Normal(torch.zeros(3), 3.0).to_event(1))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(mus.sum(), 1.0), obs=y)


def _draws(num):
    g = torch.Generator().manual_seed(0)
    return {"mus": 3 * torch.randn(num, 3, generator=g),
            "c": torch.randint(0, 3, (num, len(Y)), generator=g)}


def _hand(draws):
    return dist.Normal(draws["mus"].gather(-1, draws["c"]), 1.0).log_prob(Y)


@pytest.mark.parametrize("num", [len(Y), 7])
def test_a_vector_latent_keeps_its_event_axis_when_draws_equal_data_points(num):
    draws = _draws(num)
    run = run_on_draws(vindex_mixture, draws, Y)
    assert run.vectorized
    torch.testing.assert_close(run.log_likelihood["y"], _hand(draws))
    assert run.predictive["y"].shape == (num, len(Y))


def test_pyros_predictive_misplaces_the_event_axis_where_ppdgm_does_not():
    # The failure this module exists for: with as many draws as data points, Predictive pads the
    # (draws, 3) means to the plate depth without their event dim and gives a wrong answer quietly.
    draws = _draws(len(Y))
    trace = Predictive(vindex_mixture, posterior_samples=draws).get_vectorized_trace(Y)
    site = trace.nodes["y"]
    theirs = site["fn"].log_prob(site["value"])
    assert theirs.shape == (len(Y), len(Y)) and not torch.allclose(theirs, _hand(draws))
    torch.testing.assert_close(run_on_draws(vindex_mixture, draws, Y).log_likelihood["y"], _hand(draws))


def test_a_model_that_cannot_broadcast_runs_draw_by_draw():
    draws = _draws(5)
    run = run_on_draws(plain_index_mixture, draws, Y)
    assert not run.vectorized
    torch.testing.assert_close(run.log_likelihood["y"], _hand(draws))
    with pytest.raises((RuntimeError, IndexError, ValueError)):
        run_on_draws(plain_index_mixture, draws, Y, vectorize=True)


def test_a_vectorized_run_that_disagrees_is_not_used():
    draws = {"mus": _draws(6)["mus"]}
    run = run_on_draws(total_of_everything, draws, Y)
    assert not run.vectorized
    hand = dist.Normal(draws["mus"].sum(-1, keepdim=True), 1.0).log_prob(Y)
    torch.testing.assert_close(run.log_likelihood["y"], hand)


def test_looped_and_vectorized_agree_and_the_predictive_follows_the_draws():
    draws = _draws(400)
    together = run_on_draws(vindex_mixture, draws, Y)
    alone = run_on_draws(vindex_mixture, draws, Y, vectorize=False)
    torch.testing.assert_close(together.log_likelihood["y"], alone.log_likelihood["y"])
    residual = together.predictive["y"] - draws["mus"].gather(-1, draws["c"])
    assert abs(residual.mean().item()) < 0.1 and abs(residual.std().item() - 1.0) < 0.1


def test_bad_draws_are_refused_naming_the_argument():
    with pytest.raises(ValueError, match="draws: the model has no sample site 'nope'"):
        run_on_draws(vindex_mixture, {"nope": torch.zeros(2)}, Y)
    with pytest.raises(ValueError, match=r"draws: site 'mus' should have shape \(draws, 3\)"):
        run_on_draws(vindex_mixture, {"mus": torch.zeros(2, 4)}, Y)
    with pytest.raises(ValueError, match="draws: expected tensors with the same number of draws"):
        run_on_draws(vindex_mixture, {"mus": torch.zeros(2, 3), "c": torch.zeros(3, 4).long()}, Y)
    with pytest.raises(TypeError, match="draws:"):
        run_on_draws(vindex_mixture, {}, Y)
    with pytest.raises(TypeError, match="model:"):
        run_on_draws("model", {"mus": torch.zeros(2, 3)}, Y)
    with pytest.raises(TypeError, match="vectorize:"):
        run_on_draws(vindex_mixture, _draws(2), Y, vectorize="yes")
