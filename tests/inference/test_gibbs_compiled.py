"""Gibbs sweeps traced once and replayed: the eager sweep's draws, bit for bit, or eager sweeps."""

import logging

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC

from ppdgm._pyro import local_params
from ppdgm.inference.mcmc import Gibbs
from ppdgm.models import SBNConfig, SigmoidBeliefNet


def _sbn():
    torch.manual_seed(3)
    model = SigmoidBeliefNet(SBNConfig(x_shape=(6,), layers=(3, 2)))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    return model


def _categorical(y):
    # A plate updated as one block.
    locs = torch.tensor([-2.0, 0.0, 1.0, 3.0])
    with pyro.plate("data", len(y)):
        z = pyro.sample("z", dist.Categorical(torch.tensor([0.1, 0.2, 0.3, 0.4])))
        pyro.sample("y", dist.Normal(locs[z], 1.0), obs=y)


def _tied(y):
    # A plate swept element by element (an observed sum ties its elements), and a second site.
    with pyro.plate("p", 3):
        a = pyro.sample("a", dist.Bernoulli(0.5))
        c = pyro.sample("c", dist.Bernoulli(0.2 + 0.6 * a))
    pyro.sample("s", dist.Normal((a + c).sum(-1, keepdim=True), 1.0), obs=y)


_X = torch.tensor([[1.0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]])
_PROGRAMS = {
    "sbn": (lambda: _sbn().model, (_X,)),
    "categorical": (lambda: _categorical, (torch.tensor([-2.5, 0.4, 2.9]),)),
    "tied": (lambda: _tied, (torch.tensor([3.0]),)),
}


def _draws(model, args, compile, *, metropolized=False, chains=7, draws=12, seed=0):
    torch.manual_seed(seed)
    kernel = Gibbs(model, chains=chains, metropolized=metropolized, compile=compile)
    with local_params():
        mcmc = MCMC(kernel, num_samples=draws, warmup_steps=3, disable_progbar=True)
        mcmc.run(*args)
    return mcmc.get_samples(), kernel


@pytest.mark.parametrize("metropolized", [False, True])
@pytest.mark.parametrize("program", sorted(_PROGRAMS))
def test_a_replayed_sweep_draws_what_the_eager_sweep_draws(program, metropolized):
    make, args = _PROGRAMS[program]
    model = make()
    eager, _ = _draws(model, args, False, metropolized=metropolized)
    replayed, kernel = _draws(model, args, "replay", metropolized=metropolized)
    assert kernel.graphs.eager == {} and kernel.graphs.traces == {"gibbs": 1}
    assert eager.keys() == replayed.keys()
    for name in eager:
        assert torch.equal(eager[name], replayed[name]), name


def test_new_data_shapes_trace_again_and_graphs_serve_later_runs():
    kernel = Gibbs(_categorical, chains=5, compile="replay")
    for y in (torch.tensor([0.5, 1.0]), torch.tensor([0.5, 1.0, 2.0]), torch.tensor([0.1, -1.0])):
        torch.manual_seed(1)
        replayed = MCMC(kernel, num_samples=4, warmup_steps=1, disable_progbar=True)
        replayed.run(y)
        torch.manual_seed(1)
        eager = MCMC(Gibbs(_categorical, chains=5), num_samples=4, warmup_steps=1,
                     disable_progbar=True)
        eager.run(y)
        assert torch.equal(replayed.get_samples()["z"], eager.get_samples()["z"])
    assert kernel.graphs.traces == {"gibbs": 2}  # the third run replays the first's graph


class _Drifting:
    """A model whose likelihood moves with a Python counter, which a graph would freeze."""

    def __init__(self):
        self.calls = 0

    def __call__(self, y):
        self.calls += 1
        with pyro.plate("data", len(y)):
            z = pyro.sample("z", dist.Bernoulli(0.5))
            pyro.sample("y", dist.Normal(z + 0.1 * self.calls, 1.0), obs=y)


def _reading(y):
    # Reads a value into Python: a graph cannot follow it.
    scale = 1.0 + float(y.abs().max())
    with pyro.plate("data", len(y)):
        z = pyro.sample("z", dist.Bernoulli(0.5))
        pyro.sample("y", dist.Normal(z, scale), obs=y)


@pytest.mark.parametrize(("make", "reason"), [
    (_Drifting, "disagreed with the program on a later step"),
    (lambda: _reading, "reads a tensor's value in Python"),
])
def test_a_model_a_graph_cannot_follow_sweeps_eagerly_and_says_why(make, reason, caplog):
    y = torch.tensor([0.3, 1.2, -0.4])
    eager, _ = _draws(make(), (y,), False)
    with caplog.at_level(logging.WARNING, logger="ppdgm.inference.compiled"):
        compiled, kernel = _draws(make(), (y,), "replay")
    assert reason in kernel.graphs.eager["gibbs"]
    assert "compile: sampler 'gibbs' runs eagerly: it" in caplog.text
    for name in eager:
        assert torch.equal(eager[name], compiled[name])  # no draw came from a wrong graph


def test_inductor_sweeps_sample_the_exact_posterior():
    torch.manual_seed(1)
    y = torch.tensor([-2.5, 0.4, 2.9])
    locs = torch.tensor([-2.0, 0.0, 1.0, 3.0])
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4])
    exact = (prior.log() + dist.Normal(locs, 1.0).log_prob(y[:, None])).softmax(-1)
    draws, kernel = _draws(_categorical, (y,), "inductor", chains=1000, draws=20)
    assert kernel.graphs.eager == {}
    z = draws["z"].long()
    for i in range(len(y)):
        frequencies = torch.bincount(z[..., i].reshape(-1), minlength=4).double() / z[..., i].numel()
        assert 0.5 * (frequencies - exact[i].double()).abs().sum() < 0.02


def test_compile_is_checked():
    with pytest.raises(ValueError, match="compile: expected True, False or one of"):
        Gibbs(_categorical, compile="fast")
