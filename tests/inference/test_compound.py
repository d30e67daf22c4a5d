"""A move per block of sites, against exact distributions computed by enumeration."""

import sys
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC

from ppdgm.inference.mcmc import Compound

sys.path.insert(0, str(Path(__file__).parent))
from discrete_targets import binary_states, codes, rbm, total_variation  # noqa: E402


@pytest.mark.parametrize("moves", [{"v": "gwg", "h": "gibbs"}, {"v": "dmala", "h": "gwg"},
                                   {"v": "metropolized-gibbs"}])
def test_discrete_blocks_leave_the_joint_invariant(moves):
    model, exact = rbm()
    kernel = Compound(model, moves=moves, chains=1000)
    mcmc = MCMC(kernel, num_samples=120, warmup_steps=40, disable_progbar=True)
    mcmc.run()
    samples = mcmc.get_samples()
    assert total_variation(codes(torch.cat([samples["v"], samples["h"]], -1)), exact) < 0.02
    assert kernel.blocks == {"v": moves["v"], "h": moves.get("h", "gibbs")}


def test_a_gradient_move_and_hmc_share_a_mixed_posterior():
    y = torch.tensor([1.2, 0.3, 0.9])  # a posterior over z spread across several codes

    def model(y):
        loc = pyro.sample("loc", dist.Normal(0.0, 2.0))
        z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(3)).to_event(1))
        pyro.sample("y", dist.Normal(loc[..., None] * z, 0.5).to_event(1), obs=y)

    # p(z | y) exactly: loc integrates out in closed form for each of the 8 codes.
    log_evidence = []
    for z in binary_states(3):
        covariance = 4.0 * torch.outer(z, z) + 0.25 * torch.eye(3)
        log_evidence.append(dist.MultivariateNormal(torch.zeros(3), covariance).log_prob(y))
    exact = torch.stack(log_evidence).softmax(0)
    torch.manual_seed(0)
    kernel = Compound(model, moves={"z": "dmala"}, continuous="hmc", step_size=0.3, num_steps=4)
    mcmc = MCMC(kernel, num_samples=1000, warmup_steps=150, disable_progbar=True)
    mcmc.run(y)
    z = mcmc.get_samples()["z"]
    # 8 states, one autocorrelated chain of 1000 draws: about 0.05 from the truth, 0.45 from uniform.
    assert total_variation(codes(z), exact) < 0.1
    assert total_variation(codes(z), torch.full((8,), 1 / 8)) > 0.3
    rate = mcmc.diagnostics()["dmala"]["chain 0"]["acceptance rate"]
    assert 0.2 < rate <= 1


def test_bad_moves_are_refused_naming_the_site():
    model, _ = rbm()

    def run(kernel):
        MCMC(kernel, num_samples=1, warmup_steps=0, disable_progbar=True).run()

    with pytest.raises(ValueError, match=r"moves\['v'\]: expected one of"):
        Compound(model, moves={"v": "langevin"})
    with pytest.raises(ValueError, match=r"moves\['v'\]: 'v' is discrete; expected one of gibbs"):
        run(Compound(model, moves={"v": "nuts"}))
    with pytest.raises(ValueError, match=r"moves: \['w'\] are not latent"):
        run(Compound(model, moves={"w": "gibbs"}))
    with pytest.raises(TypeError, match="moves: expected a mapping"):
        Compound(model, moves=["v"])

    def mixed():
        pyro.sample("loc", dist.Normal(0.0, 1.0))
        pyro.sample("z", dist.Bernoulli(0.5))

    with pytest.raises(ValueError, match=r"chains: \['loc'\] move by nuts"):
        run(Compound(mixed, chains=4))
