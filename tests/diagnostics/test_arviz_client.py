"""ArviZ as a client: its public functions on every kind of ppdgm output, on the installed line.

Each fixture builds one kind of output on a small model (Gibbs with vectorized chains, Gibbs and
HMCGibbs with chains run one after the other, NUTS, a VAE guide, a training history, prior
draws); each test calls what a user of ArviZ calls on it (0.x: ``arviz``; 1.x: ``arviz`` re-exporting
``arviz_base``, ``arviz_stats`` and ``arviz_plots``) and checks the answer where it is known.
ArviZ's own bugs that correct output triggers are kept as pure-ArviZ reproductions marked
``xfail(strict=True)``: a fixed release makes them pass, and the suite says so.
"""

from __future__ import annotations

import math
import warnings

import matplotlib
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC, NUTS, Trace_ELBO
from pyro.ops.indexing import Vindex

from ppdgm.diagnostics import save_mcmc_plots, to_inference_data
from ppdgm.diagnostics.arviz_api import arviz, arviz_major, container, dataset, group, group_names
from ppdgm.inference import Engine, TrainConfig
from ppdgm.inference.mcmc import Gibbs, HMCGibbs, typed_samples
from ppdgm.inference.sampling import ancestral_samples
from ppdgm.models import VAE

matplotlib.use("Agg")
az = arviz()
ONE = arviz_major() >= 1
N = 6  # data points; the vector-latent run has exactly N draws, where a misplaced axis hides


# --------------------------------------------------------------------------------- the models


def switch_model(y):
    """Two binary units per point, each pulling its coordinate of y to +1 or -1."""
    with pyro.plate("data", y.shape[0]):
        h = pyro.sample("h", dist.Bernoulli(0.4 * torch.ones(2)).to_event(1))
        pyro.sample("y", dist.Normal(2.0 * h - 1.0, 1.0).to_event(1), obs=y)


def switch_log_lik(h, y):
    return dist.Normal(2.0 * h - 1.0, 1.0).to_event(1).log_prob(y)


def mixture_model(y):
    """Three component means as one vector site (event dim 1), an assignment per point."""
    mus = pyro.sample("mus", dist.Normal(torch.zeros(3), 3.0).to_event(1))
    with pyro.plate("data", y.shape[0]):
        c = pyro.sample("c", dist.Categorical(torch.ones(3) / 3))
        pyro.sample("y", dist.Normal(Vindex(mus)[..., c], 1.0), obs=y)


def normal_model(y):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", y.shape[0]):
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def _y_switch():
    g = torch.Generator().manual_seed(1)
    return (2.0 * (torch.rand(N, 2, generator=g) < 0.5) - 1.0) + 0.5 * torch.randn(N, 2, generator=g)


Y_MIX = torch.tensor([-4.1, -3.8, 0.2, -0.1, 4.0, 4.3])


def sequential_mcmc(kernel, **options):
    """``MCMC`` with several chains run one after the other through one kernel, as Pyro runs them
    whenever chains outnumber the spare cores (the case under test, made so on any machine)."""
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setattr("pyro.infer.mcmc.api.mp.cpu_count", lambda: 1)
        warnings.filterwarnings("ignore", message="num_chains=", category=UserWarning)
        return MCMC(kernel, disable_progbar=True, **options)


def quiet_loo(data):
    """``az.loo``, without ArviZ 0.x's warning about high Pareto k (the value is what is tested)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter", category=UserWarning)
        return az.loo(data, pointwise=True)


@pytest.fixture(scope="module")
def gibbs_vectorized():
    pyro.set_rng_seed(0)
    mcmc = MCMC(Gibbs(switch_model, chains=4), num_samples=200, warmup_steps=50, disable_progbar=True)
    mcmc.run(_y_switch())
    return mcmc


@pytest.fixture(scope="module")
def gibbs_sequential():
    pyro.set_rng_seed(1)
    mcmc = sequential_mcmc(Gibbs(switch_model), num_samples=150, warmup_steps=30, num_chains=2)
    mcmc.run(_y_switch())
    return mcmc


class _Recorder:
    """MCMC's hook: the inner NUTS kernel's step counter and step size at every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, kernel, params, stage, i):
        self.calls.append((stage, kernel.inner._t, kernel.inner.step_size))


@pytest.fixture(scope="module")
def hmc_gibbs():
    pyro.set_rng_seed(2)
    recorder = _Recorder()
    kernel = HMCGibbs(mixture_model)
    mcmc = sequential_mcmc(kernel, num_samples=N, warmup_steps=40, num_chains=2, hook_fn=recorder)
    mcmc.run(Y_MIX)
    return mcmc, recorder


@pytest.fixture(scope="module")
def nuts_runs():
    runs = []
    y = torch.tensor([0.5, 1.5, -0.2, 0.9, 0.3, 1.1])
    for seed in (3, 4):
        pyro.set_rng_seed(seed)
        mcmc = sequential_mcmc(NUTS(normal_model), num_samples=150, warmup_steps=100, num_chains=2)
        mcmc.run(y)
        runs.append(mcmc)
    return runs


@pytest.fixture(scope="module")
def vae_output():
    pyro.set_rng_seed(5)
    x = (torch.rand(64, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    vae = VAE(x_shape=(6,), z_dim=2, hidden=(8,))
    history = Engine(vae.model, vae.guide, Trace_ELBO(),
                     config=TrainConfig(epochs=2, batch_size=16, progress=False)).fit(x)
    idata = to_inference_data(model=vae.model, guide=vae.guide, data=x[:N], num_samples=60,
                              chains=2)
    prior = ancestral_samples(vae.model, 60, None, num_samples=N)
    with_prior = to_inference_data(model=vae.model, guide=vae.guide, data=x[:N], num_samples=60,
                                   chains=2, prior={"z": prior["z"]},
                                   prior_predictive={"x": prior["x"]})
    return idata, with_prior, history


# ------------------------------------------------------------------------- the silent errors


def test_every_sequential_hmc_gibbs_chain_adapts_and_counts_its_own_divergences(hmc_gibbs):
    mcmc, recorder = hmc_gibbs
    warmup = [call for call in recorder.calls if call[0].startswith("Warmup")]
    assert len(warmup) == 2 * 40
    # Each chain's first warm-up step is the inner kernel's first step, and its step size moves.
    for chain in (warmup[:40], warmup[40:]):
        assert chain[0][1] == 1, "the inner NUTS did not start this chain afresh"
        assert len({round(step_size, 8) for _, _, step_size in chain}) > 5
    per_chain = [d["divergences"] for d in mcmc._diagnostics]
    assert per_chain[0] is not per_chain[1]
    for divergences in per_chain:
        assert all(0 <= i < N for i in divergences)
    idata = to_inference_data(mcmc)
    assert dict(idata.sample_stats.diverging.sizes) == {"chain": 2, "draw": N}


def test_vector_latent_log_likelihood_equals_a_hand_computation(hmc_gibbs):
    mcmc, _ = hmc_gibbs
    idata = to_inference_data(mcmc)
    samples = typed_samples(mcmc, group_by_chain=True)
    mus, c = samples["mus"], samples["c"]
    assert mus.shape == (2, N, 3) and c.shape == (2, N, N)  # draws == data points
    hand = dist.Normal(mus.gather(-1, c), 1.0).log_prob(Y_MIX).numpy()
    assert idata.log_likelihood["y"].dims == ("chain", "draw", "obs")
    np.testing.assert_allclose(idata.log_likelihood["y"].values, hand, rtol=1e-5, atol=1e-6)


def test_vectorized_gibbs_log_likelihood_and_predictive_by_hand(gibbs_vectorized):
    idata = to_inference_data(gibbs_vectorized, posterior_predictive=True)
    h = idata.posterior["h"].values
    assert idata.posterior["h"].dims == ("chain", "draw", "obs", "h_dim_0")
    hand = switch_log_lik(torch.as_tensor(h, dtype=torch.float32), _y_switch()).numpy()
    np.testing.assert_allclose(idata.log_likelihood["y"].values, hand, rtol=1e-5)
    predictive = idata.posterior_predictive["y"]
    assert predictive.dims == ("chain", "draw", "obs", "y_dim_0")
    assert predictive.shape == (4, 200, N, 2)
    # y | h ~ N(2h - 1, 1): the residuals are standard normal.
    residual = predictive.values - (2.0 * h - 1.0)
    assert abs(residual.mean()) < 0.05 and abs(residual.std() - 1.0) < 0.05


def test_sequential_gibbs_chains_convert_with_their_own_log_likelihood(gibbs_sequential):
    idata = to_inference_data(gibbs_sequential)
    assert dict(idata.posterior["h"].sizes) == {"chain": 2, "draw": 150, "obs": N, "h_dim_0": 2}
    h = torch.as_tensor(idata.posterior["h"].values, dtype=torch.float32)
    np.testing.assert_allclose(idata.log_likelihood["y"].values, switch_log_lik(h, _y_switch()).numpy(),
                               rtol=1e-5)
    assert not idata.sample_stats["diverging"].values.any()
    assert float(az.rhat(idata)["h"].max()) < 1.1


def test_dims_line_up_across_groups(vae_output, gibbs_vectorized):
    _, idata, _ = vae_output
    for site, groups in {"z": ("posterior", "prior"),
                         "x": ("posterior_predictive", "prior_predictive", "observed_data")}.items():
        shapes = {g: dict(group(idata, g)[site].sizes) for g in groups}
        for g in groups:
            shapes[g].pop("chain", None), shapes[g].pop("draw", None)
        assert len({tuple(s.items()) for s in shapes.values()}) == 1, shapes
    assert idata.log_likelihood["x"].dims == ("chain", "draw", "obs")
    # Arithmetic between groups does not broadcast into new dimensions.
    diff = idata.prior["z"].mean("draw") - idata.posterior["z"].mean("draw")
    assert set(diff.dims) == {"chain", "obs", "z_dim_0"}

    gibbs = to_inference_data(gibbs_vectorized, posterior_predictive=True)
    for name in ("posterior_predictive", "observed_data"):
        assert group(gibbs, name)["y"].dims[-2:] == ("obs", "y_dim_0")
    assert gibbs.log_likelihood["y"].dims[-1] == "obs"


def test_every_sample_stats_variable_has_chain_and_draw(vae_output, gibbs_vectorized, hmc_gibbs):
    idata, _, history = vae_output
    outputs = [idata, to_inference_data(gibbs_vectorized), to_inference_data(hmc_gibbs[0]),
               to_inference_data(history)]
    for output in outputs:
        for name in group_names(output):
            if name in ("observed_data", "constant_data"):
                continue
            for var, array in group(output, name).data_vars.items():
                assert array.dims[:2] == ("chain", "draw"), (name, var, array.dims)
    # k-hat per data point is an attribute, in obs order.
    assert np.shape(idata.sample_stats.attrs["pareto_k"]) == (N,)


# --------------------------------------------------------------------- ArviZ's own functions


def test_summary_ess_rhat_mcse_on_mcmc(gibbs_vectorized, nuts_runs):
    idata = to_inference_data(nuts_runs[0])
    table = az.summary(idata)
    assert list(table.index) == ["mu"]
    # mu | y ~ N(sum(y) / (n + 1), 1 / (n + 1)) for the conjugate normal model.
    y = nuts_runs[0]._args[0]
    mean, sd = y.sum().item() / (len(y) + 1), math.sqrt(1 / (len(y) + 1))
    assert abs(float(table.loc["mu", "mean"]) - mean) < 0.25
    assert abs(float(table.loc["mu", "sd"]) - sd) < 0.15
    assert float(table.loc["mu", "r_hat"]) < 1.05
    gibbs = to_inference_data(gibbs_vectorized)
    for fn in (az.ess, az.rhat, az.mcse):
        result = fn(gibbs)
        assert dict(result["h"].sizes) == {"obs": N, "h_dim_0": 2}, fn.__name__
    assert float(az.rhat(gibbs)["h"].max()) < 1.1
    assert len(az.summary(gibbs)) == 2 * N


def test_summary_of_sample_stats_on_every_output(vae_output, gibbs_vectorized):
    idata, _, history = vae_output
    guide_table = az.summary(idata, group="sample_stats")
    assert len(guide_table) == N  # log_weight per point
    history_data = to_inference_data(history)
    table = az.summary(history_data, group="sample_stats", var_names=["loss"])
    assert len(table) == 1
    epochs = az.summary(history_data, group="epoch_stats", var_names=["loss_per_example"])
    assert len(epochs) == 1


# ArviZ 0.23's compare sorts in place, which pandas 3.1 deprecates: ArviZ's code, not ppdgm's.
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.sort_values")
def test_loo_waic_and_compare(nuts_runs):
    first, second = (to_inference_data(run) for run in nuts_runs)
    loo = quiet_loo(first)
    ll = first.log_likelihood["y"].values.reshape(-1, 6).astype(np.float64)
    # Plain importance-sampling LOO: log p(y_i | y_-i) = -log mean_s exp(-log p(y_i | theta_s)).
    hand = float(np.sum(-(np.logaddexp.reduce(-ll, axis=0) - np.log(len(ll)))))
    elpd = float(loo["elpd"] if ONE else loo["elpd_loo"])
    assert abs(elpd - hand) < 0.2
    table = az.compare({"first": first, "second": second})
    assert set(table.index) == {"first", "second"}
    if not ONE:
        waic = az.waic(first)
        lppd = float(np.sum(np.logaddexp.reduce(ll, axis=0) - np.log(len(ll))))
        # elpd_waic = lppd - sum of the pointwise variances; ArviZ sums in float32.
        assert abs(float(waic["elpd_waic"]) - (lppd - float(np.sum(ll.var(axis=0, ddof=1))))) < 5e-3


def test_loo_on_a_guide_and_a_vectorized_gibbs_run(vae_output, gibbs_vectorized):
    idata, _, _ = vae_output
    for data in (idata, to_inference_data(gibbs_vectorized)):
        loo = quiet_loo(data)
        assert np.isfinite(float(loo["elpd"] if ONE else loo["elpd_loo"]))


# ArviZ 0.23's matplotlib backend calls an API that matplotlib 3.11 deprecates.
@pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")
def test_plots(tmp_path, gibbs_vectorized, nuts_runs, vae_output):
    import matplotlib.pyplot as plt

    gibbs = to_inference_data(gibbs_vectorized, posterior_predictive=True)
    nuts = to_inference_data(nuts_runs[0], posterior_predictive=True)
    guide, _, _ = vae_output
    backend = {"backend": "matplotlib"} if ONE else {}
    trace = az.plot_trace_dist if ONE else az.plot_trace
    calls = [(trace, nuts, {}), (az.plot_rank, nuts, {}), (az.plot_forest, nuts, {}),
             (az.plot_forest, guide, {"var_names": ["z"]}),
             (az.plot_pair, guide, {"coords": {"obs": [0]}}),
             (az.plot_loo_pit, nuts, {} if ONE else {"y": "y"}),
             (az.plot_ppc_dist if ONE else az.plot_ppc, nuts, {}),
             (az.plot_ppc_dist if ONE else az.plot_ppc, gibbs, {})]
    for fn, data, kwargs in calls:
        fn(data, **backend, **kwargs)
        plt.close("all")


def test_netcdf_round_trips_every_output(tmp_path, vae_output, gibbs_vectorized, hmc_gibbs):
    idata, with_prior, history = vae_output
    outputs = {"guide": with_prior, "gibbs": to_inference_data(gibbs_vectorized),
               "hmc_gibbs": to_inference_data(hmc_gibbs[0]), "history": to_inference_data(history)}
    for name, data in outputs.items():
        path = tmp_path / f"{name}.nc"
        data.to_netcdf(str(path))
        back = az.from_netcdf(str(path))
        assert set(group_names(back)) == set(group_names(data)), name
        for g in group_names(data):
            saved, loaded = group(data, g), group(back, g)
            for var in saved.data_vars:
                assert loaded[var].dims == saved[var].dims, (name, g, var)
                assert loaded[var].dtype == saved[var].dtype, (name, g, var)
                np.testing.assert_array_equal(loaded[var].values, saved[var].values)
    back = az.from_netcdf(str(tmp_path / "guide.nc"))
    np.testing.assert_array_equal(group(back, "sample_stats").attrs["pareto_k"],
                                  idata.sample_stats.attrs["pareto_k"])


def test_extract(gibbs_vectorized, vae_output):
    gibbs = to_inference_data(gibbs_vectorized)
    # ArviZ 1.x gives a single variable as a DataArray unless asked for the dataset.
    draws = az.extract(gibbs, **({"keep_dataset": True} if ONE else {}))
    assert dict(draws["h"].sizes) == {"obs": N, "h_dim_0": 2, "sample": 4 * 200}
    idata, _, _ = vae_output
    extracted = az.extract(idata, group="log_likelihood", **({"keep_dataset": True} if ONE else {}))
    assert extracted["x"].sizes["sample"] == 120


@pytest.mark.skipif(ONE, reason="ArviZ 1.x has no concat (DataTree groups concatenate with xarray)")
def test_concat_along_chain_on_every_output(vae_output, nuts_runs):
    idata, _, history = vae_output
    for data in (to_inference_data(nuts_runs[0]), idata, to_inference_data(history)):
        joined = az.concat(data, data, dim="chain")
        assert joined.sample_stats.sizes["chain"] == 2 * data.sample_stats.sizes["chain"]


def test_prior_draws_named_by_the_model_align_with_the_posterior(nuts_runs):
    y = nuts_runs[0]._args[0]
    prior = ancestral_samples(normal_model, 50, y)
    idata = to_inference_data(nuts_runs[0], prior={"mu": prior["mu"]},
                              prior_predictive={"y": prior["y"]})
    assert idata.prior_predictive["y"].dims == ("chain", "draw", "obs")
    assert idata.observed_data["y"].dims == ("obs",)
    assert idata.prior["mu"].dims == idata.posterior["mu"].dims == ("chain", "draw")


# --------------------------------------------------- ppdgm's commands around ArviZ's own bugs


def _constant_integer_data():
    rng = np.random.default_rng(0)
    return {"k": np.ones((2, 50), dtype=np.int64), "x": rng.normal(size=(2, 50))}


def test_ppdgm_plots_draw_a_constant_integer_variable(tmp_path):
    data = container({"posterior": dataset(_constant_integer_data())})
    files = save_mcmc_plots(data, tmp_path)
    assert sorted(files) == ["pair", "rank", "trace"]


@pytest.mark.xfail(strict=True, raises=ValueError,
                   reason="ArviZ's rank plot interpolates ranks of a constant integer draw")
def test_arviz_rank_plot_of_a_constant_integer_variable():
    if ONE:
        az.plot_rank(az.from_dict({"posterior": _constant_integer_data()}), backend="matplotlib")
    else:
        az.plot_rank(az.from_dict(posterior=_constant_integer_data()), var_names=["k"])


@pytest.mark.xfail(ONE, strict=True, raises=ValueError,
                   reason="arviz-plots' pair plot fails on a constant integer variable")
def test_arviz_pair_plot_of_a_constant_integer_variable():
    if ONE:
        az.plot_pair(az.from_dict({"posterior": _constant_integer_data()}), backend="matplotlib")
    else:
        az.plot_pair(az.from_dict(posterior=_constant_integer_data()))


@pytest.mark.xfail(ONE, strict=True, raises=ValueError,
                   reason="arviz_stats.loo cannot fit a tail to a constant log-likelihood")
def test_arviz_loo_with_a_constant_pointwise_log_likelihood():
    rng = np.random.default_rng(0)
    ll = rng.normal(size=(2, 50, 4))
    ll[..., 0] = -1.0
    posterior = {"x": rng.normal(size=(2, 50))}
    if ONE:
        data = az.from_dict({"posterior": posterior, "log_likelihood": {"y": ll}})
    else:
        data = az.from_dict(posterior=posterior, log_likelihood={"y": ll})
    with np.errstate(all="ignore"), pytest.warns() if not ONE else _nothing():
        az.loo(data, pointwise=True)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
