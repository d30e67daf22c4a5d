"""Every fit_* run checks its dataset and TrainConfig the same way, naming the argument."""

import pytest

from ppdgm.data import load_dataset
from ppdgm.inference import TrainConfig
from ppdgm.recipes import fit_diffusion, fit_gan, fit_rbm, fit_sbn, fit_vae, fit_vaegan

FITS = [fit_vae, fit_sbn, fit_rbm, fit_gan, fit_vaegan, fit_diffusion]


@pytest.mark.parametrize("fit", FITS, ids=lambda f: f.__name__)
def test_fit_functions_check_their_inputs_by_name(fit, tmp_path):
    ds = load_dataset("bars-and-stripes")
    with pytest.raises(TypeError, match="^dataset: expected a ppdgm.data.Dataset, got Tensor"):
        fit(ds.train, TrainConfig(device="cpu", out_dir=str(tmp_path)))
    with pytest.raises(TypeError, match="^train: expected a TrainConfig, got dict"):
        fit(ds, {"epochs": 1})
    with pytest.raises(ValueError, match="^train: TrainConfig.out_dir is needed"):
        fit(ds, TrainConfig(device="cpu"))
    assert not any(tmp_path.iterdir())
