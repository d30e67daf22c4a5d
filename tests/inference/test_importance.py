"""Importance weights, the IWAE bound and the log-likelihood estimator against exact answers."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO
from pyro.nn import PyroParam
from torch.distributions import constraints

from ppdgm._pyro import local_params
from ppdgm.inference.evaluate import estimate_elbo, estimate_log_likelihood
from ppdgm.inference.importance import log_weights, plate_nesting
from ppdgm.inference.objectives import IWAE, build_objective
from ppdgm.models import VAE
from ppdgm.models.linear_gaussian import LinearGaussian, LinearGaussianConfig


def _ppca(seed: int = 0) -> LinearGaussian:
    pyro.set_rng_seed(seed)
    return LinearGaussian(LinearGaussianConfig(x_dim=3, z_dim=1, obs_scale=0.5))


def _set_exact_guide(m: LinearGaussian) -> None:
    """With z_dim=1 the exact posterior is a 1-D Gaussian, linear in x: the guide can equal it."""
    w, b, s2 = m.weight.detach(), m.bias.detach(), m.config.obs_scale**2
    cov = 1.0 / (1.0 + (w.T @ w) / s2)  # (1, 1)
    a = (cov @ w.T) / s2  # (1, d): mean = a (x - b)
    with torch.no_grad():
        m.enc_weight.copy_(a)
        m.enc_bias.copy_(-(a @ b))
    with local_params():
        m.enc_scale = PyroParam(cov.sqrt().reshape(1), constraint=constraints.positive)


def test_exact_guide_gives_every_weight_equal_to_log_marginal():
    m = _ppca()
    _set_exact_guide(m)
    x = m.sample(40)
    exact = m.log_marginal(x)
    lw, scale = log_weights(m.model, m.guide, x, num_particles=7)
    assert scale == 1.0
    torch.testing.assert_close(lw, exact.expand(7, -1), atol=1e-4, rtol=0)
    est = estimate_log_likelihood(m.model, m.guide, x, num_samples=300, max_draws=500)
    assert est.log_px.mean == pytest.approx(exact.mean().item(), abs=1e-4)
    assert est.elbo.mean == pytest.approx(exact.mean().item(), abs=1e-4)
    loss = IWAE(num_particles=5).loss(m.model, m.guide, x)
    assert loss == pytest.approx(-exact.sum().item(), rel=1e-5)


def test_estimate_converges_to_log_marginal_from_below():
    m = _ppca()  # untrained guide: far from the posterior, so small K is visibly biased
    x = m.sample(200)
    exact = m.log_marginal(x).mean().item()
    means = []
    for k in (1, 10, 100, 3000):
        est = estimate_log_likelihood(m.model, m.guide, x, num_samples=k, seed=k)
        means.append(est.log_px.mean)
    assert means == sorted(means)
    assert means[0] < exact - 5.0  # the ELBO of this guide is far below log p(x)
    assert means[-1] == pytest.approx(exact, abs=0.05)
    assert means[-1] <= exact + 0.02


def test_iwae_bound_is_monotone_in_k_on_average_and_below_log_marginal():
    m = _ppca(1)
    x = m.sample(100)
    exact = -m.log_marginal(x).sum().item()  # the loss is a negative bound
    averages = {}
    for k in (1, 5, 50):
        objective = IWAE(num_particles=k)
        losses = torch.tensor([objective.loss(m.model, m.guide, x) for _ in range(60)])
        averages[k] = (losses.mean().item(), losses.std().item() / math.sqrt(len(losses)))
    (l1, s1), (l5, _), (l50, s50) = averages[1], averages[5], averages[50]
    assert l1 - 3 * s1 > l5 > l50 + 3 * s50
    assert l50 > exact - 3 * s50


def test_iwae_with_one_particle_equals_trace_elbo_on_the_same_draw():
    vae = VAE(x_shape=(6,), z_dim=2, hidden=(8,))
    x = torch.bernoulli(torch.full((5, 6), 0.5))
    pyro.set_rng_seed(3)
    ours = IWAE(num_particles=1).loss(vae.model, vae.guide, x)
    pyro.set_rng_seed(3)
    pyros = Trace_ELBO().loss(vae.model, vae.guide, x)
    assert ours == pytest.approx(pyros, rel=1e-5)


def test_iwae_loss_matches_a_hand_computation():
    torch.manual_seed(0)
    vae = VAE(x_shape=(6,), z_dim=3, hidden=(8,))
    x = torch.bernoulli(torch.full((4, 6), 0.5))
    k = 9
    pyro.set_rng_seed(11)
    loss = IWAE(num_particles=k).differentiable_loss(vae.model, vae.guide, x)
    pyro.set_rng_seed(11)
    with torch.no_grad():
        loc, scale = vae.encode(x)
        eps = torch.empty(k, 4, 3).normal_()  # how Normal.rsample draws a (k, batch, z) block
        z = loc + scale * eps
        logits = vae.decoder(z)
        log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, x.expand(k, -1, -1), reduction="none").sum(-1)
        log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_qz = torch.distributions.Normal(loc, scale).log_prob(z).sum(-1)
        lw = log_px_z + log_pz - log_qz
        hand = -(torch.logsumexp(lw, 0) - math.log(k)).sum()
    assert loss.item() == pytest.approx(hand.item(), rel=1e-5)
    loss.backward()  # pathwise gradients reach the encoder and the decoder
    assert all(p.grad is not None for p in vae.parameters())


def test_subsampled_plate_scales_the_bound():
    def model(x):
        with pyro.plate("data", 8, subsample_size=4) as idx:
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, 1.0), obs=x[idx])

    def guide(x):
        with pyro.plate("data", 8, subsample_size=4):
            pyro.sample("z", dist.Normal(0.0, 1.0))

    x = torch.zeros(8)
    lw, scale = log_weights(model, guide, x, num_particles=3)
    assert lw.shape == (3, 4) and scale == 2.0


def test_latent_outside_the_data_plate_is_refused():
    def model(x):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(mu, 1.0), obs=x)

    def guide(x):
        pyro.sample("mu", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="site 'mu' is outside the plate 'data'"):
        log_weights(model, guide, torch.zeros(3), num_particles=2)


def test_iwae_refuses_a_guide_without_reparameterization():
    def model(x):
        with pyro.plate("data", x.shape[0]):
            c = pyro.sample("c", dist.Bernoulli(0.5))
            pyro.sample("x", dist.Normal(c, 1.0), obs=x)

    def guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("c", dist.Bernoulli(0.3))

    with pytest.raises(ValueError, match="site 'c' .* not reparameterizable"):
        IWAE(num_particles=2).differentiable_loss(model, guide, torch.zeros(3))


def test_plate_nesting_leaves_the_rng_alone():
    m = _ppca()
    x = m.sample(3)
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    assert plate_nesting(m.model, m.guide, x) == 1
    assert torch.equal(torch.rand(1), expected)


def test_chunking_does_not_change_the_estimate_beyond_noise():
    m = _ppca(2)
    x = m.sample(100)
    whole = estimate_log_likelihood(m.model, m.guide, x, num_samples=400, max_draws=10**6, seed=1)
    chunked = estimate_log_likelihood(m.model, m.guide, x, num_samples=400, max_draws=300, seed=2)
    assert chunked.num_samples == whole.num_samples == 400
    assert chunked.log_px.mean == pytest.approx(whole.log_px.mean, abs=0.05)


def test_estimates_are_reproducible_with_a_seed_and_keep_the_global_rng():
    m = _ppca()
    x = m.sample(20)
    torch.manual_seed(9)
    a = estimate_log_likelihood(m.model, m.guide, x, num_samples=10, seed=4)
    after = torch.rand(1)
    torch.manual_seed(9)
    b = estimate_log_likelihood(m.model, m.guide, x, num_samples=10, seed=4)
    assert a == b and torch.equal(torch.rand(1), after)


def test_estimate_elbo_agrees_with_the_closed_form():
    m = _ppca(3)
    x = m.sample(300)
    est = estimate_elbo(m.model, m.guide, x, num_particles=200)
    assert est.mean == pytest.approx(m.exact_elbo(x).mean().item(), abs=4 * est.stderr / 10 + 0.05)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_sample_counts_are_named(bad):
    m = _ppca()
    with pytest.raises((TypeError, ValueError), match="num_samples"):
        estimate_log_likelihood(m.model, m.guide, m.sample(2), num_samples=bad)
    with pytest.raises((TypeError, ValueError), match="num_particles"):
        IWAE(num_particles=bad)


def test_build_objective_names_and_particles():
    assert isinstance(build_objective("iwae", k=7), IWAE)
    assert build_objective("elbo", k=3).num_particles == 3
    with pytest.raises(ValueError, match="objective: expected one of"):
        build_objective("renyi")
    with pytest.raises(ValueError, match="k"):
        build_objective("elbo", k=0)


@pytest.mark.parametrize("name", ["elbo", "elbo-analytic"])
def test_elbo_objectives_match_a_hand_computation(name):
    torch.manual_seed(0)
    vae = VAE(x_shape=(6,), z_dim=3, hidden=(8,))
    x = torch.bernoulli(torch.full((4, 6), 0.5))
    pyro.set_rng_seed(5)
    loss = build_objective(name).loss(vae.model, vae.guide, x)
    pyro.set_rng_seed(5)
    with torch.no_grad():
        loc, scale = vae.encode(x)
        z = loc + scale * torch.empty(4, 3).normal_()
        log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
            vae.decoder(z), x, reduction="sum")
        q, p = torch.distributions.Normal(loc, scale), torch.distributions.Normal(0.0, 1.0)
        if name == "elbo":
            kl = (q.log_prob(z) - p.log_prob(z)).sum()
        else:  # closed form: sum of 0.5 (s^2 + m^2 - 1) - log s
            kl = (0.5 * (scale**2 + loc**2 - 1) - scale.log()).sum()
        hand = -(log_px_z - kl)
    assert loss == pytest.approx(hand.item(), rel=1e-5)


def test_iwae_agrees_with_pyros_renyi_elbo_at_alpha_zero():
    from pyro.infer import RenyiELBO

    torch.manual_seed(0)
    vae = VAE(x_shape=(6,), z_dim=2, hidden=(8,))
    x = torch.bernoulli(torch.full((20, 6), 0.5))
    renyi = RenyiELBO(alpha=0.0, num_particles=7, vectorize_particles=True, max_plate_nesting=1)
    with local_params():
        pyro.set_rng_seed(4)
        theirs = renyi.loss(vae.model, vae.guide, x)
        pyro.set_rng_seed(4)
        ours = IWAE(num_particles=7).loss(vae.model, vae.guide, x)
    assert ours == pytest.approx(theirs, rel=1e-6)
