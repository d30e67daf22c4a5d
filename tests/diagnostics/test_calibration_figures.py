"""SBC's ranks reach ArviZ as the prior_sbc group its own ECDF-PIT figure reads, on both lines."""

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

from ppdgm.diagnostics import arviz_api
from ppdgm.diagnostics.calibration import SBCResult, sbc
from ppdgm.diagnostics.calibration_figures import plot_sbc, sbc_inference_data


def model(x=None):
    mu = pyro.sample("mu", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    with pyro.plate("data", 3):
        return pyro.sample("x", dist.Normal(mu, 1.0).to_event(1), obs=x)


def guide(x):
    pyro.sample("mu", dist.Normal(x.sum(-2) / 4, 0.5).to_event(1))


def test_the_ranks_and_their_pit_values_are_groups_of_the_installed_arviz_line():
    result = sbc(model, guide, num_simulations=30, num_draws=9)
    data = sbc_inference_data(result)
    assert arviz_api.is_container(data)
    assert {"prior_sbc", "sbc_ranks"} <= set(arviz_api.group_names(data))
    pit, ranks = arviz_api.group(data, "prior_sbc"), arviz_api.group(data, "sbc_ranks")
    assert dict(pit["mu"].sizes) == {"chain": 1, "draw": 30, "mu_dim_0": 2}
    np.testing.assert_array_equal(ranks["mu"].values[0], result.ranks["mu"])
    np.testing.assert_allclose(pit["mu"].values[0], (result.ranks["mu"] + 0.5) / 10)
    assert ((pit["log_joint"].values > 0) & (pit["log_joint"].values < 1)).all()


def test_arviz_draws_the_ecdf_figure(tmp_path):
    result = sbc(model, guide, num_simulations=30, num_draws=9)
    path = plot_sbc(result, tmp_path / "figs" / "sbc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_an_sbc_result_is_converted():
    with pytest.raises(TypeError, match="result: expected an SBCResult"):
        sbc_inference_data({"mu": np.zeros((3, 1))})
    assert SBCResult(ranks={}, num_draws=1, alpha=0.05).p_values == {}
