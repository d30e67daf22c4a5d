"""VAE-GAN losses: hand-computed values for every kind, agreement with the adversarial losses and
with Pyro's ELBOs, gradient routing, and player isolation under the engine."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from ppdgm._pyro import local_params
from ppdgm.inference import Engine, Player, TrainConfig, adam
from ppdgm.inference.objectives import AdversarialLoss, VAEGANLoss
from ppdgm.models import VAEGAN

KINDS = ("non-saturating", "minimax", "wasserstein-gp", "hinge")
X = torch.tensor([[1.0], [-0.5], [0.25], [2.0]], dtype=torch.float64)
LOG_2PI = math.log(2 * math.pi)


class Toy:
    """Linear networks in float64: encoder N(a x, s^2), decoder theta z + c, features u x,
    discriminator logits (w . u) x + b. Records every z it draws."""

    def __init__(self, a=0.7, s=0.6, theta=1.3, c=0.2, u=(0.9, -0.4), w=(0.8, 0.5), b=-0.3):
        t = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)  # noqa: E731
        self.a, self.s, self.theta, self.c, self.u, self.w, self.b = map(t, (a, s, theta, c, u, w, b))
        self.guide_z, self.model_z = [], []

    def features(self, v, detach):
        u = self.u.detach() if detach else self.u
        return v * u  # (n, 1) * (2,) -> (n, 2)

    def model(self, x=None, num_samples=None):
        n = num_samples if x is None else len(x)
        with pyro.plate("data", n):
            zero = torch.zeros(n, 1, dtype=torch.float64)
            z = pyro.sample("z", dist.Normal(zero, 1.0).to_event(1))
            self.model_z.append(z.detach().clone())
            x_tilde = pyro.deterministic("x", self.theta * z + self.c, event_dim=1)
            if x is not None:
                pyro.sample("x_features", dist.Normal(self.features(x_tilde, True), 1.0).to_event(1),
                            obs=self.features(x, True))
            return x_tilde

    def guide(self, x=None, num_samples=None):
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(self.a * x, self.s).to_event(1))
        self.guide_z.append(z.detach().clone())
        return z

    def discriminator(self, x, num_samples=None):
        with pyro.plate("data", len(x)):
            return pyro.sample("y", dist.Bernoulli(logits=self.features(x, False) @ self.w + self.b))

    # ---- the hand computation, in plain floats
    def floats(self):
        return {k: getattr(self, k).detach().tolist() for k in ("a", "s", "theta", "c", "u", "w", "b")}

    def prior_and_posterior_z(self):
        """The one prior draw and the (last) posterior draw the loss used, as lists of floats."""
        posterior = self.guide_z[-1]
        prior = [z for z in self.model_z if not torch.equal(z, posterior)]
        assert len(prior) <= 1
        return (prior[0].flatten().tolist() if prior else None), posterior.flatten().tolist()


def _ls(v):  # log sigmoid
    return -math.log1p(math.exp(-v))


def _mean(values):
    return sum(values) / len(values)


def _terms(kind):
    if kind in ("minimax", "non-saturating"):
        real, fake = (lambda f: -_ls(f)), (lambda f: -_ls(-f))
        gen = (lambda f: _ls(-f)) if kind == "minimax" else (lambda f: -_ls(f))
    elif kind == "hinge":
        real, fake, gen = (lambda f: max(0.0, 1 - f)), (lambda f: max(0.0, 1 + f)), (lambda f: -f)
    else:
        real, fake, gen = (lambda f: -f), (lambda f: f), (lambda f: -f)
    return real, fake, gen


def _hand(toy, player, kind, gamma, analytic_kl, gp_weight=10.0):
    p = toy.floats()
    xs = X.flatten().tolist()
    prior_z, post_z = toy.prior_and_posterior_z()
    logit = lambda v: (p["u"][0] * p["w"][0] + p["u"][1] * p["w"][1]) * v + p["b"]  # noqa: E731
    decode = lambda z: p["theta"] * z + p["c"]  # noqa: E731
    x_tilde = [decode(z) for z in post_z]
    nll = [0.5 * sum(ui**2 for ui in p["u"]) * (x - xt) ** 2 + LOG_2PI for x, xt in zip(xs, x_tilde)]
    real, fake, gen = _terms(kind)
    if player == "encoder":
        m = [p["a"] * x for x in xs]
        s = p["s"]
        if analytic_kl:
            kl = [0.5 * (s**2 + mi**2 - 1) - math.log(s) for mi in m]
        else:
            kl = [(-0.5 * ((z - mi) / s) ** 2 - math.log(s)) - (-0.5 * z**2) for z, mi in zip(post_z, m)]
        return _mean([k + n for k, n in zip(kl, nll)])
    x_prior = [decode(z) for z in prior_z]
    if player == "decoder":
        return (gamma * _mean(nll) + _mean([gen(logit(v)) for v in x_prior])
                + _mean([gen(logit(v)) for v in x_tilde]))
    loss = (_mean([real(logit(v)) for v in xs]) + _mean([fake(logit(v)) for v in x_prior])
            + _mean([fake(logit(v)) for v in x_tilde]))
    if kind == "wasserstein-gp":  # a linear critic's input gradient is w . u everywhere
        slope = p["u"][0] * p["w"][0] + p["u"][1] * p["w"][1]
        loss += gp_weight * (abs(slope) - 1) ** 2
    return loss


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("player", ["encoder", "decoder", "discriminator"])
def test_each_player_loss_equals_the_hand_computation(kind, player):
    toy = Toy()
    objective = VAEGANLoss(kind, gamma=0.7)
    got = objective.player_loss(player, toy.model, toy.guide, X)
    assert got.dtype == torch.float64 and got.shape == ()
    expected = _hand(toy, player, kind, gamma=0.7, analytic_kl=True)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_monte_carlo_kl_and_an_explicit_discriminator():
    toy = Toy()
    got = VAEGANLoss(analytic_kl=False).encoder_loss(toy.model, toy.guide, X)
    assert got.item() == pytest.approx(_hand(toy, "encoder", "non-saturating", 1.0, False), rel=1e-12)
    other = Toy(w=(-1.0, 2.0), b=0.5)  # the discriminator passed explicitly wins over model's owner
    toy.guide_z.clear(), toy.model_z.clear()
    got = VAEGANLoss().discriminator_loss(toy.model, toy.guide, X, discriminator=other.discriminator)
    toy.w, toy.b = other.w, other.b
    assert got.item() == pytest.approx(_hand(toy, "discriminator", "non-saturating", 1.0, True),
                                       rel=1e-12)


def test_call_returns_all_three_losses():
    losses = VAEGANLoss("hinge", gamma=2.0)(Toy().model, Toy().guide, X, discriminator=Toy().discriminator)
    assert sorted(losses) == ["decoder", "discriminator", "encoder"]
    assert VAEGANLoss.player_names == ("encoder", "decoder", "discriminator")


@pytest.mark.parametrize("kind", ["non-saturating", "minimax", "hinge"])
def test_discriminator_loss_is_the_adversarial_loss_plus_the_reconstruction_term(kind):
    # The GAN terms are AdversarialLoss's: on (x, x_p) the two agree; VAEGAN's adds f(D(x~)).
    toy = Toy()
    got = VAEGANLoss(kind).discriminator_loss(toy.model, toy.guide, X).item()
    prior_z, post_z = toy.prior_and_posterior_z()
    p = toy.floats()
    x_prior = torch.tensor(prior_z, dtype=torch.float64)[:, None] * p["theta"] + p["c"]
    x_tilde = torch.tensor(post_z, dtype=torch.float64)[:, None] * p["theta"] + p["c"]

    def fixed_generator(x=None, num_samples=None):
        with pyro.plate("data", num_samples):
            return pyro.deterministic("x", x_prior, event_dim=1)

    adversarial = AdversarialLoss(kind).discriminator_loss(fixed_generator, toy.discriminator, X).item()
    with torch.no_grad():
        f_tilde = (toy.features(x_tilde, False) @ toy.w + toy.b)
    extra = (-torch.nn.functional.logsigmoid(-f_tilde) if kind != "hinge"
             else torch.relu(1 + f_tilde)).mean().item()
    assert got == pytest.approx(adversarial + extra, rel=1e-12)


# ---------------------------------------------------------------- the VAE inside the VAE-GAN

def _vaegan(**kwargs):
    return VAEGAN(**{"x_shape": (2,), "z_dim": 2, "hidden": (8,), **kwargs}).double()


def _seeded(fn, *args, seed=3, **kwargs):
    pyro.set_rng_seed(seed)
    with local_params():
        return fn(*args, **kwargs)


def test_encoder_loss_is_pyros_elbo_in_feature_space_divided_by_the_batch_size():
    m = _vaegan()
    x = torch.randn(5, 2, dtype=torch.float64)
    mc = _seeded(VAEGANLoss(analytic_kl=False).encoder_loss, m.model, m.guide, x)
    elbo = _seeded(Trace_ELBO().differentiable_loss, m.model, m.guide, x)
    assert mc.item() == pytest.approx(elbo.item() / 5, rel=1e-12)
    analytic = _seeded(VAEGANLoss().encoder_loss, m.model, m.guide, x)
    mean_field = _seeded(TraceMeanField_ELBO().differentiable_loss, m.model, m.guide, x)
    assert analytic.item() == pytest.approx(mean_field.item() / 5, rel=1e-12)


def test_identity_features_reduce_the_encoder_loss_to_a_unit_variance_gaussian_vae():
    # One ReLU layer with weight I and bias 10: Dis_l(x) = x + 10 on the data and the decodings,
    # so N(Dis_l(x); Dis_l(x~), I) = N(x; x~, I): a plain Gaussian VAE.
    m = _vaegan(discriminator_hidden=(2,))
    with torch.no_grad():
        m.discriminator_net.net[0].weight.copy_(torch.eye(2))
        m.discriminator_net.net[0].bias.fill_(10.0)
    x = torch.randn(6, 2, dtype=torch.float64)
    with local_params():
        assert bool((m.reconstruct(x).abs() < 5).all())  # inside the ReLU's linear range

    def gaussian_vae(x):
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(x.new_zeros(2), 1.0).to_event(1))
            pyro.sample("obs", dist.Normal(m._generate(z), 1.0).to_event(1), obs=x)

    got = _seeded(VAEGANLoss(analytic_kl=False).encoder_loss, m.model, m.guide, x)
    expected = _seeded(Trace_ELBO().differentiable_loss, gaussian_vae, m.guide, x)
    assert got.item() == pytest.approx(expected.item() / 6, rel=1e-10)


def test_large_gamma_makes_the_decoder_loss_the_feature_reconstruction():
    m = _vaegan()
    x = torch.randn(5, 2, dtype=torch.float64)
    gamma = 1e8
    decoder = _seeded(VAEGANLoss(gamma=gamma).decoder_loss, m.model, m.guide, x) / gamma
    encoder = _seeded(VAEGANLoss().encoder_loss, m.model, m.guide, x)  # the same draw of z
    loc, scale = m.encode(x)
    kl = (0.5 * (scale**2 + loc**2 - 1) - scale.log()).sum(-1).mean()
    assert decoder.item() == pytest.approx((encoder - kl).item(), rel=1e-6)


# ---------------------------------------------------------------- gradient routing

def _grads(loss, params):
    return torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)


def test_reconstruction_terms_never_reach_the_discriminator_weights():
    m = _vaegan()
    x = torch.randn(4, 2, dtype=torch.float64)
    disc = list(m.discriminator_net.parameters())
    with local_params():
        encoder = VAEGANLoss().encoder_loss(m.model, m.guide, x)
        elbo = Trace_ELBO().differentiable_loss(m.model, m.guide, x)
    assert all(g is None for g in _grads(encoder, disc))
    assert all(g is None for g in _grads(elbo, disc))
    # ...while the encoder's loss does reach the encoder (and, through x~, the decoder).
    assert all(g is not None for g in _grads(encoder, list(m.encoder.parameters())))
    assert all(g is not None for g in _grads(encoder, list(m.decoder.parameters())))
    # The decoder's gamma * L_llike adds nothing to the discriminator's gradient: on the same
    # draws, gamma = 1000 and gamma = 0 give the same one (the GAN term's, through D's layers).
    heavy = _seeded(VAEGANLoss(gamma=1000.0).decoder_loss, m.model, m.guide, x)
    gan_only = _seeded(VAEGANLoss(gamma=0.0).decoder_loss, m.model, m.guide, x)
    assert heavy.item() != pytest.approx(gan_only.item())
    for a, b in zip(_grads(heavy, disc), _grads(gan_only, disc)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_discriminator_loss_reaches_only_the_discriminator():
    m = _vaegan()
    x = torch.randn(4, 2, dtype=torch.float64)
    with local_params():
        loss = VAEGANLoss("wasserstein-gp").discriminator_loss(m.model, m.guide, x)
    generators = list(m.encoder.parameters()) + list(m.decoder.parameters())
    assert all(g is None for g in _grads(loss, generators))
    assert all(g is not None for g in _grads(loss, list(m.discriminator_net.parameters())))


class _Recording(VAEGANLoss):
    """VAEGANLoss that snapshots every parameter when a player's turn begins."""

    def __init__(self, module):
        super().__init__(gamma=0.5)
        self.module, self.turns = module, []

    def player_loss(self, name, model, guide, x, **kwargs):
        self.turns.append((name, _snapshot(self.module)))
        return super().player_loss(name, model, guide, x, **kwargs)


def _snapshot(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def test_under_the_engine_each_players_step_moves_only_its_parameters(tmp_path):
    m = VAEGAN(x_shape=(2,), z_dim=2, hidden=(8,))
    objective = _Recording(m)
    order = ("discriminator", "encoder", "decoder")
    players = [Player(name, owns=VAEGAN.owns(name), optimizer=adam(1e-2)) for name in order]
    cfg = TrainConfig(epochs=1, batch_size=8, max_steps=2, device="cpu", progress=False)
    engine = Engine(m.model, m.guide, objective, players, cfg)
    engine.fit(torch.randn(32, 2))
    assert [name for name, _ in objective.turns] == list(order) * 2
    snapshots = [s for _, s in objective.turns] + [_snapshot(m)]
    owned = {name: {n for n in snapshots[0] if VAEGAN.owns(name)(n)} for name in order}
    assert set().union(*owned.values()) == set(snapshots[0])  # the three partition the module
    assert all(owned.values()) and sum(map(len, owned.values())) == len(snapshots[0])
    for (name, before), after in zip(objective.turns, snapshots[1:]):
        moved = {n for n in before if not torch.equal(before[n], after[n])}
        assert moved == owned[name], name
    assert set(engine.parameters("discriminator")) == owned["discriminator"]


def test_training_the_feature_space_elbo_alone_leaves_the_discriminator_unchanged():
    m = VAEGAN(x_shape=(2,), z_dim=2, hidden=(8,))
    before = _snapshot(m)
    cfg = TrainConfig(epochs=1, batch_size=8, max_steps=3, lr=1e-2, device="cpu", progress=False)
    Engine(m.model, m.guide, Trace_ELBO(), config=cfg).fit(torch.randn(24, 2))  # owns="all"
    after = _snapshot(m)
    for name in before:
        assert torch.equal(before[name], after[name]) == name.startswith("discriminator_net."), name


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("kwargs, error, message", [
    ({"kind": "wgan"}, ValueError, "kind: expected one of"),
    ({"gamma": -1.0}, ValueError, "gamma: expected a finite float >= 0"),
    ({"gamma": float("nan")}, ValueError, "gamma: expected a finite float >= 0"),
    ({"gamma": True}, TypeError, "gamma: expected a float"),
    ({"gp_weight": "10"}, TypeError, "gp_weight: expected a float"),
    ({"analytic_kl": 1}, TypeError, "analytic_kl: expected a bool"),
])
def test_bad_constructor_arguments_name_themselves(kwargs, error, message):
    with pytest.raises(error, match=message):
        VAEGANLoss(**kwargs)


def test_bad_call_arguments_name_themselves():
    toy, loss = Toy(), VAEGANLoss()
    with pytest.raises(ValueError, match="player: expected one of"):
        loss.player_loss("generator", toy.model, toy.guide, X)
    with pytest.raises(TypeError, match="x: expected a torch.Tensor"):
        loss.encoder_loss(toy.model, toy.guide, X.tolist())
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, \*event_shape\)"):
        loss.encoder_loss(toy.model, toy.guide, X.flatten())
    with pytest.raises(TypeError, match="model: expected a callable"):
        loss.encoder_loss(None, toy.guide, X)
    with pytest.raises(TypeError, match="discriminator: model is not the bound method"):
        loss.decoder_loss(lambda x=None, num_samples=None: None, toy.guide, X)
    with pytest.raises(TypeError, match="discriminator: expected a callable"):
        loss.discriminator_loss(toy.model, toy.guide, X, discriminator=3)

    def no_likelihood(x=None, num_samples=None):
        n = num_samples if x is None else len(x)
        with pyro.plate("data", n):
            z = pyro.sample("z", dist.Normal(torch.zeros(n, 1, dtype=torch.float64), 1.0).to_event(1))
            return pyro.deterministic("x", z, event_dim=1)

    with pytest.raises(ValueError, match="model: expected a sample site 'x_features'"):
        loss.encoder_loss(no_likelihood, toy.guide, X)
