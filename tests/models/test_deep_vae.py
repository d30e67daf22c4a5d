"""The two-layer VAE against exact answers: a linear-Gaussian z2 -> z1 -> x, whose log p(x) and
posterior are closed-form, makes the ELBO of the exact guide equal log p(x) on every draw."""

import math

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO

from ppdgm.data import load_dataset
from ppdgm.inference import Engine, Player, TrainConfig
from ppdgm.inference.evaluate import estimate_log_likelihood
from ppdgm.inference.objectives import IWAE
from ppdgm.models.deep_vae import DeepVAE, DeepVAEConfig, latent_site

A, a, S1 = 1.5, -0.3, 0.7           # z1 | z2 ~ N(A z2 + a, S1^2)
W = torch.tensor([0.8, -1.2, 0.5])  # x | z1 ~ N(W z1 + B, diag(SX^2))
B = torch.tensor([0.1, 0.0, -0.4])
SX = torch.tensor([0.5, 0.9, 0.3])


def _linear(mlp):
    (layer,) = [m for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    return layer


def _raw(std):  # the pre-softplus value that gives this standard deviation
    return math.log(math.expm1(std - 1e-4))


@torch.no_grad()
def _linear_gaussian_with_exact_guide():
    vae = DeepVAE(DeepVAEConfig(x_shape=(3,), z_dims=(1, 1), hidden=((), ()), likelihood="gaussian"))
    top, bottom = _linear(vae.decoders[1]), _linear(vae.decoders[0])
    top.weight.copy_(torch.tensor([[A], [0.0]]))
    top.bias.copy_(torch.tensor([a, _raw(S1)]))
    bottom.weight.copy_(W.unsqueeze(1))
    bottom.bias.copy_(B)
    vae.obs_scale = SX.clone()
    v1 = A**2 + S1**2
    prec = 1 / v1 + (W**2 / SX**2).sum().item()
    enc1 = _linear(vae.encoders[0])
    enc1.weight.copy_(torch.stack([W / SX**2 / prec, torch.zeros(3)]))
    enc1.bias.copy_(torch.tensor([(a / v1 - (W * B / SX**2).sum().item()) / prec, _raw(prec**-0.5)]))
    prec2 = 1 + A**2 / S1**2
    enc2 = _linear(vae.encoders[1])
    enc2.weight.copy_(torch.tensor([[A / S1**2 / prec2], [0.0]]))
    enc2.bias.copy_(torch.tensor([-A * a / S1**2 / prec2, _raw(prec2**-0.5)]))
    exact = torch.distributions.MultivariateNormal(W * a + B, (A**2 + S1**2) * torch.outer(W, W)
                                                   + torch.diag(SX**2))
    return vae, exact


def test_the_exact_guide_makes_every_elbo_draw_log_px():
    vae, exact = _linear_gaussian_with_exact_guide()
    x = torch.tensor([[0.3, -0.5, 0.1], [1.0, 1.0, -1.0], [-2.0, 0.5, 0.0]])
    for _ in range(5):
        loss = Trace_ELBO().loss(vae.model, vae.guide, x)
        assert loss == pytest.approx(-exact.log_prob(x).sum().item(), rel=1e-5)
    iwae = IWAE(num_particles=7).loss(vae.model, vae.guide, x)
    assert iwae == pytest.approx(-exact.log_prob(x).sum().item(), rel=1e-5)


def test_importance_sampling_from_a_poor_guide_reaches_log_px():
    vae, exact = _linear_gaussian_with_exact_guide()
    with torch.no_grad():  # move q(z1 | x) away from the posterior: a biased, wider proposal
        _linear(vae.encoders[0]).bias.add_(torch.tensor([0.4, 0.5]))
    x = torch.tensor([[0.3, -0.5, 0.1], [1.0, 1.0, -1.0]])
    result = estimate_log_likelihood(vae.model, vae.guide, x, num_samples=20_000, seed=0)
    truth = exact.log_prob(x).mean().item()
    assert result.log_px.mean == pytest.approx(truth, abs=0.02)
    assert result.elbo.mean < truth - 0.05


def test_one_site_per_layer_inside_the_data_plate():
    vae = DeepVAE(DeepVAEConfig(x_shape=(1, 4, 4), z_dims=(6, 4, 2), hidden=((8,), (), (5,))))
    x = torch.bernoulli(torch.full((3, 1, 4, 4), 0.5))
    model = pyro.poutine.trace(vae.model).get_trace(x)
    guide = pyro.poutine.trace(vae.guide).get_trace(x)
    for layer, width in enumerate((6, 4, 2), start=1):
        for trace in (model, guide):
            site = trace.nodes[latent_site(layer)]
            assert site["value"].shape == (3, width)
            assert [f.name for f in site["cond_indep_stack"]] == ["data"]
    assert vae.sample(2, mean=False).shape == (2, 1, 4, 4)


def test_the_engine_trains_the_burda_architecture_by_iwae_on_digits():
    data = load_dataset("digits-binarized", num_train=200)
    vae = DeepVAE(DeepVAEConfig(x_shape=data.event_shape, z_dims=(10, 5), hidden=((32,), (16,))))
    test = data.test[:100]
    before = estimate_log_likelihood(vae.model, vae.guide, test, num_samples=50, seed=0).log_px.mean
    config = TrainConfig(epochs=4, batch_size=50, lr=3e-3, device="cpu", progress=False)
    Engine(vae.model, vae.guide, IWAE(num_particles=5), [Player("svi")], config).fit(data.train)
    after = estimate_log_likelihood(vae.model, vae.guide, test, num_samples=50, seed=0).log_px.mean
    assert after > before + 3


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="hidden: expected one tuple of widths per stochastic"):
        DeepVAE(DeepVAEConfig(x_shape=(4,), z_dims=(3, 2), hidden=((8,),)))
    with pytest.raises(ValueError, match="likelihood"):
        DeepVAE(DeepVAEConfig(x_shape=(4,), likelihood="poisson"))
    vae = DeepVAE(DeepVAEConfig(x_shape=(4,), z_dims=(2,), hidden=((4,),)))
    with pytest.raises(ValueError, match="x: the guide needs a data batch"):
        vae.guide(None)
    with pytest.raises(ValueError, match="Bernoulli likelihood needs values"):
        vae.model(torch.full((2, 4), 0.5))
