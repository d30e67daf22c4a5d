"""The diffusion denoisers: embedding values, shapes, conditioning on t, gradients, argument checks."""

from __future__ import annotations

import math

import pytest
import torch

from ppdgm.models.denoisers import DenoisingMLP, DenoisingUNet, timestep_embedding


def _small_unet(shape=(1, 8, 8), **kwargs) -> DenoisingUNet:
    options = dict(channels=8, multipliers=(1, 2), time_dim=16, groups=4)
    options.update(kwargs)
    return DenoisingUNet(shape, **options)


# ---- timestep_embedding ----------------------------------------------------------------------


def test_embedding_matches_hand_computation():
    e = timestep_embedding(torch.tensor([3, 0]), 4)
    # half = 2: frequencies exp(-log(10000) * k / 2) = 1 and 0.01.
    expected = torch.tensor(
        [[math.sin(3.0), math.sin(0.03), math.cos(3.0), math.cos(0.03)], [0.0, 0.0, 1.0, 1.0]]
    )
    torch.testing.assert_close(e, expected)
    e = timestep_embedding(torch.tensor([2.5], dtype=torch.float64), 6, max_period=100.0)
    w = [math.exp(-math.log(100.0) * k / 3) for k in range(3)]
    expected = torch.tensor([[math.sin(2.5 * v) for v in w] + [math.cos(2.5 * v) for v in w]],
                            dtype=torch.float64)
    assert e.dtype == torch.float64
    torch.testing.assert_close(e, expected)


def test_embedding_int_and_float_agree_and_distinct_steps_differ():
    steps = torch.arange(0, 1001)
    e = timestep_embedding(steps, 64)
    assert e.shape == (1001, 64) and e.dtype == torch.get_default_dtype()
    torch.testing.assert_close(e, timestep_embedding(steps.float(), 64))
    distance = torch.cdist(e, e) + torch.eye(1001) * 1e3
    assert distance.min().item() > 1e-3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(t=torch.zeros(3, 1), dim=4), ValueError, "t: expected shape"),
        (dict(t=[1, 2], dim=4), TypeError, "t: expected a torch.Tensor"),
        (dict(t=torch.tensor([True]), dim=4), TypeError, "t: expected an int or float"),
        (dict(t=torch.tensor([-1.0]), dim=4), ValueError, "t: expected values >= 0"),
        (dict(t=torch.tensor([float("nan")]), dim=4), ValueError, "t: contains NaN"),
        (dict(t=torch.zeros(2), dim=5), ValueError, "dim: expected an even int"),
        (dict(t=torch.zeros(2), dim=0), ValueError, "dim: expected an int >= 2"),
        (dict(t=torch.zeros(2), dim=4.0), TypeError, "dim: expected an int"),
        (dict(t=torch.zeros(2), dim=4, max_period=0.0), ValueError, "max_period"),
    ],
)
def test_embedding_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        timestep_embedding(**kwargs)


# ---- DenoisingMLP ----------------------------------------------------------------------------


def test_mlp_shapes_and_structure():
    net = DenoisingMLP(2, hidden=(16, 8), time_dim=8)
    assert net(torch.randn(5, 2), torch.randint(0, 1000, (5,))).shape == (5, 2)
    assert [(m.in_features, m.out_features) for m in net.layers] == [(2, 16), (16, 8)]
    assert (net.out.in_features, net.out.out_features) == (8, 2)
    # PyTorch's default init on the output layer: not zeroed.
    assert net.out.weight.abs().sum() > 0
    x64 = torch.randn(4, 2, dtype=torch.float64)
    assert net.double()(x64, torch.arange(4)).dtype == torch.float64


def test_mlp_output_depends_on_t_and_gradients_reach_every_parameter():
    net = DenoisingMLP(3, hidden=(16, 16), time_dim=8)
    x = torch.randn(4, 3)
    out = net(x, torch.full((4,), 10))
    assert not torch.allclose(out, net(x, torch.full((4,), 500)))
    out.square().sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_mlp_adam_steps_lower_the_loss():
    torch.manual_seed(0)
    net = DenoisingMLP(2, hidden=(32, 32), time_dim=16)
    x, t, target = torch.randn(64, 2), torch.randint(1, 100, (64,)), torch.randn(64, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = (net(x, t) - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    final = (net(x, t) - target).square().mean().item()
    assert final < losses[0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(x_dim=0), ValueError, "x_dim"),
        (dict(x_dim=2, hidden=()), ValueError, "hidden: expected at least one"),
        (dict(x_dim=2, hidden=(8, 0)), ValueError, "hidden: expected positive ints"),
        (dict(x_dim=2, hidden=8), TypeError, "hidden: expected a sequence"),
        (dict(x_dim=2, time_dim=7), ValueError, "time_dim: expected an even int"),
    ],
)
def test_mlp_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        DenoisingMLP(**kwargs)


def test_mlp_forward_checks_shapes():
    net = DenoisingMLP(2, hidden=(8,), time_dim=4)
    with pytest.raises(ValueError, match=r"x: expected shape \(n, 2\)"):
        net(torch.zeros(3, 3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"t: expected shape \(3,\)"):
        net(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"t: expected shape \(3,\)"):
        net(torch.zeros(3, 2), torch.tensor(1.0))


# ---- DenoisingUNet ---------------------------------------------------------------------------


def test_unet_default_shapes_and_parameter_count():
    net = DenoisingUNet((1, 28, 28))
    count = sum(p.numel() for p in net.parameters())
    assert 500_000 <= count <= 2_000_000, count
    with torch.no_grad():
        assert net(torch.randn(2, 1, 28, 28), torch.tensor([1, 999])).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 12, 16)])
def test_unet_small_shapes(shape):
    net = _small_unet(shape, multipliers=(1, 2, 2) if shape[1] % 4 == 0 else (1, 2))
    with torch.no_grad():
        assert net(torch.randn(3, *shape), torch.tensor([0, 7, 300])).shape == (3, *shape)


def test_unet_output_depends_on_t_and_x_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = _small_unet(multipliers=(1, 2, 2), dropout=0.1).eval()
    x = torch.randn(2, 1, 8, 8)
    t = torch.tensor([3, 3])
    out = net(x, t)
    assert not torch.allclose(out, net(x, torch.tensor([400, 400])))
    assert not torch.allclose(out, net(x + 0.5 * torch.randn_like(x), t))
    net.train()
    net(x, t).square().sum().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None]
    assert not missing


def test_unet_examples_are_independent():
    # GroupNorm normalizes per example, so a batch of two equals two batches of one.
    net = _small_unet()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 60])
    with torch.no_grad():
        torch.testing.assert_close(net(x, t)[1:], net(x[1:], t[1:]))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(x_shape=(1, 28)), ValueError, r"x_shape: expected \(C, H, W\)"),
        (dict(x_shape=(1, 28, 28), multipliers=(1, 2, 2, 2)), ValueError,
         "x_shape: expected H and W divisible by 8"),
        (dict(x_shape=(1, 6, 8)), ValueError, "x_shape: expected H and W divisible by 4"),
        (dict(x_shape=(1, 8, 8), channels=12), ValueError, "groups: .* groups = 8 and channels = 12"),
        (dict(x_shape=(1, 8, 8), multipliers=()), ValueError, "multipliers: expected at least one"),
        (dict(x_shape=(1, 8, 8), time_dim=3), ValueError, "time_dim: expected an even int"),
        (dict(x_shape=(1, 8, 8), dropout=1.0), ValueError, "dropout"),
        (dict(x_shape=(1, 8, 8), groups=0), ValueError, "groups"),
        (dict(x_shape=(1, 8, 8), channels=2.5), TypeError, "channels"),
    ],
)
def test_unet_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        DenoisingUNet(**kwargs)


def test_unet_forward_checks_shapes():
    net = _small_unet()
    with pytest.raises(ValueError, match=r"x: expected shape \(n, 1, 8, 8\)"):
        net(torch.zeros(2, 8, 8), torch.zeros(2))
    with pytest.raises(ValueError, match=r"x: expected shape \(n, 1, 8, 8\)"):
        net(torch.zeros(2, 1, 16, 16), torch.zeros(2))
    with pytest.raises(ValueError, match=r"t: expected shape \(2,\)"):
        net(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1))
    with pytest.raises(TypeError, match="t: expected a torch.Tensor"):
        net(torch.zeros(2, 1, 8, 8), 5)


def test_mlp_fourier_features_widen_the_input_with_fixed_octaves():
    net = DenoisingMLP(2, hidden=(16,), time_dim=8, fourier=4)
    assert net.layers[0].in_features == 2 * (1 + 2 * 4)
    x = torch.tensor([[0.25, -0.5]])
    assert net(x, torch.tensor([3])).shape == (1, 2)
    # The same input rebuilt in another instance gives the same features (no random frequencies).
    assert torch.equal(net.freqs, DenoisingMLP(2, hidden=(16,), time_dim=8, fourier=4).freqs)
    with pytest.raises(ValueError, match="fourier"):
        DenoisingMLP(2, fourier=-1)
