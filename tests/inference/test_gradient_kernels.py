"""Gibbs-with-Gradients and DMALA against exact distributions computed by enumeration.

Tolerances as in test_gibbs.py: with N effectively independent draws over S states the total
variation from the truth is about sqrt(S / N) / 2.5. Every run below keeps that under 0.02 for
a kernel that leaves the right distribution invariant; the test doubles that drop the reverse
proposal from the Metropolis-Hastings ratio land far off, which shows the checks can fail.
"""

import sys
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC

from ppdgm._pyro import local_params
from ppdgm.diagnostics import to_inference_data
from ppdgm.inference.mcmc import DMALA, GibbsWithGradients
from ppdgm.inference.mcmc.gradients import Proposal
from ppdgm.models import SBNConfig, SigmoidBeliefNet

sys.path.insert(0, str(Path(__file__).parent))
from discrete_targets import binary_states, codes, rbm, total_variation  # noqa: E402

KERNELS = [GibbsWithGradients, DMALA]


def _draws(kernel, *args, samples=150, warmup=60):
    mcmc = MCMC(kernel, num_samples=samples, warmup_steps=warmup, disable_progbar=True)
    mcmc.run(*args)
    return mcmc


class _NoReverse:
    """A test double: the Metropolis-Hastings ratio without the proposal's asymmetry."""

    def _propose(self, current, deltas, step):
        proposal = super()._propose(current, deltas, step)
        return Proposal(proposal.options, torch.zeros_like(proposal.log_q))

    def _log_q(self, start, deltas, end, step):
        return torch.zeros(len(start[0]))


class _BrokenGwG(_NoReverse, GibbsWithGradients):
    pass


class _BrokenDMALA(_NoReverse, DMALA):
    pass


def _ising_energy(x: torch.Tensor, rows: int = 3, cols: int = 3) -> torch.Tensor:
    spins = (2 * x - 1).reshape(*x.shape[:-1], rows, cols)
    bonds = ((spins[..., 1:, :] * spins[..., :-1, :]).sum((-1, -2))
             + (spins[..., :, 1:] * spins[..., :, :-1]).sum((-1, -2)))
    return 0.4 * bonds + 0.1 * spins.sum((-1, -2))


def _ising():
    x = pyro.sample("x", dist.Bernoulli(0.5 * torch.ones(9)).to_event(1))
    pyro.factor("coupling", _ising_energy(x))


@pytest.mark.parametrize("kernel, broken", [(GibbsWithGradients, _BrokenGwG), (DMALA, _BrokenDMALA)])
def test_ising_grid_matches_enumeration_and_a_wrong_ratio_does_not(kernel, broken):
    exact = _ising_energy(binary_states(9)).softmax(0)  # 512 states of a 3 x 3 lattice
    torch.manual_seed(0)
    mcmc = _draws(kernel(_ising, chains=2000), samples=200, warmup=100)
    assert total_variation(codes(mcmc.get_samples()["x"]), exact) < 0.02
    torch.manual_seed(0)
    wrong = _draws(broken(_ising, chains=2000), samples=200, warmup=100)
    assert total_variation(codes(wrong.get_samples()["x"]), exact) > 0.1


@pytest.mark.parametrize("kernel", KERNELS)
def test_rbm_joint_matches_enumeration(kernel):
    model, exact = rbm()
    samples = _draws(kernel(model, chains=1000)).get_samples()
    assert total_variation(codes(torch.cat([samples["v"], samples["h"]], -1)), exact) < 0.02


@pytest.mark.parametrize("kernel", KERNELS)
def test_two_layer_sbn_posterior_matches_enumeration_point_by_point(kernel):
    torch.manual_seed(3)
    sbn = SigmoidBeliefNet(SBNConfig(x_shape=(6,), layers=(3, 2)))
    with torch.no_grad():
        for p in sbn.parameters():
            p.mul_(3.0)  # a posterior far from the prior
    x = torch.tensor([[1.0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]])
    states = binary_states(5)
    with local_params(), torch.no_grad():
        conditioned = pyro.poutine.condition(sbn.model, data={"z1": states[:, None, :3],
                                                              "z2": states[:, None, 3:]})
        trace = pyro.poutine.trace(conditioned).get_trace(x)
    trace.compute_log_prob()
    exact = sum(trace.nodes[n]["log_prob"] for n in ("z1", "z2", "x")).softmax(0).T  # (2, 32)
    moved = kernel(sbn.model, chains=1000)
    with local_params():
        samples = _draws(moved, x).get_samples()
    # Each data point is a unit of its own: a move is accepted or rejected point by point.
    assert moved.units.sizes == (1000, 2)
    drawn = codes(torch.cat([samples["z1"], samples["z2"]], -1))  # (draws, chains, points)
    for i in range(2):
        assert total_variation(drawn[..., i], exact[i]) < 0.02
        assert total_variation(drawn[..., i], exact[1 - i]) > 0.2


def test_a_plate_tied_downstream_is_not_split_into_units():
    y = torch.tensor(2.0)

    def tied(y):
        with pyro.plate("units", 4):
            z = pyro.sample("z", dist.Bernoulli(0.5))
        pyro.sample("y", dist.Normal(z.sum(-1, keepdim=True), 0.5), obs=y)  # ties the plate

    kernel = GibbsWithGradients(tied, chains=1000)
    samples = _draws(kernel, y).get_samples()["z"]
    assert kernel.units.sizes == (1000,)
    states = binary_states(4)
    exact = dist.Normal(states.sum(-1), 0.5).log_prob(y).softmax(0)
    assert total_variation(codes(samples), exact) < 0.02


@pytest.mark.parametrize("kernel", KERNELS)
def test_one_hot_mixture_matches_enumeration(kernel):
    weights, locs = torch.tensor([0.2, 0.3, 0.5]), torch.tensor([-1.0, 0.0, 1.0])
    y = torch.tensor([0.8, -0.9, 0.1])

    def model(y):
        with pyro.plate("data", len(y)):
            z = pyro.sample("z", dist.OneHotCategorical(weights))
            pyro.sample("y", dist.Normal(z @ locs, 0.5), obs=y)

    each = (weights.log() + dist.Normal(locs, 0.5).log_prob(y[:, None])).log_softmax(-1)
    joint = sum(torch.meshgrid(*each, indexing="ij")).exp().flatten()  # 27 joint states
    torch.manual_seed(2)
    mcmc = _draws(kernel(model, chains=1000), y)
    z = mcmc.get_samples()["z"].argmax(-1)  # (draws, chains, 3)
    assert total_variation(z[..., 0] * 9 + z[..., 1] * 3 + z[..., 2], joint) < 0.02


@pytest.mark.parametrize("kernel", KERNELS)
def test_draws_reach_arviz_and_report_acceptance(kernel):
    torch.manual_seed(0)
    mcmc = _draws(kernel(_ising, chains=4), samples=30, warmup=10)
    rate = mcmc.kernel.diagnostics()["acceptance rate"]
    assert 0 < rate <= 1 and set(mcmc.kernel.diagnostics()["flip rate"]) == {"x"}
    posterior = to_inference_data(mcmc, log_likelihood=False).posterior
    assert posterior["x"].shape == (4, 30, 9)


def test_dmala_adapts_its_step_size_during_warmup_only():
    torch.manual_seed(0)
    kernel = DMALA(_ising, chains=500, step_size=0.01)
    mcmc = MCMC(kernel, num_samples=5, warmup_steps=100, disable_progbar=True)
    mcmc.run()
    adapted = kernel.step_size
    assert adapted > 0.1  # 0.01 moves almost nothing: the adaptation must grow it
    assert abs(kernel.acceptance_rate - 0.574) < 0.15
    fixed = DMALA(_ising, chains=10, step_size=0.01, adapt_step_size=False)
    MCMC(fixed, num_samples=5, warmup_steps=20, disable_progbar=True).run()
    assert fixed.step_size == pytest.approx(0.01)


def _sbn_posterior():
    torch.manual_seed(3)
    sbn = SigmoidBeliefNet(SBNConfig(x_shape=(6,), layers=(3, 2)))
    return sbn.model, torch.tensor([[1.0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]])


def _mixture():
    def model(y):
        with pyro.plate("data", len(y)):
            z = pyro.sample("z", dist.OneHotCategorical(torch.ones(3) / 3))
            pyro.sample("y", dist.Normal(z @ torch.tensor([-1.0, 0.0, 1.0]), 0.5), obs=y)
    return model, torch.tensor([0.8, -0.9, 0.1])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("target", [_sbn_posterior, _mixture])
def test_a_replayed_move_draws_what_the_eager_move_draws(kernel, target):
    # Warm-up adapts DMALA's step size on every step: the replayed graph must read it anew.
    model, x = target()
    runs = []
    for compile in (False, "replay"):
        torch.manual_seed(5)
        moved = kernel(model, chains=7, compile=compile)
        with local_params():
            runs.append((moved, _draws(moved, x, samples=40, warmup=30).get_samples()))
    (eager, eager_draws), (replayed, replayed_draws) = runs
    assert replayed.graphs.eager == {} and replayed.graphs.traces == {"move": 1}
    for site, value in eager_draws.items():
        assert torch.equal(value, replayed_draws[site]), site
    assert replayed.step_size == eager.step_size or kernel is GibbsWithGradients
    assert replayed.acceptance_rate == pytest.approx(eager.acceptance_rate)


def test_a_move_that_cannot_be_traced_runs_eagerly_with_the_same_draws(caplog):
    def reads_a_float(y):
        z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(3)).to_event(1))
        scale = float(y.abs().max()) + 0.5  # a Python float: a graph would freeze it
        pyro.sample("y", dist.Normal(z.sum(-1), scale), obs=y)

    draws = []
    for compile in (False, "replay"):
        torch.manual_seed(1)
        kernel = DMALA(reads_a_float, chains=3, compile=compile)
        draws.append(_draws(kernel, torch.tensor(2.0), samples=10, warmup=5).get_samples()["z"])
    assert "move" in kernel.graphs.eager and "runs eagerly" in caplog.text
    assert torch.equal(*draws)


def test_compile_is_checked():
    with pytest.raises(ValueError, match="compile"):
        DMALA(_ising, compile="fast")


def test_sites_no_gradient_can_reach_are_refused():
    def indexed():
        k = pyro.sample("k", dist.Categorical(torch.ones(3)))
        pyro.sample("y", dist.Normal(torch.tensor([-1.0, 0.0, 1.0])[k], 1.0), obs=torch.tensor(0.5))

    with pytest.raises(ValueError, match="sites: 'k' is a Categorical index.*OneHotCategorical"):
        MCMC(GibbsWithGradients(indexed), num_samples=2, warmup_steps=0,
             disable_progbar=True).run()
    with pytest.raises(TypeError, match="model: expected a callable"):
        DMALA("not a model")
    with pytest.raises(ValueError, match="step_size"):
        DMALA(_ising, step_size=0.0)
    with pytest.raises(ValueError, match="target_accept"):
        DMALA(_ising, target_accept=1.0)
    with pytest.raises(TypeError, match="adapt_step_size"):
        DMALA(_ising, adapt_step_size="yes")
