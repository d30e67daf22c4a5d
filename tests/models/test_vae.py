"""The VAE's model/guide against hand computations, its parameter sites, sampling and checks."""

import math

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import Predictive, Trace_ELBO
from torch.nn import functional as F

from ppdgm._pyro import local_params
from ppdgm.models import VAE, VAEConfig
from ppdgm.models.vae import LATENT, OBS

LOG_2PI = math.log(2 * math.pi)

SHAPES = [
    ("mlp", (1, 8, 8)),
    ("mlp", (784,)),
    ("mlp", (1, 28, 28)),
    ("mlp", (2,)),
    ("conv", (1, 8, 8)),
    ("conv", (1, 28, 28)),
]


def _data(shape, likelihood, n=3, device="cpu"):
    if likelihood == "bernoulli":
        return torch.bernoulli(torch.full((n, *shape), 0.5, device=device))
    return torch.randn(n, *shape, device=device)


def _vae(arch, shape, likelihood, device="cpu", **kw):
    kw.setdefault("hidden", (16,))
    return VAE(x_shape=shape, arch=arch, z_dim=3, likelihood=likelihood, **kw).to(device)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("arch, shape", SHAPES)
def test_shapes(arch, shape, likelihood, device):
    vae = _vae(arch, shape, likelihood, device)
    x = _data(shape, likelihood, device=device)
    assert vae.model(x) is x
    assert vae.model(None, num_samples=4).shape == (4, *shape)
    assert vae.guide(x).shape == (3, 3)
    loc, scale = vae.encode(x)
    assert loc.shape == scale.shape == (3, 3) and bool((scale > 0).all())
    assert vae.reconstruct(x).shape == x.shape
    samples = vae.sample(5)
    assert samples.shape == (5, *shape) and not samples.requires_grad
    trace = poutine.trace(vae.model).get_trace(x)
    trace.compute_log_prob()
    # Every event dim of x is an event dim of the likelihood: one log-density per data point.
    assert trace.nodes[OBS]["log_prob"].shape == (3,)
    assert trace.nodes[LATENT]["log_prob"].shape == (3,)
    assert [f.name for f in trace.nodes[LATENT]["cond_indep_stack"]] == ["data"]
    if likelihood == "bernoulli":
        assert bool(((samples >= 0) & (samples <= 1)).all())
        draws = vae.sample(5, mean=False)
        assert bool(((draws == 0) | (draws == 1)).all())


@pytest.mark.parametrize("likelihood, obs_scale", [("bernoulli", None), ("gaussian", None),
                                                   ("gaussian", 0.7)])
@pytest.mark.parametrize("arch, shape", [("mlp", (6,)), ("conv", (2, 8, 4))])
def test_log_joint_equals_hand_computation(arch, shape, likelihood, obs_scale, device):
    vae = _vae(arch, shape, likelihood, device, obs_scale=obs_scale)
    d = math.prod(shape)
    if likelihood == "gaussian" and obs_scale is None:
        vae.obs_scale = torch.linspace(0.3, 2.0, d, device=device).reshape(shape)
    x = _data(shape, likelihood, n=4, device=device)
    z = torch.randn(4, 3, device=device)

    trace = poutine.trace(poutine.condition(vae.model, data={LATENT: z})).get_trace(x)
    got = trace.log_prob_sum()

    with torch.no_grad():
        out = vae.decoder(z).reshape(4, *shape)
        log_prior = (-0.5 * z**2 - 0.5 * LOG_2PI).sum()
        if likelihood == "bernoulli":
            log_lik = (x * F.logsigmoid(out) + (1 - x) * F.logsigmoid(-out)).sum()
        else:
            std = (torch.full(shape, obs_scale, device=device) if obs_scale
                   else vae.obs_scale.detach())
            log_lik = (-0.5 * ((x - out) / std) ** 2 - std.log() - 0.5 * LOG_2PI).sum()
    torch.testing.assert_close(got.detach(), log_prior + log_lik, rtol=1e-5, atol=1e-4)


def test_trace_elbo_matches_manual_single_sample():
    vae = _vae("mlp", (6,), "bernoulli")
    x = _data((6,), "bernoulli", n=5)
    pyro.set_rng_seed(3)
    loss = Trace_ELBO().loss(vae.model, vae.guide, x)
    pyro.set_rng_seed(3)
    z = poutine.trace(vae.guide).get_trace(x).nodes[LATENT]["value"]

    with torch.no_grad():
        loc, scale = vae.encode(x)
        log_q = (-0.5 * ((z - loc) / scale) ** 2 - scale.log() - 0.5 * LOG_2PI).sum()
        log_prior = (-0.5 * z**2 - 0.5 * LOG_2PI).sum()
        logits = vae.decoder(z)
        log_lik = (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum()
    assert loss == pytest.approx(-(log_prior + log_lik - log_q).item(), rel=1e-5)


def _delta_guide(z):
    def guide(x, num_samples=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample(LATENT, dist.Delta(z).to_event(1))

    return guide


def test_elbo_with_deterministic_guide_is_summed_over_the_batch():
    vae = _vae("mlp", (6,), "gaussian", obs_scale=0.5)
    x = _data((6,), "gaussian", n=4)
    z0 = torch.randn(4, 3)
    with torch.no_grad():
        mean = vae.decoder(z0)
        log_joint = ((-0.5 * z0**2 - 0.5 * LOG_2PI).sum(-1)
                     + (-0.5 * ((x - mean) / 0.5) ** 2 - math.log(0.5) - 0.5 * LOG_2PI).sum(-1))

    # A Delta guide has log q = 0, so the loss is exactly -log p(x, z0), summed over the batch.
    loss = Trace_ELBO().loss(vae.model, _delta_guide(z0), x)
    assert loss == pytest.approx(-log_joint.sum().item(), rel=1e-5)
    singles = [Trace_ELBO().loss(vae.model, _delta_guide(z0[i:i + 1]), x[i:i + 1])
               for i in range(4)]
    assert singles == pytest.approx((-log_joint).tolist(), rel=1e-5)
    assert loss / 4 == pytest.approx(sum(singles) / 4, rel=1e-5)  # per-example nats


def _param_sites(fn, x):
    # Under module-local parameters, as the engine runs ppdgm's models.
    with local_params():
        trace = poutine.trace(fn, param_only=True).get_trace(x)
    found = {}
    for name, site in trace.nodes.items():
        value = site["value"]
        found[name] = value.unconstrained() if hasattr(value, "unconstrained") else value
    return found


@pytest.mark.parametrize("likelihood, obs_scale", [("bernoulli", None), ("gaussian", None),
                                                   ("gaussian", 0.3)])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_param_sites_are_decoder_for_model_and_encoder_for_guide(arch, likelihood, obs_scale):
    vae = _vae(arch, (1, 8, 8), likelihood, obs_scale=obs_scale)
    x = _data((1, 8, 8), likelihood)
    model_sites = _param_sites(vae.model, x)
    guide_sites = _param_sites(vae.guide, x)
    decoder = {f"decoder.{n}": p for n, p in vae.decoder.named_parameters()}
    encoder = {f"encoder.{n}": p for n, p in vae.encoder.named_parameters()}
    if obs_scale is None and likelihood == "gaussian":
        decoder["obs_scale"] = vae.obs_scale_unconstrained
    assert set(model_sites) == set(decoder)
    assert set(guide_sites) == set(encoder)
    # The traced tensors are the module's own leaves, so training them trains this VAE.
    assert all(model_sites[k] is decoder[k] for k in decoder)
    assert all(guide_sites[k] is encoder[k] for k in encoder)
    own = {id(p) for p in vae.parameters()}
    assert {id(p) for p in [*model_sites.values(), *guide_sites.values()]} == own
    assert len(pyro.get_param_store().keys()) == 0


def test_two_instances_do_not_share_weights():
    x = _data((4,), "gaussian")
    with local_params():
        a = _vae("mlp", (4,), "gaussian")
        b = _vae("mlp", (4,), "gaussian")
        sites = {v: {**_param_sites(v.model, x), **_param_sites(v.guide, x)} for v in (a, b)}
    assert set(sites[a]) == set(sites[b])
    ids_a = {id(t) for t in sites[a].values()}
    ids_b = {id(t) for t in sites[b].values()}
    assert not ids_a & ids_b
    assert ids_a == {id(p) for p in a.parameters()} and ids_b == {id(p) for p in b.parameters()}
    assert not torch.equal(sites[a]["decoder.net.0.weight"], sites[b]["decoder.net.0.weight"])
    with local_params():
        assert not torch.equal(a.reconstruct(x), b.reconstruct(x))
    # One SVI step on a leaves b untouched.
    before = [p.detach().clone() for p in b.parameters()]
    with local_params():
        svi = pyro.infer.SVI(a.model, a.guide, pyro.optim.Adam({"lr": 0.1}), Trace_ELBO())
        svi.step(x)
    assert all(torch.equal(p, q) for p, q in zip(before, b.parameters(), strict=True))
    assert len(pyro.get_param_store().keys()) == 0


def test_sample_runs_the_model_and_returns_bernoulli_means():
    vae = _vae("mlp", (5,), "bernoulli")
    pyro.set_rng_seed(7)
    trace = poutine.trace(vae.model).get_trace(None, num_samples=6)
    pyro.set_rng_seed(7)
    means = vae.sample(6)
    pyro.set_rng_seed(7)
    draws = vae.sample(6, mean=False)
    with torch.no_grad():
        expected = torch.sigmoid(vae.decoder(trace.nodes[LATENT]["value"]))
    torch.testing.assert_close(means, expected)
    assert torch.equal(draws, trace.nodes[OBS]["value"])


def test_reconstruct_decodes_the_posterior_mean():
    vae = _vae("conv", (1, 8, 8), "gaussian", obs_scale=0.2)
    x = _data((1, 8, 8), "gaussian", n=4)
    with torch.no_grad():
        loc, _ = vae.encode(x)
        expected = vae.decoder(loc)
    torch.testing.assert_close(vae.reconstruct(x), expected)
    assert vae.reconstruct(x, mean=False).shape == x.shape


def test_helpers_leave_no_trace_and_no_global_params():
    vae = _vae("mlp", (4,), "gaussian")
    x = _data((4,), "gaussian")
    with poutine.trace() as capture:
        vae.sample(3)
        vae.reconstruct(x)
    assert len(capture.trace.nodes) == 0
    assert len(pyro.get_param_store().keys()) == 0


def test_predictive_and_vectorized_particles():
    vae = _vae("conv", (1, 8, 8), "bernoulli")
    x = _data((1, 8, 8), "bernoulli", n=3)
    out = Predictive(vae.model, guide=vae.guide, num_samples=4, return_sites=[OBS, LATENT])(x)
    assert out[LATENT].shape == (4, 3, 3)
    loss = Trace_ELBO(num_particles=5, vectorize_particles=True, max_plate_nesting=1).loss(
        vae.model, vae.guide, x)
    assert math.isfinite(loss)


def test_encoder_scale_is_floored():
    vae = _vae("mlp", (4,), "bernoulli")
    last = vae.encoder.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-1e4)  # softplus(-1e4) underflows to exactly 0
    _, scale = vae.encode(torch.zeros(2, 4))
    assert bool((scale > 0).all())
    x = torch.zeros(2, 4)
    assert math.isfinite(Trace_ELBO().loss(vae.model, vae.guide, x))


def test_config_overrides_and_defaults():
    vae = VAE(z_dim=2)
    assert vae.config == VAEConfig(z_dim=2)
    cfg = VAEConfig(x_shape=[4], hidden=[8])
    vae = VAE(cfg, likelihood="gaussian")
    assert vae.config.x_shape == (4,) and vae.config.hidden == (8,)
    assert vae.config.likelihood == "gaussian"
    assert cfg.x_shape == [4] and cfg.likelihood == "bernoulli"  # the caller's object is untouched


@pytest.mark.parametrize(
    "fields, exc, match",
    [
        ({"x_shape": ()}, ValueError, "x_shape"),
        ({"x_shape": 784}, TypeError, "x_shape"),
        ({"x_shape": (1, -8, 8)}, ValueError, "x_shape"),
        ({"z_dim": 0}, ValueError, "z_dim"),
        ({"z_dim": 2.5}, TypeError, "z_dim"),
        ({"hidden": (16, 0)}, ValueError, "hidden"),
        ({"hidden": "16"}, TypeError, "hidden"),
        ({"arch": "resnet"}, ValueError, "arch.*'mlp'.*'resnet'"),
        ({"arch": "conv", "x_shape": (784,)}, ValueError, r"x_shape.*\(784,\)"),
        ({"arch": "conv", "x_shape": (1, 10, 10)}, ValueError, "x_shape.*divisible by 4"),
        ({"likelihood": "poisson"}, ValueError, "likelihood.*'bernoulli'"),
        ({"obs_scale": 0.5}, ValueError, "obs_scale.*gaussian"),
        ({"likelihood": "gaussian", "obs_scale": -1.0}, ValueError, "obs_scale"),
        ({"likelihood": "gaussian", "obs_scale": float("nan")}, ValueError, "obs_scale"),
        ({"likelihood": "gaussian", "obs_scale": "1"}, TypeError, "obs_scale"),
    ],
)
def test_bad_config(fields, exc, match):
    with pytest.raises(exc, match=match):
        VAEConfig(**fields).validate()
    with pytest.raises(exc, match=match):
        VAE(**fields)


def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match="config: expected a VAEConfig"):
        VAE({"z_dim": 2})
    with pytest.raises(ValueError, match=r"unknown VAEConfig fields \['zdim'\]"):
        VAE(zdim=2)


@pytest.mark.parametrize("method", ["model", "guide", "reconstruct", "encode"])
def test_bad_x(method):
    vae = _vae("mlp", (4,), "bernoulli")
    call = getattr(vae, method)
    with pytest.raises(TypeError, match="x: expected a torch.Tensor, got list"):
        call([[0.0, 1.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 4\), got \(2, 5\)"):
        call(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 4\), got \(4,\)"):
        call(torch.zeros(4))
    with pytest.raises(TypeError, match="x: expected a floating-point tensor"):
        call(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="x: expected dtype torch.float32.*got torch.float64"):
        call(torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="x: contains NaN"):
        call(torch.tensor([[0.0, float("nan"), 1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"x: a Bernoulli likelihood needs values in \{0, 1\}"):
        call(torch.full((2, 4), 0.5))


def test_value_checks_follow_pyro_validation_flag():
    bernoulli = _vae("mlp", (4,), "bernoulli")
    gaussian = _vae("mlp", (4,), "gaussian")
    with pyro.validation_enabled(False):
        bernoulli.guide(torch.full((2, 4), 0.5))
        gaussian.guide(torch.tensor([[0.0, float("inf"), 1.0, 0.0]]))
        with pytest.raises(ValueError, match="x: expected shape"):  # shape checks always run
            bernoulli.guide(torch.zeros(2, 3))
    # A Gaussian likelihood accepts any finite real data.
    gaussian.model(torch.full((2, 4), -3.5))


def test_bad_batch_arguments():
    vae = _vae("mlp", (4,), "bernoulli")
    x = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="num_samples: needed when x is None"):
        vae.model()
    with pytest.raises(ValueError, match="num_samples: expected None or x's batch size 3, got 2"):
        vae.model(x, num_samples=2)
    with pytest.raises(ValueError, match="num_samples: expected None or x's batch size 3"):
        vae.guide(x, num_samples=4)
    with pytest.raises(ValueError, match="num_samples: expected an int >= 1, got 0"):
        vae.model(None, num_samples=0)
    with pytest.raises(TypeError, match="num_samples: expected an int"):
        vae.model(None, num_samples=2.0)
    with pytest.raises(ValueError, match="x: the guide needs a data batch"):
        vae.guide(None, num_samples=3)
    with pytest.raises(ValueError, match="n: expected an int >= 1, got 0"):
        vae.sample(0)
    assert vae.model(x, num_samples=3) is x
