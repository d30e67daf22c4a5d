"""InferenceData from MCMC runs (vectorized chains folded), guides, histories and prior draws."""

import math

import arviz as az
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC, NUTS

from ppdgm.diagnostics import (
    KHAT_THRESHOLD,
    from_guide,
    from_history,
    psis_khat,
    save_mcmc_plots,
    to_inference_data,
)
from ppdgm.diagnostics.arviz_api import arviz_major, group, group_names
from ppdgm.inference import History
from ppdgm.inference.mcmc import Gibbs, typed_samples
from ppdgm.inference.mcmc.base import DiscreteKernel
from ppdgm.models import VAE, BernoulliMixture, LinearGaussian, MixtureConfig

PNG = b"\x89PNG\r\n\x1a\n"

# ------------------------------------------------------------------ MCMC with vectorized chains


def _plated_model(y):
    with pyro.plate("data", 2):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("y", dist.Normal(z, 1.0), obs=y)


class _StepKernel(DiscreteKernel):
    """Adds 10 to every element each step, so a draw tells which chain and step made it."""

    def __init__(self, chains):
        super().__init__(chains)
        self.model = _plated_model

    def _init_values(self, args, kwargs):
        c = torch.arange(self.chains, dtype=torch.float32)[:, None]
        i = torch.arange(2, dtype=torch.float32)
        return {"z": 1000 * c + i}  # kernel chain c, data point i

    def _sweep(self, params):
        return {"z": params["z"] + 10}


def test_vectorized_chains_are_folded_into_the_chain_dimension():
    y = torch.tensor([0.3, -1.2])
    chains, warmup, draws = 3, 2, 5
    mcmc = MCMC(_StepKernel(chains), num_samples=draws, warmup_steps=warmup, disable_progbar=True)
    mcmc.run(y)
    assert mcmc.get_samples()["z"].shape == (draws, chains, 2)
    idata = to_inference_data(mcmc)
    z = idata.posterior["z"].values
    assert z.shape == (chains, draws, 2)
    c, d, i = np.meshgrid(np.arange(chains), np.arange(draws), np.arange(2), indexing="ij")
    np.testing.assert_array_equal(z, 1000 * c + i + 10 * (warmup + d + 1))
    # The pointwise log-likelihood is of each folded chain's own draw.
    expected = dist.Normal(torch.from_numpy(z), 1.0).log_prob(y).numpy()
    np.testing.assert_allclose(idata.log_likelihood["y"].values, expected, rtol=1e-6)
    assert idata.sample_stats["diverging"].shape == (chains, draws)
    assert not idata.sample_stats["diverging"].values.any()
    np.testing.assert_array_equal(idata.observed_data["y"].values, y.numpy())


class _FakeMCMC:
    """What a finished 2-chain MCMC run over a kernel with 3 vectorized chains looks like."""

    def __init__(self):
        self.num_chains, self.num_samples = 2, 4
        self.kernel = type("K", (), {"vectorized_chains": 3})()
        m, d, c = np.meshgrid(np.arange(2), np.arange(4), np.arange(3), indexing="ij")
        self._samples = {"w": torch.tensor(100 * m + 10 * c + d, dtype=torch.float32)}
        self._args, self._kwargs = (), {}
        self._diagnostics = [{"divergences": [1]}, {"divergences": []}]

    def get_samples(self, group_by_chain=False):
        assert group_by_chain
        return self._samples


def test_kernel_chain_c_of_mcmc_chain_m_becomes_chain_m_times_c_plus_c():
    idata = to_inference_data(_FakeMCMC())
    w = idata.posterior["w"].values
    assert w.shape == (6, 4)
    for m in range(2):
        for c in range(3):
            np.testing.assert_array_equal(w[3 * m + c], 100 * m + 10 * c + np.arange(4))
    diverging = idata.sample_stats["diverging"].values
    # MCMC chain 0 diverged at draw 1: all three of its kernel chains carry the mark.
    assert diverging[:3, 1].all() and diverging.sum() == 3


def test_divergences_outside_a_chains_draws_are_refused_not_indexed():
    # A kernel never reset between chains keeps counting: chain 1 reports draws 4 and 6 of 4.
    fake = _FakeMCMC()
    fake._diagnostics = [{"divergences": [1]}, {"divergences": [1, 4, 6]}]
    with pytest.raises(ValueError, match=r"mcmc: chain 1 reports divergences at draws \[4, 6\]"):
        to_inference_data(fake)


def test_mcmc_without_vectorized_chains_matches_arviz_from_pyro():
    y = torch.tensor([0.5, 1.5, -0.2, 0.9])

    def model(y):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(y)):
            pyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    mcmc = MCMC(NUTS(model), num_samples=200, warmup_steps=100, disable_progbar=True)
    mcmc.run(y)
    ours = to_inference_data(mcmc)
    assert set(group_names(ours)) == {"posterior", "sample_stats", "log_likelihood", "observed_data"}
    if arviz_major() == 0:  # ArviZ 1.x has no Pyro converter to compare with
        theirs = az.from_pyro(mcmc)
        assert set(group_names(ours)) == set(theirs.groups())
        # The same values; ppdgm names the data plate's dimension "obs" where ArviZ says y_dim_0.
        for group in ("posterior", "log_likelihood", "observed_data"):
            mine = ours[group].rename({"obs": "y_dim_0"}) if "obs" in ours[group].dims else ours[group]
            assert mine.equals(theirs[group]), group
    draws = mcmc.get_samples()["mu"]
    np.testing.assert_array_equal(ours.posterior["mu"].values[0], draws.numpy())
    expected = dist.Normal(draws[:, None], 1.0).log_prob(y).numpy()
    np.testing.assert_allclose(ours.log_likelihood["y"].values[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(ours.observed_data["y"].values, y.numpy())
    # Conjugate: mu | y ~ N(sum(y) / (n + 1), 1 / (n + 1)).
    mean, sd = y.sum().item() / 5, math.sqrt(1 / 5)
    draws = ours.posterior["mu"].values
    ess = float(az.ess(ours, var_names=["mu"])["mu"])
    assert abs(draws.mean() - mean) < 4 * sd / math.sqrt(ess)


def test_categorical_draws_keep_their_dtype_and_their_log_likelihood():
    """A model that indexes a table with its Categorical draw, run by Gibbs on 3 chains."""
    locs = torch.tensor([-2.0, 0.0, 2.0])
    y = torch.tensor([1.8, -0.1, 2.3, -2.2])

    def model(y):
        with pyro.plate("data", len(y)):
            k = pyro.sample("k", dist.Categorical(torch.ones(3) / 3))
            pyro.sample("y", dist.Normal(locs[k], 0.5), obs=y)

    pyro.set_rng_seed(0)
    mcmc = MCMC(Gibbs(model, chains=3), num_samples=50, warmup_steps=10, disable_progbar=True)
    mcmc.run(y)
    mcmc.summary()  # Pyro's own diagnostics read the floating-point draws MCMC stores
    assert mcmc.get_samples()["k"].is_floating_point()
    draws = typed_samples(mcmc)["k"]
    assert draws.dtype == torch.int64
    idata = to_inference_data(mcmc)
    assert idata.posterior["k"].dtype == np.int64
    assert idata.posterior["k"].shape == (3, 50, 4)
    # Chain c of the kernel is ArviZ chain c; its draws give the pointwise log-likelihood.
    k = draws.transpose(0, 1)  # (chains, draws, data)
    expected = dist.Normal(locs[k], 0.5).log_prob(y).numpy()
    np.testing.assert_allclose(idata.log_likelihood["y"].values, expected, rtol=1e-6)
    # The posterior of each k is sharp: the nearest location wins almost always.
    assert (idata.posterior["k"].values[..., 0] == 2).mean() > 0.9


def test_mcmc_that_has_not_run_is_refused():
    mcmc = MCMC(NUTS(_plated_model), num_samples=2)
    with pytest.raises(ValueError, match="mcmc: it has no draws yet"):
        to_inference_data(mcmc)


# ------------------------------------------------------------------------------ from a guide

SIGMA = 0.5


class _NormalNormal:
    """z ~ N(0, 1), x | z ~ N(z, SIGMA^2), and a guide N(shift + a x, (scale * s)^2).

    With shift=0 and scale=1 the guide is the exact posterior: a = 1 / (1 + SIGMA^2),
    s^2 = SIGMA^2 / (1 + SIGMA^2).
    """

    a = 1 / (1 + SIGMA**2)
    s = math.sqrt(SIGMA**2 / (1 + SIGMA**2))

    def __init__(self, shift=0.0, scale=1.0):
        self.shift, self.scale = shift, scale

    def model(self, x):
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, SIGMA), obs=x)

    def guide(self, x):
        with pyro.plate("data", len(x)):
            pyro.sample("z", self.q(x))

    def q(self, x):
        return dist.Normal(self.shift + self.a * x, self.scale * self.s)

    @staticmethod
    def log_marginal(x):
        return dist.Normal(0.0, math.sqrt(1 + SIGMA**2)).log_prob(x)


def test_an_exact_guide_has_constant_weights_and_a_low_khat():
    pair = _NormalNormal()
    x = torch.tensor([-1.0, 0.2, 2.5])
    idata = from_guide(pair.model, pair.guide, x, num_samples=300, chains=2)
    assert dict(idata.posterior.sizes) == {"chain": 2, "draw": 300, "obs": 3}
    log_weight = idata.sample_stats["log_weight"].values
    assert log_weight.shape == (2, 300, 3)
    # Every weight is p(x_i) itself.
    np.testing.assert_allclose(log_weight, np.broadcast_to(pair.log_marginal(x).numpy(),
                                                           log_weight.shape), atol=1e-5)
    khat = idata.sample_stats.attrs["pareto_k"]
    assert khat.shape == (3,) and (khat < 0.5).all()
    np.testing.assert_array_equal(psis_khat(idata), khat)
    # The draws are the posterior's: mean a * x (4 standard errors).
    z = idata.posterior["z"].values.reshape(-1, 3)
    assert np.all(np.abs(z.mean(0) - pair.a * x.numpy()) < 4 * pair.s / math.sqrt(600))
    # log p(x_i | z) of each draw, and the observed data.
    expected = dist.Normal(torch.from_numpy(idata.posterior["z"].values), SIGMA).log_prob(x)
    np.testing.assert_allclose(idata.log_likelihood["x"].values, expected.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(idata.observed_data["x"].values, x.numpy())
    assert idata.posterior_predictive["x"].shape == (2, 300, 3)


def test_a_mismatched_guide_has_a_large_khat_and_the_weights_of_its_draws():
    pair = _NormalNormal(shift=3.0, scale=0.5)  # narrow and far off-centre: heavy-tailed weights
    x = torch.tensor([-1.0, 0.2, 2.5])
    idata = from_guide(pair.model, pair.guide, x, num_samples=2000)
    khat = idata.sample_stats.attrs["pareto_k"]
    assert (khat > KHAT_THRESHOLD).all(), khat
    z = torch.from_numpy(idata.posterior["z"].values[0])  # (draws, obs)
    by_hand = (dist.Normal(0.0, 1.0).log_prob(z) + dist.Normal(z, SIGMA).log_prob(x)
               - pair.q(x).log_prob(z))
    np.testing.assert_allclose(idata.sample_stats["log_weight"].values[0], by_hand.numpy(),
                               rtol=1e-5, atol=1e-5)


def test_linear_gaussian_with_its_exact_posterior_as_guide():
    m = LinearGaussian()
    with torch.no_grad():  # set the amortized guide to the exact posterior (z_dim = 1)
        precision = 1 + (m.weight.T @ m.weight).item() / 0.25
        cov = 1 / precision
        m.enc_weight.copy_(cov * m.weight.T / 0.25)
        m.enc_bias.copy_(-(m.enc_weight @ m.bias))
        m.enc_scale_unconstrained.copy_(torch.log(torch.tensor([math.sqrt(cov)])))
    x = m.sample(4)
    idata = from_guide(m.model, m.guide, x, num_samples=200)
    log_weight = idata.sample_stats["log_weight"].values[0]
    np.testing.assert_allclose(log_weight, np.broadcast_to(m.log_marginal(x).detach().numpy(),
                                                           (200, 4)), atol=1e-4)
    assert (idata.sample_stats.attrs["pareto_k"] < 0.5).all()
    assert idata.posterior["z"].dims == ("chain", "draw", "obs", "z_dim_0")


def test_mixture_guide_is_exact_over_a_discrete_latent():
    mix = BernoulliMixture(MixtureConfig(x_dim=6, components=3))
    x = (torch.rand(5, 6) > 0.5).float()
    idata = from_guide(mix.model, mix.guide, x, num_samples=40)
    np.testing.assert_allclose(idata.sample_stats["log_weight"].values[0],
                               np.broadcast_to(mix.log_marginal(x).detach().numpy(), (40, 5)), atol=1e-4)
    assert np.isneginf(idata.sample_stats.attrs["pareto_k"]).all()
    component = idata.posterior[list(idata.posterior.data_vars)[0]]
    assert component.dims == ("chain", "draw", "obs")
    assert set(np.unique(component.values)) <= {0.0, 1.0, 2.0}


def test_vae_dims_coords_and_netcdf_round_trip(tmp_path, device):
    vae = VAE(x_shape=(1, 4, 4), z_dim=2, hidden=(8,)).to(device)
    x = (torch.rand(3, 1, 4, 4) > 0.5).float().to(device)
    idata = from_guide(vae.model, vae.guide, x, num_samples=25, chains=2)
    assert idata.posterior["z"].dims == ("chain", "draw", "obs", "z_dim_0")
    assert idata.posterior["z"].shape == (2, 25, 3, 2)
    assert idata.posterior_predictive["x"].shape == (2, 25, 3, 1, 4, 4)
    assert idata.log_likelihood["x"].dims == ("chain", "draw", "obs")
    np.testing.assert_array_equal(idata.observed_data["x"].values, x.cpu().numpy())
    path = tmp_path / "idata.nc"
    idata.to_netcdf(str(path))
    back = az.from_netcdf(str(path))
    for name in group_names(idata):
        saved, loaded = group(idata, name), group(back, name)
        for var in saved.data_vars:
            np.testing.assert_array_equal(loaded[var].values, saved[var].values)
    named = to_inference_data(model=vae.model, guide=vae.guide, data=x, num_samples=5,
                              dims={"z": ["obs", "latent"]},
                              coords={"obs": ["a", "b", "c"], "latent": ["u", "v"]})
    assert named.posterior["z"].dims == ("chain", "draw", "obs", "latent")
    assert list(named.posterior["latent"].values) == ["u", "v"]
    assert list(named.sample_stats["obs"].values) == ["a", "b", "c"]


def test_the_same_seed_gives_the_same_draws_and_leaves_the_global_rng_alone():
    pair = _NormalNormal()
    x = torch.tensor([0.0, 1.0])
    state = torch.get_rng_state()
    first = from_guide(pair.model, pair.guide, x, num_samples=10, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    second = from_guide(pair.model, pair.guide, x, num_samples=10, seed=3)
    assert first.posterior.equals(second.posterior)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"data": torch.zeros(0)}, ValueError, "data:"),
    ({"data": [1.0]}, TypeError, "data:"),
    ({"num_samples": 0}, ValueError, "num_samples:"),
    ({"chains": 1.5}, TypeError, "chains:"),
    ({"guide": "q"}, TypeError, "guide:"),
])
def test_guide_inputs_are_checked(kwargs, error, message):
    pair = _NormalNormal()
    args = {"model": pair.model, "guide": pair.guide, "data": torch.zeros(2), "num_samples": 3,
            **kwargs}
    with pytest.raises(error, match=message):
        from_guide(args.pop("model"), args.pop("guide"), args.pop("data"), **args)


# ------------------------------------------------------------------------------------- k-hat


def test_psis_khat_inputs():
    assert psis_khat(np.zeros(50)).shape == ()
    with pytest.raises(ValueError, match="log_weights: contains NaN"):
        psis_khat(torch.tensor([0.0, float("nan"), 1.0]))
    with pytest.raises(ValueError, match="log_weights: expected shape"):
        psis_khat(torch.zeros(1, 3))
    with pytest.raises(TypeError, match="log_weights:"):
        psis_khat([0.0, 1.0])
    with pytest.raises(ValueError, match="reff:"):
        psis_khat(torch.randn(30), reff=0)


# ----------------------------------------------------------------------------------- history


def test_history_keeps_every_players_losses_and_steps():
    h = History()
    for step in range(4):
        h.record_step(step=step, epoch=step // 2, player="generator", loss=float(step), batch_size=2)
        for _ in range(2):  # the discriminator updates twice per step
            h.record_step(step=step, epoch=step // 2, player="critic", loss=-1.0 - step,
                          batch_size=2)
        if step % 2 == 1:
            h.close_epoch(epoch=step // 2, seconds=0.5)
    idata = from_history(h)
    stats = idata.sample_stats
    assert list(stats["player"].values) == ["generator", "critic"]
    assert dict(stats["loss"].sizes) == {"chain": 1, "draw": 8, "player": 2}
    generator = stats["loss"].sel(player="generator").values[0]
    np.testing.assert_array_equal(generator[:4], [0.0, 1.0, 2.0, 3.0])
    assert np.isnan(generator[4:]).all()  # padded: fewer updates than the critic
    np.testing.assert_array_equal(stats["loss"].sel(player="critic").values[0],
                                  [-1, -1, -2, -2, -3, -3, -4, -4])
    np.testing.assert_array_equal(stats["step"].sel(player="critic").values[0],
                                  [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(stats["loss_per_example"].sel(player="generator").values[0, :4],
                                  [0.0, 0.5, 1.0, 1.5])
    epochs = idata.epoch_stats
    assert dict(epochs["loss_per_example"].sizes) == {"chain": 1, "draw": 2, "player": 2}
    np.testing.assert_array_equal(epochs["loss_per_example"].sel(player="generator").values[0],
                                  [0.25, 1.25])
    np.testing.assert_array_equal(epochs["steps"].sel(player="critic").values[0], [4, 4])
    np.testing.assert_array_equal(epochs["epoch"].sel(player="critic").values[0], [0, 1])
    assert to_inference_data(h).sample_stats.equals(stats)


def test_history_errors_name_the_argument():
    with pytest.raises(ValueError, match="history: no steps"):
        from_history(History())
    with pytest.raises(TypeError, match="history:"):
        from_history({"loss": [1.0]})


# ---------------------------------------------------------------------- prior draws and errors


def test_prior_draws_become_one_chain():
    draws = {"z": torch.randn(40, 3, 2), "x": torch.randn(40, 3)}
    idata = to_inference_data(prior={"z": draws["z"]}, prior_predictive={"x": draws["x"]})
    assert idata.prior["z"].shape == (1, 40, 3, 2)
    np.testing.assert_array_equal(idata.prior["z"].values[0], draws["z"].numpy())
    assert idata.prior_predictive["x"].shape == (1, 40, 3)
    with pytest.raises(ValueError, match="prior: every site needs the same number of draws"):
        to_inference_data(prior={"a": torch.zeros(3), "b": torch.zeros(4)})


def test_to_inference_data_says_what_it_needs():
    with pytest.raises(ValueError, match="source: nothing to convert"):
        to_inference_data()
    with pytest.raises(TypeError, match="source: expected a pyro.infer.MCMC"):
        to_inference_data(object())
    pair = _NormalNormal()
    with pytest.raises(ValueError, match="data: needed"):
        to_inference_data(model=pair.model, guide=pair.guide)
    with pytest.raises(ValueError, match="posterior_predictive: True draws it from an MCMC run"):
        to_inference_data(prior={"z": torch.zeros(3)}, posterior_predictive=True)
    with pytest.raises(ValueError, match="source: pass either"):
        to_inference_data(_FakeMCMC(), model=pair.model)
    with pytest.raises(TypeError, match="posterior_predictive: expected True"):
        to_inference_data(_FakeMCMC(), posterior_predictive="yes")
    with pytest.raises(TypeError, match="model_args: expected a tuple"):
        to_inference_data(prior={"z": torch.zeros(3)}, model=pair.model, model_args=[1])


# ------------------------------------------------------------------------------------- plots


def test_trace_rank_and_pair_plots_are_written(tmp_path):
    mcmc = MCMC(_StepKernel(2), num_samples=6, warmup_steps=0, disable_progbar=True)
    mcmc.run(torch.zeros(2))
    idata = to_inference_data(mcmc)
    files = save_mcmc_plots(idata, tmp_path, prefix="mcmc_")
    assert sorted(files) == ["pair", "rank", "trace"]
    for path in files.values():
        assert path.parent == tmp_path and path.name.startswith("mcmc_")
        assert path.read_bytes()[:8] == PNG
    one = save_mcmc_plots(idata, tmp_path / "one", max_elements=1)
    assert sorted(one) == ["rank", "trace"]  # no pair plot of a single element
    with pytest.raises(ValueError, match="var_names:"):
        save_mcmc_plots(idata, tmp_path, var_names=["nope"])
    with pytest.raises(ValueError, match="group:"):
        save_mcmc_plots(idata, tmp_path, group="prior")
