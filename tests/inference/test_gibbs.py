"""The generic Gibbs kernel against exact posteriors computed by enumeration."""

import itertools
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC
from pyro.ops.stats import split_gelman_rubin

from ppdgm._pyro import local_params
from ppdgm.diagnostics import to_inference_data
from ppdgm.inference.mcmc.gibbs import Gibbs, gibbs_plan, gibbs_sweep
from ppdgm.models import SBNConfig, SigmoidBeliefNet

# Tolerances: with N effectively independent draws, the total variation between an empirical
# distribution over S states and the truth is about sum_s sqrt(p_s / N) / sqrt(2 pi) <= sqrt(S / N) / 2.5.
# The runs below keep that under 0.02; a wrong conditional (e.g. dropping the likelihood) moves
# these posteriors by more than 0.3.


def _total_variation(samples: torch.Tensor, exact: torch.Tensor) -> float:
    counts = torch.bincount(samples, minlength=exact.numel()).double()
    return 0.5 * (counts / counts.sum() - exact.double()).abs().sum().item()


def _codes(bits: torch.Tensor) -> torch.Tensor:
    weights = 2 ** torch.arange(bits.shape[-1] - 1, -1, -1)
    return (bits.long() * weights).sum(-1)


def _all_states(width: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=width)))


@pytest.fixture
def sbn():
    torch.manual_seed(3)
    model = SigmoidBeliefNet(SBNConfig(x_shape=(6,), layers=(3, 2)))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)  # strong weights: a posterior far from the prior
    return model


def _sbn_exact_posterior(model, x):
    """p(z1, z2 | x) for each data point, over the 2^5 joint states (z1 bits first)."""
    states = _all_states(5)  # (32, 5)
    z1 = states[:, None, :3].expand(32, len(x), 3)
    z2 = states[:, None, 3:].expand(32, len(x), 2)
    conditioned = pyro.poutine.condition(model.model, data={"z1": z1, "z2": z2})
    with local_params(), torch.no_grad():
        trace = pyro.poutine.trace(conditioned).get_trace(x)
    trace.compute_log_prob()
    log_joint = sum(trace.nodes[n]["log_prob"] for n in ("z1", "z2", "x"))  # (32, batch)
    return log_joint.softmax(0).T  # (batch, 32)


@pytest.mark.parametrize("metropolized", [False, True])
def test_sbn_posterior_matches_enumeration(sbn, metropolized):
    torch.manual_seed(0)
    x = torch.tensor([[1.0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]])
    exact = _sbn_exact_posterior(sbn, x)
    kernel = Gibbs(sbn.model, chains=500, metropolized=metropolized)
    with local_params():
        mcmc = MCMC(kernel, num_samples=60, warmup_steps=10, disable_progbar=True)
        mcmc.run(x)
    samples = mcmc.get_samples()
    assert samples["z1"].shape == (60, 500, 2, 3)
    codes = _codes(torch.cat([samples["z1"], samples["z2"]], -1))  # (draws, chains, batch)
    prior_tv = []
    for i in range(len(x)):
        assert _total_variation(codes[..., i].reshape(-1), exact[i]) < 0.03
        prior_tv.append(_total_variation(codes[..., i].reshape(-1), exact[1 - i]))
    assert max(prior_tv) > 0.3  # the two points' posteriors differ: the check has teeth
    assert set(kernel.diagnostics()["flip rate"]) == {"z1", "z2"}
    assert not any(set(vars(m)) & set(m._parameters) for m in sbn.modules())  # no shadow left


def test_plan_blocks_independent_plates_and_sweeps_events(sbn):
    x = torch.zeros(4, 6)
    with local_params():
        plan = gibbs_plan(sbn.model, (x,), chains=3)
    z1, z2 = plan.sites
    assert (z1.name, z2.name) == ("z1", "z2")
    assert z1.blocked == (True, True) and z1.event_shape == (3,)
    assert set(z1.blanket) == {"z1", "z2"} and set(z2.blanket) == {"z2", "x"}


def _categorical_model(y):
    locs = torch.tensor([-2.0, 0.0, 1.0, 3.0])
    with pyro.plate("data", len(y)):
        z = pyro.sample("z", dist.Categorical(torch.tensor([0.1, 0.2, 0.3, 0.4])))
        pyro.sample("y", dist.Normal(locs[z], 1.0), obs=y)


@pytest.mark.parametrize("metropolized", [False, True])
def test_categorical_posterior_matches_closed_form(metropolized):
    torch.manual_seed(1)
    y = torch.tensor([-2.5, 0.4, 2.9])
    locs = torch.tensor([-2.0, 0.0, 1.0, 3.0])
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4])
    exact = (prior.log() + dist.Normal(locs, 1.0).log_prob(y[:, None])).softmax(-1)
    mcmc = MCMC(Gibbs(_categorical_model, chains=1000, metropolized=metropolized), num_samples=20,
                warmup_steps=2, disable_progbar=True)
    mcmc.run(y)
    z = mcmc.get_samples()["z"].long()
    for i in range(len(y)):
        assert _total_variation(z[..., i].reshape(-1), exact[i]) < 0.02


def _categorical_pair(y):
    # Two 3-valued units in one event, tied by an observed sum: swept one at a time, and each
    # unit's update after the first reuses the density of the value kept before it.
    prior = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]])
    z = pyro.sample("z", dist.Categorical(prior).to_event(1))
    pyro.sample("y", dist.Normal(z.sum(-1).float(), 0.7), obs=y)


@pytest.mark.parametrize("metropolized", [False, True])
def test_swept_categorical_units_match_enumeration(metropolized):
    y = torch.tensor(2.6)
    states = torch.tensor(list(itertools.product(range(3), repeat=2)))  # (9, 2), unit 0 first
    prior = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]])
    log_joint = (prior[0, states[:, 0]].log() + prior[1, states[:, 1]].log()
                 + dist.Normal(states.sum(-1).float(), 0.7).log_prob(y))
    exact = log_joint.softmax(0)
    plan = gibbs_plan(_categorical_pair, (y,), chains=3)
    assert plan.sites[0].event_shape == (2,)
    torch.manual_seed(4)
    mcmc = MCMC(Gibbs(_categorical_pair, chains=2000, metropolized=metropolized), num_samples=15,
                warmup_steps=10, disable_progbar=True)
    mcmc.run(y)
    z = mcmc.get_samples()["z"].long().reshape(-1, 2)
    assert _total_variation(z[:, 0] * 3 + z[:, 1], exact) < 0.02
    assert _total_variation(z[:, 0] * 3 + z[:, 1], log_joint.mul(0).softmax(0)) > 0.3


def test_sites_tied_by_an_observed_sum_are_swept_one_at_a_time():
    def model():
        with pyro.plate("p", 3):
            a = pyro.sample("a", dist.Bernoulli(0.5))
        # keepdim: the sum must broadcast over the chain and candidate dimensions on its left.
        pyro.sample("s", dist.Normal(a.sum(-1, keepdim=True), 1.0), obs=torch.tensor(2.0))

    plan = gibbs_plan(model, chains=2)
    assert plan.sites[0].blocked == (True, False)  # chains together, the plate element by element
    states = _all_states(3)
    log_joint = dist.Normal(states.sum(-1), 1.0).log_prob(torch.tensor(2.0))
    exact = log_joint.softmax(0)
    torch.manual_seed(2)
    mcmc = MCMC(Gibbs(model, chains=2000), num_samples=15, warmup_steps=10, disable_progbar=True)
    mcmc.run()
    codes = _codes(mcmc.get_samples()["a"]).reshape(-1)
    assert _total_variation(codes, exact) < 0.02


def test_one_hot_site_is_enumerated_as_a_whole():
    def model():
        with pyro.plate("data", 2):
            z = pyro.sample("z", dist.OneHotCategorical(torch.tensor([0.2, 0.3, 0.5])))
            pyro.sample("y", dist.Normal(z @ torch.tensor([-1.0, 0.0, 1.0]), 0.5),
                        obs=torch.tensor([1.0, -1.0]))

    plan = gibbs_plan(model, chains=5)
    assert plan.sites[0].support.shape == (3, 3) and plan.sites[0].event_shape == ()
    torch.manual_seed(3)
    values = {"z": torch.eye(3)[torch.zeros(4000, 2, dtype=torch.long)]}
    values = gibbs_sweep(model, values, plan._replace(chains=4000))
    exact = (torch.tensor([0.2, 0.3, 0.5]).log()
             + dist.Normal(torch.tensor([-1.0, 0.0, 1.0]), 0.5).log_prob(torch.tensor([[1.0], [-1.0]])))
    exact = exact.softmax(-1)
    for i in range(2):
        # One sweep from any state is an exact draw: the site has no other latent to wait for.
        assert _total_variation(values["z"][:, i].argmax(-1), exact[i]) < 0.03


def test_chains_mix_and_arviz_reads_the_run():
    torch.manual_seed(4)
    y = torch.tensor([-2.5, 0.4, 2.9])
    with warnings.catch_warnings():
        # With fewer spare CPUs than chains, Pyro runs the chains one after the other and says so.
        warnings.filterwarnings("ignore", message="num_chains=", category=UserWarning)
        mcmc = MCMC(Gibbs(_categorical_model), num_samples=200, warmup_steps=20, disable_progbar=True,
                    num_chains=2)
        mcmc.run(y)
    z = mcmc.get_samples(group_by_chain=True)["z"]
    assert z.shape == (2, 200, 3)
    assert not torch.equal(z[0], z[1])  # each chain starts from its own prior draw
    rhat = split_gelman_rubin(z.float())
    assert (rhat < 1.1).all()
    idata = to_inference_data(mcmc, log_likelihood=False)
    assert idata.posterior["z"].shape == (2, 200, 3)


def test_rejects_continuous_latents_and_unknown_sites():
    def model():
        pyro.sample("a", dist.Normal(0.0, 1.0))
        pyro.sample("b", dist.Bernoulli(0.5))

    with pytest.raises(ValueError, match="no enumerable support"):
        gibbs_plan(model)
    with pytest.raises(ValueError, match="sites: \\['c'\\]"):
        gibbs_plan(model, sites=["c"])
    with pytest.raises(TypeError, match="model: expected a callable"):
        Gibbs("not a model")
    with pytest.raises(ValueError, match="chains"):
        Gibbs(model, chains=0)
