"""Adversarial losses: hand-computed values, the analytic optimal discriminator, gradient routing,
the gradient penalty against finite differences, and packing."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from ppdgm._pyro import local_params
from ppdgm.inference import Engine, Player, TrainConfig, adam
from ppdgm.inference.objectives import AdversarialLoss, gradient_penalty, guide_logits
from ppdgm.models import GAN

KINDS = ("non-saturating", "minimax", "wasserstein-gp", "hinge")
REAL = torch.tensor([[1.0], [-0.5], [0.25], [3.0]], dtype=torch.float64)
BASE = torch.tensor([[0.5], [-1.0], [2.0], [0.0]], dtype=torch.float64)


class Toy:
    """A generator x = theta * BASE[:n] and a discriminator with logits w * x + b."""

    def __init__(self, theta=1.5, w=0.8, b=-0.3):
        self.theta = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        self.w = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        self.b = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        self.seen = []

    def model(self, x=None, num_samples=None):
        n = num_samples if x is None else len(x)
        with pyro.plate("data", n):
            return pyro.deterministic("x", self.theta * BASE[:n], event_dim=1)

    def guide(self, x, num_samples=None):
        self.seen.append(x.detach().clone())
        with pyro.plate("data", len(x)):
            return pyro.sample("y", dist.Bernoulli(logits=self.w * x.sum(-1) + self.b))

    def logits(self, values):
        return [self.w.item() * v + self.b.item() for v in values]


def _log_sigmoid(v):
    return -math.log1p(math.exp(-v))


def _mean(values):
    return sum(values) / len(values)


def _hand(kind, toy):
    """Each loss by hand, in plain floats."""
    f_real = toy.logits(REAL.flatten().tolist())
    f_fake = toy.logits((toy.theta.item() * BASE).flatten().tolist())
    if kind in ("minimax", "non-saturating"):
        d = -(_mean([_log_sigmoid(v) for v in f_real]) + _mean([_log_sigmoid(-v) for v in f_fake]))
        g = (_mean([_log_sigmoid(-v) for v in f_fake]) if kind == "minimax"
             else -_mean([_log_sigmoid(v) for v in f_fake]))
    elif kind == "hinge":
        d = _mean([max(0.0, 1 - v) for v in f_real]) + _mean([max(0.0, 1 + v) for v in f_fake])
        g = -_mean(f_fake)
    else:  # a linear critic's input gradient is w everywhere: the penalty is (|w| - 1)^2
        d = _mean(f_fake) - _mean(f_real) + 10.0 * (abs(toy.w.item()) - 1) ** 2
        g = -_mean(f_fake)
    return d, g


@pytest.mark.parametrize("kind", KINDS)
def test_losses_equal_the_hand_computation(kind):
    toy = Toy()
    losses = AdversarialLoss(kind)(toy.model, toy.guide, REAL)
    d, g = _hand(kind, toy)
    assert losses["discriminator"].item() == pytest.approx(d, rel=1e-12)
    assert losses["generator"].item() == pytest.approx(g, rel=1e-12)
    assert AdversarialLoss(kind).player_loss("generator", toy.model, toy.guide, REAL).item() == (
        pytest.approx(g, rel=1e-12))


def test_minimax_and_non_saturating_share_the_discriminator_loss_at_extreme_logits():
    toy = Toy(theta=1.0, w=200.0, b=0.0)  # logits of +-600: logsigmoid, not log(sigmoid)
    for kind in ("minimax", "non-saturating"):
        losses = AdversarialLoss(kind)(toy.model, toy.guide, REAL)
        assert all(torch.isfinite(v) for v in losses.values())
    ns = AdversarialLoss("non-saturating")(toy.model, toy.guide, REAL)
    mm = AdversarialLoss("minimax")(toy.model, toy.guide, REAL)
    assert ns["discriminator"].item() == mm["discriminator"].item()
    # -log D(G(z)) at a fake with logit -0.8 * 200 = -160 (theta * BASE[1] = -1): ~ 160 / 4.
    assert ns["generator"].item() == pytest.approx(_mean([-_log_sigmoid(v) for v in
                                                          toy.logits(BASE.flatten().tolist())]))


@pytest.mark.parametrize("kind", KINDS)
def test_discriminator_loss_never_reaches_the_generator(kind):
    toy = Toy()
    objective = AdversarialLoss(kind)
    d_loss = objective.player_loss("discriminator", toy.model, toy.guide, REAL)
    g_theta, g_w = torch.autograd.grad(d_loss, [toy.theta, toy.w], allow_unused=True)
    assert g_theta is None and g_w is not None
    g_loss = objective.player_loss("generator", toy.model, toy.guide, REAL)
    (g_theta,) = torch.autograd.grad(g_loss, [toy.theta])
    assert g_theta.abs().item() > 0


def test_generator_gradient_flows_through_the_fakes():
    toy = Toy(theta=0.7)
    loss = AdversarialLoss("non-saturating").generator_loss(toy.model, toy.guide, REAL)
    (grad,) = torch.autograd.grad(loss, [toy.theta])
    # d/dtheta of -mean log sigmoid(w theta u + b) = -mean (1 - sigmoid(l)) w u.
    w, b = toy.w.item(), toy.b.item()
    u = BASE.flatten().tolist()
    expected = -_mean([(1 - 1 / (1 + math.exp(-(w * 0.7 * v + b)))) * w * v for v in u])
    assert grad.item() == pytest.approx(expected, rel=1e-12)


def _critic(x):
    """A nonlinear critic on (groups, features): sum_j c_j tanh(a_j . x) + x . x / 4."""
    a = torch.linspace(-1.0, 1.0, x.shape[-1] * 3, dtype=x.dtype).reshape(3, x.shape[-1])
    c = torch.tensor([0.7, -1.2, 2.0], dtype=x.dtype)
    return (torch.tanh(x @ a.T) * c).sum(-1) + (x * x).sum(-1) / 4


def _critic_guide(pack):
    def guide(x, num_samples=None):
        packed = x.reshape(x.shape[0] // pack, -1)
        with pyro.plate("data", packed.shape[0]):
            pyro.sample("y", dist.Bernoulli(logits=_critic(packed)).to_event(0))
    return guide


@pytest.mark.parametrize("pack", [1, 2])
def test_gradient_penalty_equals_finite_differences(pack):
    torch.manual_seed(0)
    real = torch.randn(6, 3, dtype=torch.float64)
    fake = torch.randn(6, 3, dtype=torch.float64)
    eps = torch.rand(6 // pack, dtype=torch.float64)
    penalty = gradient_penalty(_critic_guide(pack), real, fake, pack=pack, eps=eps)
    # By hand: interpolate per group, central differences of the critic on each group's input.
    weight = eps.repeat_interleave(pack)[:, None]
    x_hat = (weight * real + (1 - weight) * fake).reshape(6 // pack, -1)
    h = 1e-5
    grads = torch.zeros_like(x_hat)
    for j in range(x_hat.shape[1]):
        step = torch.zeros_like(x_hat)
        step[:, j] = h
        grads[:, j] = (_critic(x_hat + step) - _critic(x_hat - step)) / (2 * h)
    expected = ((grads.norm(dim=1) - 1) ** 2).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-8)


def test_gradient_penalty_trains_the_critic_and_runs_under_no_grad():
    toy = Toy(w=3.0)
    fake = (toy.theta * BASE).detach()
    penalty = gradient_penalty(toy.guide, REAL, fake)
    assert penalty.item() == pytest.approx(4.0)  # (|w| - 1)^2
    (g_w,) = torch.autograd.grad(penalty, [toy.w])
    assert g_w.item() == pytest.approx(2 * (3.0 - 1))
    with torch.no_grad():
        assert gradient_penalty(toy.guide, REAL, fake).item() == pytest.approx(4.0)


def test_packing_drops_the_remainder_and_keeps_real_and_fake_apart():
    toy = Toy()
    real = torch.arange(5.0, dtype=torch.float64).unsqueeze(1)
    loss = AdversarialLoss("hinge", pack=2)

    def packed_guide(x, num_samples=None):
        toy.seen.append(x.detach().clone())
        groups = x.reshape(len(x) // 2, 2)  # consecutive pairs
        with pyro.plate("data", len(groups)):
            pyro.sample("y", dist.Bernoulli(logits=groups[:, 0] - groups[:, 1]))

    d_loss = loss.discriminator_loss(toy.model, packed_guide, real)
    seen = toy.seen[-1]
    fakes = toy.theta.item() * BASE[:4]
    torch.testing.assert_close(seen, torch.cat([real[:4], fakes]))  # 4 real points, 4 fakes
    # Groups: (0, 1), (2, 3) real; (fake0, fake1), (fake2, fake3) generated.
    f_real = [0.0 - 1.0, 2.0 - 3.0]
    u = fakes.flatten().tolist()
    f_fake = [u[0] - u[1], u[2] - u[3]]
    expected = _mean([max(0, 1 - v) for v in f_real]) + _mean([max(0, 1 + v) for v in f_fake])
    assert d_loss.item() == pytest.approx(expected, rel=1e-12)
    g_loss = loss.generator_loss(toy.model, packed_guide, real)
    assert g_loss.item() == pytest.approx(-_mean(f_fake), rel=1e-12)


def test_packing_with_a_gan_model():
    gan = GAN(x_shape=(2,), hidden=(8,), pack=4)
    x = torch.randn(10, 2)
    losses = AdversarialLoss("wasserstein-gp", pack=4)(gan.model, gan.guide, x)  # uses 8 of 10
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match=r"pack: the loss groups 1 point\(s\) .* set the loss's pack"):
        AdversarialLoss(pack=1)(gan.model, gan.guide, x[:8])
    with pytest.raises(ValueError, match=r"pack: the loss groups 2 point\(s\) .* logits of shape \(3,\)"):
        AdversarialLoss(pack=2)(gan.model, gan.guide, x[:6])
    with local_params(), pytest.raises(ValueError, match="x: a GAN with pack=4 .* got 6"):
        AdversarialLoss(pack=1)(gan.model, gan.guide, x[:3])  # 3 real + 3 fake points


@pytest.mark.parametrize("kwargs, error, message", [
    ({"kind": "wgan"}, ValueError, "kind: expected one of 'non-saturating', 'minimax'"),
    ({"gp_weight": -1.0}, ValueError, "gp_weight: expected a finite float >= 0, got -1.0"),
    ({"gp_weight": "10"}, TypeError, "gp_weight: expected a float"),
    ({"pack": 0}, ValueError, "pack: expected an int >= 1, got 0"),
    ({"pack": 2.0}, TypeError, "pack: expected an int"),
])
def test_bad_loss_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        AdversarialLoss(**kwargs)


def test_bad_call_arguments_name_the_argument():
    toy = Toy()
    loss = AdversarialLoss(pack=2)
    with pytest.raises(ValueError, match="player: expected one of"):
        loss.player_loss("critic", toy.model, toy.guide, REAL)
    with pytest.raises(TypeError, match="x_real: expected a torch.Tensor"):
        loss(toy.model, toy.guide, REAL.tolist())
    with pytest.raises(ValueError, match=r"x_real: expected shape \(batch, \*event_shape\) with "
                                         r"batch >= pack=2, got \(1, 1\)"):
        loss(toy.model, toy.guide, REAL[:1])
    with pytest.raises(TypeError, match="model: expected a callable"):
        loss(None, toy.guide, REAL)

    def no_site_model(x=None, num_samples=None):
        return torch.zeros(num_samples, 1)

    with pytest.raises(ValueError, match="model: expected a site 'x'"):
        loss(no_site_model, toy.guide, REAL)

    def wrong_shape_model(x=None, num_samples=None):
        return pyro.deterministic("x", torch.zeros(num_samples, 2))

    with pytest.raises(ValueError, match=r"model: .* shaped like the real one \(4, 1\)"):
        loss(wrong_shape_model, toy.guide, REAL)

    def gaussian_guide(x, num_samples=None):
        with pyro.plate("data", len(x)):
            pyro.sample("y", dist.Normal(x.sum(-1), 1.0))

    with pytest.raises(ValueError, match="guide: site 'y' must be a Bernoulli"):
        guide_logits(gaussian_guide, REAL)
    with pytest.raises(ValueError, match="guide: expected a sample site 'label'"):
        guide_logits(toy.guide, REAL, site="label")
    with pytest.raises(ValueError, match=r"eps: expected a tensor of shape \(2,\)"):
        gradient_penalty(toy.guide, REAL, REAL, pack=2, eps=torch.rand(4))
    with pytest.raises(ValueError, match="x_fake: expected the shape of x_real"):
        gradient_penalty(toy.guide, REAL, REAL[:2])


def test_an_engine_step_moves_only_its_players_parameters(device):
    pyro.set_rng_seed(0)
    gan = GAN(x_shape=(2,), hidden=(8,))
    calls = []

    class Recording(AdversarialLoss):
        def player_loss(self, name, model, guide, x):
            calls.append((name, {n: p.detach().clone() for n, p in gan.named_parameters()}))
            return super().player_loss(name, model, guide, x)

    players = [Player("discriminator", owns="guide", optimizer=adam(1e-2)),
               Player("generator", owns="model", every=2, optimizer=adam(1e-2))]
    cfg = TrainConfig(epochs=5, batch_size=16, max_steps=2, device=str(device), progress=False)
    Engine(gan.model, gan.guide, Recording(), players, cfg).fit(torch.randn(16, 2))
    final = {n: p.detach().clone() for n, p in gan.named_parameters()}
    # Step 0: discriminator, then generator; step 1: discriminator alone (every=2).
    assert [name for name, _ in calls] == ["discriminator", "generator", "discriminator"]
    snapshots = [s for _, s in calls] + [final]
    for before, after, mover in zip(snapshots, snapshots[1:], ["discriminator", "generator",
                                                               "discriminator"]):
        for name in before:
            moved = not torch.equal(before[name], after[name])
            assert moved == name.startswith(mover), (mover, name)


def test_the_discriminator_learns_the_optimal_discriminator(device):
    """D*(x) = p_data / (p_data + p_g) for p_data = N(0, 1) and a frozen generator x = 0.5 z + 1.

    The discriminator alone trains, full batch, on 10,000 fixed real points and 10,000 fresh
    fakes per step. What is left is mostly the sampling error of the real set: where the
    comparison is made, x in [-1, 2], the smaller density is >= 0.05 and D* is in [0.23, 0.98],
    and about N p h = 10,000 x 0.05 x 0.3 = 150 real points (effective smoothing width h ~ 0.3)
    inform D at the edge, a relative error of ~ 8 % in p_data, i.e. D*(1 - D*) x 0.08 ~ 0.02 in
    D. The tolerance, 0.05, is 2.5 of those at the worst grid point (observed: <= 0.025 over
    seeds); the mean error must be below 0.015.
    """
    pyro.set_rng_seed(0)
    gan = GAN(x_shape=(1,), z_dim=1, hidden=(), discriminator_hidden=(32, 32), activation="tanh")
    with torch.no_grad():
        gan.generator.net[0].weight.fill_(0.5)
        gan.generator.net[0].bias.fill_(1.0)
    gan.generator.requires_grad_(False)
    x = torch.randn(10_000, 1, generator=torch.Generator().manual_seed(100))
    cfg = TrainConfig(epochs=300, batch_size=10_000, device=str(device), progress=False, seed=0)
    players = [Player("discriminator", owns="guide", optimizer=adam(1e-2))]
    engine = Engine(gan.model, gan.guide, AdversarialLoss("non-saturating"), players, cfg)
    engine.fit(x)
    assert set(engine.parameters("discriminator")) == {
        f"discriminator.{n}" for n, _ in gan.discriminator.named_parameters()}
    grid = torch.linspace(-1.0, 2.0, 61, device=device).unsqueeze(1)
    log_data = dist.Normal(grid.new_tensor(0.0), 1.0).log_prob(grid[:, 0])
    log_g = dist.Normal(grid.new_tensor(1.0), 0.5).log_prob(grid[:, 0])
    optimal = torch.sigmoid(log_data - log_g)
    with torch.no_grad():
        learned = torch.sigmoid(gan.discriminator_logits(grid))
    error = (learned - optimal).abs()
    assert error.max().item() < 0.05, error.max().item()
    assert error.mean().item() < 0.015, error.mean().item()
    # The generator did not move: it was frozen and no player owns it.
    torch.testing.assert_close(gan.generator.net[0].weight, torch.full((1, 1), 0.5, device=device))
