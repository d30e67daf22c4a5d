"""Wake-sleep and reweighted wake-sleep on sigmoid belief nets whose log p(x) is exact."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from ppdgm._pyro import local_params
from ppdgm.data import load_dataset
from ppdgm.inference import Engine, Player, TrainConfig, adam
from ppdgm.inference.importance import log_weights
from ppdgm.inference.objectives import ReweightedWakeSleep, WakeSleep
from ppdgm.models.sbn import SigmoidBeliefNet


def _grads(loss, params):
    return torch.autograd.grad(loss, params, allow_unused=True)


def _model_params(sbn):
    return [sbn.top_logits, *sbn.generative.parameters()]


def test_rws_model_gradient_is_the_iwae_gradient_per_data_point():
    pyro.set_rng_seed(0)
    sbn = SigmoidBeliefNet(x_shape=(6,), layers=(3, 4))
    x = sbn.sample(7)  # a minibatch: the weights must be normalized per data point
    params = _model_params(sbn)
    with local_params():
        pyro.set_rng_seed(5)
        rws = ReweightedWakeSleep(num_particles=11).player_loss("model", sbn.model, sbn.guide, x)
        pyro.set_rng_seed(5)
        lw, _ = log_weights(sbn.model, sbn.guide, x, num_particles=11)
    iwae = (torch.logsumexp(lw, 0) - math.log(11)).sum()
    assert rws.item() == pytest.approx(-iwae.item(), rel=1e-6)  # the reported value
    for a, b in zip(_grads(rws, params), _grads(-iwae, params)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_rws_guide_gradient_is_the_weighted_score_of_q():
    pyro.set_rng_seed(1)
    sbn = SigmoidBeliefNet(x_shape=(5,), layers=(3,))
    x = sbn.sample(4)
    params = list(sbn.recognition.parameters())
    with local_params():
        pyro.set_rng_seed(2)
        loss = ReweightedWakeSleep(num_particles=6).player_loss("guide", sbn.model, sbn.guide, x)
        pyro.set_rng_seed(2)
        z = torch.empty(6, 4, 3).bernoulli_(torch.sigmoid(sbn.recognition[0](x)).expand(6, -1, -1))
    # The hand computation: weights from the exact joint, then -sum_k w_k log q(z_k | x).
    q = dist.Bernoulli(logits=sbn.recognition[0](x)).log_prob(z).sum(-1)
    prior = dist.Bernoulli(logits=sbn.top_logits).log_prob(z).sum(-1)
    lik = dist.Bernoulli(logits=sbn.generative[0](z)).log_prob(x).sum(-1)
    w = torch.softmax((prior + lik - q).detach(), 0)
    for a, b in zip(_grads(loss, params), _grads(-(w * q).sum(), params)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_wake_moves_only_the_model_and_sleep_only_the_guide():
    pyro.set_rng_seed(3)
    sbn = SigmoidBeliefNet(x_shape=(5,), layers=(3,))
    x = sbn.sample(8)
    objective = WakeSleep()
    with local_params():
        wake = objective.player_loss("wake", sbn.model, sbn.guide, x)
        sleep = objective.player_loss("sleep", sbn.model, sbn.guide, x)
    guide_params = list(sbn.recognition.parameters())
    assert all(g is None for g in _grads(wake, guide_params))
    assert all(g is None for g in _grads(sleep, _model_params(sbn)))
    assert all(g is not None for g in _grads(wake, _model_params(sbn)))
    assert all(g is not None for g in _grads(sleep, guide_params))


def test_wake_value_is_the_negative_elbo():
    pyro.set_rng_seed(4)
    sbn = SigmoidBeliefNet(x_shape=(5,), layers=(3,))
    x = sbn.sample(6)
    with local_params():
        pyro.set_rng_seed(9)
        wake = WakeSleep.wake(sbn.model, sbn.guide, x)
        pyro.set_rng_seed(9)
        lw, _ = log_weights(sbn.model, sbn.guide, x, num_particles=1)
    assert wake.item() == pytest.approx(-lw.sum().item(), rel=1e-5)


def _train(objective, players, seed=0, epochs=150):
    data = load_dataset("bars-and-stripes")
    x = data.train.reshape(30, -1)
    pyro.set_rng_seed(seed)
    sbn = SigmoidBeliefNet(x_shape=(16,), layers=(8,))
    before = sbn.exact_log_marginal(x).mean().item()
    cfg = TrainConfig(epochs=epochs, batch_size=10, seed=seed, device="cpu", progress=False)
    Engine(sbn.model, sbn.guide, objective, players, cfg).fit(x)
    return before, sbn.exact_log_marginal(x).mean().item()


def test_training_raises_the_exact_log_likelihood_of_bars_and_stripes():
    # 16 pixels: a fresh net is near 16 log(1/2) = -11.1 nats; the 30 patterns uniformly would be
    # log(1/30) = -3.4. Over seeds 0-2 this budget gave wake-sleep -8.8 to -9.0 and RWS -5.6 to
    # -5.9; the bounds below leave a margin of about a nat.
    ws_before, ws_after = _train(WakeSleep(), [Player("wake", owns="model", optimizer=adam(0.03)),
                                               Player("sleep", owns="guide", optimizer=adam(0.03))])
    rws_before, rws_after = _train(ReweightedWakeSleep(num_particles=10),
                                   [Player("model", owns="model", optimizer=adam(0.03)),
                                    Player("guide", owns="guide", optimizer=adam(0.03))])
    assert ws_before == rws_before < -10.0  # the same initial net
    assert ws_after > -9.8
    assert rws_after > -6.8
    assert rws_after > ws_after + 1.5  # more particles, better model


def test_unknown_player_is_named():
    sbn = SigmoidBeliefNet(x_shape=(4,), layers=(2,))
    x = sbn.sample(2)
    with pytest.raises(ValueError, match="player: expected one of"):
        WakeSleep().player_loss("dream", sbn.model, sbn.guide, x)
    with pytest.raises(ValueError, match="player: expected one of"):
        ReweightedWakeSleep().player_loss("wake", sbn.model, sbn.guide, x)


def test_sleep_needs_a_model_that_generates_the_batch_shape():
    def model(x=None, num_samples=None):
        with pyro.plate("data", num_samples or x.shape[0]):
            z = pyro.sample("z", dist.Bernoulli(0.5))
            pyro.sample("x", dist.Normal(z, 1.0), obs=x)  # returns nothing useful when generating

    def guide(x=None, num_samples=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Bernoulli(0.5))

    with pytest.raises(ValueError, match="must return n dreamed data points"):
        WakeSleep.sleep(model, guide, torch.zeros(3))


def test_bad_rws_settings_are_named():
    with pytest.raises(ValueError, match="guide_update"):
        ReweightedWakeSleep(guide_update="dream")
    with pytest.raises((TypeError, ValueError), match="num_particles"):
        ReweightedWakeSleep(num_particles=0)
