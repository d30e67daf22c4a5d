"""decode(z) of the decoder-based models is the mean of x their Pyro model gives at those z, for
any leading shape of z, with the gradient in z kept."""

import pytest
import torch
from pyro import poutine

from ppdgm.models import GAN, VAE, VAEGAN

MODELS = {
    "vae-bernoulli-mlp": lambda: VAE(x_shape=(1, 8, 8), z_dim=3, hidden=(8,)),
    "vae-gaussian-conv": lambda: VAE(x_shape=(1, 8, 8), z_dim=3, arch="conv", likelihood="gaussian"),
    "gan-mlp": lambda: GAN(x_shape=(5,), z_dim=3, hidden=(8,)),
    "gan-dcgan": lambda: GAN(x_shape=(1, 8, 8), z_dim=3, arch="dcgan", channels=(4, 8)),
    "vae-gan-mlp": lambda: VAEGAN(x_shape=(5,), z_dim=3, hidden=(8,)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_decode_is_the_models_mean_of_x_given_z(name):
    model = MODELS[name]()
    model.eval()  # batch norm (dcgan) uses its running statistics in both calls
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    trace = poutine.trace(poutine.condition(model.model, data={"z": z})).get_trace(None, num_samples=4)
    site = trace.nodes["x"]
    expected = site["fn"].mean if name.startswith("vae-") and "gan" not in name else site["value"]
    torch.testing.assert_close(model.decode(z), expected)
    grid = torch.randn(2, 4, 3, requires_grad=True)
    out = model.decode(grid)
    assert out.shape == (2, 4, *model.config.x_shape)
    out.sum().backward()
    assert grid.grad is not None and grid.grad.abs().sum() > 0


def test_decode_refuses_latents_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"z: expected shape \(\.\.\., 3\)"):
        VAE(x_shape=(4,), z_dim=3, hidden=(8,)).decode(torch.zeros(2, 4))
