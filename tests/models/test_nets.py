"""Shapes, batching and argument checks of the small networks."""

import pytest
import torch

from ppdgm.models import MLP, ConvDecoder, ConvEncoder


def test_mlp_layers_and_leading_dims():
    net = MLP(4, [16, 8], 3, activation="tanh")
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 16), (16, 8), (8, 3)]
    assert sum(isinstance(m, torch.nn.Tanh) for m in net.modules()) == 2
    assert net(torch.zeros(5, 7, 4)).shape == (5, 7, 3)


def test_mlp_without_hidden_layers_is_affine():
    net = MLP(3, [], 2)
    x = torch.randn(6, 3)
    (layer,) = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    torch.testing.assert_close(net(x), x @ layer.weight.T + layer.bias)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 12, 16)])
def test_conv_encoder_decoder_shapes(shape):
    enc = ConvEncoder(shape, 6)
    dec = ConvDecoder(6, shape)
    x = torch.randn(5, *shape)
    z = enc(x)
    assert z.shape == (5, 6)
    assert dec(z).shape == (5, *shape)
    # Extra leading dims (vectorized particles) are folded into the batch and restored.
    assert dec(torch.randn(2, 5, 6)).shape == (2, 5, *shape)
    assert enc(torch.randn(2, 5, *shape)).shape == (2, 5, 6)


def test_conv_channels_are_used():
    enc = ConvEncoder((1, 8, 8), 4, channels=(3, 5))
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs] == [(1, 3, (2, 2)),
                                                                         (3, 5, (2, 2))]
    dec = ConvDecoder(4, (2, 8, 8), channels=(5, 3))
    convs = [m for m in dec.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(5, 3), (3, 2)]


@pytest.mark.parametrize("cls", [ConvEncoder, ConvDecoder])
@pytest.mark.parametrize("shape", [(1, 10, 8), (1, 8, 6), (8, 8), (1, 0, 8)])
def test_conv_shape_checked(cls, shape):
    arg = "in_shape" if cls is ConvEncoder else "out_shape"
    with pytest.raises(ValueError, match=arg):
        cls(shape, 4) if cls is ConvEncoder else cls(4, shape)


@pytest.mark.parametrize(
    "build, exc, match",
    [
        (lambda: MLP(0, [4], 2), ValueError, "in_features"),
        (lambda: MLP(3, [4], 2.0), TypeError, "out_features"),
        (lambda: MLP(3, [4, 0], 2), ValueError, "hidden"),
        (lambda: MLP(3, 4, 2), TypeError, "hidden"),
        (lambda: MLP(3, [4], 2, activation="swish"), ValueError, "activation.*'relu'"),
        (lambda: ConvEncoder((1, 8, 8), 4, channels=(8,)), ValueError, "channels"),
        (lambda: ConvDecoder(4, (1, 8, 8), channels=(8, 8, 8)), ValueError, "channels"),
    ],
)
def test_bad_arguments(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_forward_checks_input_shape():
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 4\), got \(2, 3\)"):
        MLP(4, [8], 2)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 1, 8, 8\)"):
        ConvEncoder((1, 8, 8), 2)(torch.zeros(2, 64))
    with pytest.raises(ValueError, match="z: expected shape"):
        ConvDecoder(2, (1, 8, 8))(torch.zeros(2, 3))
