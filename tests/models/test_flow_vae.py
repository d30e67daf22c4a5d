"""Flow priors and inverse autoregressive flow guides (zuko, through pyro.contrib.zuko) for the VAE.

The exact case: a linear-Gaussian decoder x = W z + N(0, s^2 I) with z ~ N(0, I) has log p(x) in
closed form and a Gaussian posterior with precision L = I + W^T W / s^2. The best diagonal
Gaussian guide falls short of log p(x) by KL = (sum_i log L_ii - log det L) / 2; an affine
autoregressive guide is a Cholesky factor away from the exact posterior, so its gap goes to 0.
"""

import math

import pyro
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from ppdgm._pyro import local_params
from ppdgm.inference.evaluate import estimate_log_likelihood
from ppdgm.inference.objectives.iwae import IWAE
from ppdgm.models import VAE, VAEConfig, flows
from ppdgm.models.flows import flow_posterior, flow_prior

pytest.importorskip("zuko")

W = 1.5 * torch.tensor([[1.0, 0.6], [0.6, 1.0]])
SIGMA = 0.5
X = torch.tensor([[1.0, -0.5]])


def _exact():
    cov = W @ W.T + SIGMA**2 * torch.eye(2)
    log_px = torch.distributions.MultivariateNormal(torch.zeros(2), cov).log_prob(X).item()
    precision = torch.eye(2) + W.T @ W / SIGMA**2
    mean_field_gap = 0.5 * (precision.diag().log().sum() - precision.logdet()).item()
    return log_px, mean_field_gap


def _linear_vae(**kw):
    vae = VAE(x_shape=(2,), z_dim=2, hidden=(), likelihood="gaussian", obs_scale=SIGMA,
              flow_hidden=(16,), **kw)
    with torch.no_grad():
        vae.decoder.net[0].weight.copy_(W)
        vae.decoder.net[0].bias.zero_()
    return vae


@pytest.mark.parametrize("posterior, gap", [("gaussian", "mean-field"), ("iaf", 0.02), ("nsf", 0.03)])
def test_a_flow_guide_closes_the_gap_a_diagonal_gaussian_cannot(posterior, gap):
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    log_px, mean_field_gap = _exact()
    vae = _linear_vae(posterior=posterior)
    guide_params = [p for n, p in vae.named_parameters() if not n.startswith("decoder")]
    opt = torch.optim.Adam(guide_params, lr=3e-3)
    xs = X.expand(256, 2)
    with local_params():
        for _ in range(600):
            opt.zero_grad()
            (Trace_ELBO().differentiable_loss(vae.model, vae.guide, xs) / 256).backward()
            opt.step()
        with torch.no_grad():
            elbo = -Trace_ELBO(num_particles=20000, vectorize_particles=True).loss(vae.model, vae.guide, X)
    if gap == "mean-field":
        assert log_px - elbo == pytest.approx(mean_field_gap, abs=0.04)
        assert mean_field_gap > 0.5
    else:
        assert -0.01 < log_px - elbo < gap


def test_a_flow_prior_is_a_density_and_the_model_scores_with_it():
    torch.manual_seed(0)
    prior = flow_prior("nsf", 2, hidden=(8,))
    grid = torch.linspace(-9, 9, 721)
    z = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = prior().log_prob(z).exp().sum() * (grid[1] - grid[0]) ** 2
    assert mass.item() == pytest.approx(1.0, abs=2e-3)
    vae = _linear_vae(prior="maf")
    with local_params():
        guide = poutine.trace(vae.guide).get_trace(X)
        model = poutine.trace(poutine.replay(vae.model, trace=guide)).get_trace(X)
    zs = guide.nodes["z"]["value"]
    expected = vae.prior_flow().log_prob(zs) + torch.distributions.Normal(zs @ W.T, SIGMA).log_prob(X).sum(-1)
    model.compute_log_prob()
    got = model.nodes["z"]["log_prob"] + model.nodes["x"]["log_prob"]
    assert torch.allclose(got, expected, atol=1e-5)


def test_an_iaf_guide_scores_its_own_draws_as_its_density_does():
    torch.manual_seed(0)
    q = flow_posterior("nsf", 3, hidden=(8,))(torch.randn(6, 6))
    z, log_q = q.rsample_and_log_prob()
    assert torch.allclose(log_q, q.log_prob(z), atol=1e-4)  # one pass against the inverse


@pytest.mark.parametrize("prior, posterior", [("maf", "gaussian"), ("normal", "iaf"), ("nsf", "nsf")])
def test_flow_params_are_model_or_guide_sites_and_every_bound_runs(prior, posterior):
    torch.manual_seed(0)
    vae = VAE(x_shape=(6,), z_dim=3, hidden=(8,), prior=prior, posterior=posterior, flow_hidden=(8,))
    x = torch.bernoulli(torch.full((5, 6), 0.5))
    with local_params():
        model = poutine.trace(vae.model, param_only=True).get_trace(x)
        guide = poutine.trace(vae.guide, param_only=True).get_trace(x)
    # zuko's modules are plain nn.Modules, so Pyro names their sites as a pyro.module would.
    if prior != "normal":
        assert {f"prior_flow$$${n}" for n, _ in vae.prior_flow.named_parameters()} <= set(model.nodes)
    if posterior != "gaussian":
        assert {f"posterior_flow$$${n}" for n, _ in vae.posterior_flow.named_parameters()} <= set(guide.nodes)
    assert {id(p) for p in vae.parameters()} == {
        id(site["value"]) for t in (model, guide) for site in t.nodes.values()}
    with local_params():
        elbo = Trace_ELBO().loss(vae.model, vae.guide, x)
        mean_field = TraceMeanField_ELBO().loss(vae.model, vae.guide, x)  # no closed form: sampled
        iwae = IWAE(num_particles=7).loss(vae.model, vae.guide, x)
    assert all(math.isfinite(v) for v in (elbo, mean_field, iwae))
    est = estimate_log_likelihood(vae.model, vae.guide, x, num_samples=300, seed=0)
    assert est.elbo.mean <= est.log_px.mean
    assert vae.sample(4).shape == (4, 6) and vae.reconstruct(x).shape == (5, 6)
    loc, scale = vae.encode(x)
    assert loc.shape == scale.shape == (5, 3) and bool((scale > 0).all())
    # The weights round-trip through a state dict.
    copy = VAE(vae.config)
    copy.load_state_dict(vae.state_dict())
    assert torch.equal(copy.reconstruct(x), vae.reconstruct(x))


def test_bad_flow_options_and_a_missing_zuko_are_refused_in_one_line(monkeypatch):
    with pytest.raises(ValueError, match="prior: expected one of"):
        VAEConfig(prior="realnvp").validate()
    with pytest.raises(ValueError, match="posterior: expected one of"):
        VAEConfig(posterior="maf").validate()
    with pytest.raises(ValueError, match="flow_transforms"):
        VAEConfig(flow_transforms=0).validate()
    monkeypatch.setattr(flows.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"prior='maf': zuko is not installed; .*ppdgm\[flows\]"):
        VAE(x_shape=(2,), z_dim=2, prior="maf")
    VAE(x_shape=(2,), z_dim=2)  # the plain VAE needs no zuko


def _flow_engine(out_dir, init_seed, **overrides):
    from ppdgm.inference import Engine, TrainConfig

    torch.manual_seed(init_seed)  # a different initialisation must not matter after resume
    vae = VAE(x_shape=(6,), z_dim=2, hidden=(8,), prior="maf", posterior="iaf", flow_hidden=(8,))
    settings = dict(epochs=3, batch_size=16, lr=0.01, seed=5, device="cpu", progress=False,
                    out_dir=str(out_dir), **overrides)
    return vae, Engine(vae.model, vae.guide, Trace_ELBO(), config=TrainConfig(**settings))


def test_an_interrupted_flow_vae_run_resumes_bit_for_bit(tmp_path):
    torch.manual_seed(1)
    x = torch.bernoulli(torch.full((64, 6), 0.4))
    full_vae, full = _flow_engine(tmp_path / "full", 0)
    full.fit(x)
    _, part = _flow_engine(tmp_path / "part", 0, max_steps=5)  # mid-epoch (4 steps an epoch)
    part.fit(x)
    resumed_vae, resumed = _flow_engine(tmp_path / "part", 99, resume=True)
    resumed.fit(x)
    for (name, a), (_, b) in zip(full_vae.state_dict().items(), resumed_vae.state_dict().items()):
        assert torch.equal(a, b), name
    assert [r["loss"] for r in resumed.history.steps] == [r["loss"] for r in full.history.steps]


def test_plain_pyro_svi_trains_the_flows():
    import pyro.optim
    from pyro.infer import SVI

    torch.manual_seed(0)
    vae = VAE(x_shape=(6,), z_dim=2, hidden=(8,), prior="nsf", posterior="iaf", flow_hidden=(8,))
    before = {n: p.detach().clone() for n, p in vae.named_parameters() if "flow" in n}
    x = torch.bernoulli(torch.full((32, 6), 0.4))
    with local_params():
        svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
        losses = [svi.step(x) for _ in range(3)]
    assert all(math.isfinite(v) for v in losses)
    moved = {n for n, p in vae.named_parameters() if n in before and not torch.equal(p, before[n])}
    assert {n.split(".")[0] for n in moved} == {"prior_flow", "posterior_flow"}
