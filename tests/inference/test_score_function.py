"""Gradient estimators for discrete latents: their averages match exact gradients.

VIMCO against the exact gradient of the expected K-sample bound, NVIL (Pyro's TraceGraph_ELBO
with the guide's neural baselines) against the exact gradient of the ELBO, and the wake phase of
wake-sleep against the exact gradient of E_q[log p(x, z)], all computed by enumerating every
latent state of a tiny sigmoid belief net.
"""

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceGraph_ELBO

from ppdgm._pyro import local_params
from ppdgm.inference.objectives import VIMCO
from ppdgm.inference.objectives.vimco import leave_one_out_bounds
from ppdgm.models.sbn import SigmoidBeliefNet


def _exact_expected_bound(sbn, x, k):
    """E_q[log (1/k) sum_j p(x, z_j) / q(z_j | x)], summed over x, by enumerating all k-tuples."""
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sbn.config.layers[0])))
    log_q = dist.Bernoulli(logits=sbn.recognition[0](x).unsqueeze(1)).log_prob(states).sum(-1)
    log_prior = dist.Bernoulli(logits=sbn.top_logits).log_prob(states).sum(-1)
    log_lik = dist.Bernoulli(logits=sbn.generative[0](states)).log_prob(x.unsqueeze(1)).sum(-1)
    log_w = log_prior + log_lik - log_q  # (batch, states)
    total = 0.0
    for combo in itertools.product(range(len(states)), repeat=k):
        idx = list(combo)
        prob = log_q[:, idx].sum(-1).exp()
        bound = torch.logsumexp(log_w[:, idx], dim=-1) - math.log(k)
        total = total + (prob * bound).sum()
    return total


def test_vimco_gradient_is_unbiased_on_an_enumerable_net():
    pyro.set_rng_seed(0)
    sbn = SigmoidBeliefNet(x_shape=(3,), layers=(2,))
    with torch.no_grad():
        for p in sbn.parameters():
            p.normal_(0.0, 1.0)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    k, copies, repeats = 3, 3000, 12
    params = list(sbn.parameters())
    exact = torch.autograd.grad(_exact_expected_bound(sbn, x, k), params)
    estimates = []
    objective = VIMCO(num_particles=k)
    for r in range(repeats):
        pyro.set_rng_seed(100 + r)
        with local_params():
            loss = objective(sbn.model, sbn.guide, x.repeat(copies, 1))
        grads = torch.autograd.grad(-loss / copies, params)
        estimates.append(torch.cat([g.flatten() for g in grads]))
    draws = torch.stack(estimates)
    mean, stderr = draws.mean(0), draws.std(0) / math.sqrt(repeats)
    truth = torch.cat([g.flatten() for g in exact])
    # Every coordinate within 4 standard errors (plus float slack) of the exact gradient.
    assert bool(((mean - truth).abs() <= 4 * stderr + 1e-3).all()), (mean - truth) / stderr
    assert truth.abs().max() > 0.05  # the check is not vacuous


def test_vimco_value_is_the_negative_iwae_bound():
    pyro.set_rng_seed(1)
    sbn = SigmoidBeliefNet(x_shape=(4,), layers=(3,))
    x = sbn.sample(5)
    from ppdgm.inference.importance import log_weights

    with local_params():
        pyro.set_rng_seed(7)
        loss = VIMCO(num_particles=4)(sbn.model, sbn.guide, x)
        pyro.set_rng_seed(7)
        lw, _ = log_weights(sbn.model, sbn.guide, x, num_particles=4)
    assert loss.item() == pytest.approx(-(torch.logsumexp(lw, 0) - math.log(4)).sum().item(), rel=1e-6)


def test_leave_one_out_bounds_by_hand():
    log_w = torch.tensor([[0.0], [math.log(4.0)], [math.log(16.0)]])
    # k=0: others' geometric mean is sqrt(4*16)=8 -> log((8+4+16)/3)
    expected = torch.tensor([[math.log(28 / 3)], [math.log((1 + 4 + 16) / 3)], [math.log((1 + 4 + 2) / 3)]])
    torch.testing.assert_close(leave_one_out_bounds(log_w), expected)


def test_vimco_refuses_reparameterized_latents_and_one_particle():
    from ppdgm.models import VAE

    vae = VAE(x_shape=(4,), z_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match="is reparameterizable"):
        VIMCO(num_particles=2)(vae.model, vae.guide, torch.ones(2, 4))
    with pytest.raises(ValueError, match="num_particles"):
        VIMCO(num_particles=1)


def _exact_elbo(sbn, x):
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sbn.config.layers[0])))
    log_q = dist.Bernoulli(logits=sbn.recognition[0](x).unsqueeze(1)).log_prob(states).sum(-1)
    log_prior = dist.Bernoulli(logits=sbn.top_logits).log_prob(states).sum(-1)
    log_lik = dist.Bernoulli(logits=sbn.generative[0](states)).log_prob(x.unsqueeze(1)).sum(-1)
    return (log_q.exp() * (log_prior + log_lik - log_q)).sum()


def test_nvil_gradient_is_unbiased_and_its_baselines_learn():
    pyro.set_rng_seed(0)
    sbn = SigmoidBeliefNet(x_shape=(3,), layers=(2,), baseline_hidden=8)
    with torch.no_grad():
        for name, p in sbn.named_parameters():
            if not name.startswith("baselines"):
                p.normal_(0.0, 1.0)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    params = [p for n, p in sbn.named_parameters() if not n.startswith("baselines")]
    truth = torch.cat([g.flatten() for g in torch.autograd.grad(_exact_elbo(sbn, x), params)])
    copies, repeats, elbo = 2000, 12, TraceGraph_ELBO()
    estimates = []
    for r in range(repeats):
        pyro.set_rng_seed(200 + r)
        for p in sbn.parameters():
            p.grad = None
        with local_params():
            elbo.loss_and_grads(sbn.model, sbn.guide, x.repeat(copies, 1))
        estimates.append(torch.cat([-p.grad.flatten() / copies for p in params]))
        with torch.no_grad():  # a few steps of the baselines alone between repeats
            for name, p in sbn.named_parameters():
                if name.startswith("baselines"):
                    p -= 0.05 * p.grad / copies
    draws = torch.stack(estimates)
    mean, stderr = draws.mean(0), draws.std(0) / math.sqrt(repeats)
    assert bool(((mean - truth).abs() <= 4 * stderr + 1e-3).all()), (mean - truth) / stderr
    baseline_grads = [p.grad for n, p in sbn.named_parameters() if n.startswith("baselines")]
    assert baseline_grads and all(g is not None and g.abs().sum() > 0 for g in baseline_grads), [
        None if g is None else g.abs().sum().item() for g in baseline_grads]


def test_wake_gradient_is_unbiased_for_the_expected_complete_log_likelihood():
    from ppdgm.inference.objectives import WakeSleep

    pyro.set_rng_seed(3)
    sbn = SigmoidBeliefNet(x_shape=(3,), layers=(2,))
    with torch.no_grad():
        for p in sbn.parameters():
            p.normal_(0.0, 1.0)
    x = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)))
    q = dist.Bernoulli(logits=sbn.recognition[0](x).unsqueeze(1)).log_prob(states).sum(-1).exp()
    model_params = [sbn.top_logits, *sbn.generative.parameters()]
    log_joint = (dist.Bernoulli(logits=sbn.top_logits).log_prob(states).sum(-1)
                 + dist.Bernoulli(logits=sbn.generative[0](states)).log_prob(x.unsqueeze(1)).sum(-1))
    truth = torch.cat([g.flatten() for g in
                       torch.autograd.grad((q.detach() * log_joint).sum(), model_params)])
    copies, repeats, draws = 2000, 12, []
    for r in range(repeats):
        pyro.set_rng_seed(300 + r)
        with local_params():
            wake = WakeSleep.wake(sbn.model, sbn.guide, x.repeat(copies, 1))
        draws.append(torch.cat([-g.flatten() / copies for g in torch.autograd.grad(wake, model_params)]))
    draws = torch.stack(draws)
    mean, stderr = draws.mean(0), draws.std(0) / math.sqrt(repeats)
    assert bool(((mean - truth).abs() <= 4 * stderr + 1e-3).all()), (mean - truth) / stderr
