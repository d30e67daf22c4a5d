"""A VAE learns two binary patterns with Pyro's own SVI under module-local parameters."""

import copy
import io

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO

from ppdgm._pyro import local_params
from ppdgm.models import VAE

PATTERNS = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])


def test_svi_learns_two_patterns():
    data = PATTERNS.repeat(4, 1)  # 8 points, two patterns
    with local_params():
        vae = VAE(x_shape=(4,), z_dim=2, hidden=(32,))
        elbo = Trace_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1)
        svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 0.02}), elbo)
        losses = [svi.step(data) / len(data) for _ in range(300)]
        final = sum(Trace_ELBO().loss(vae.model, vae.guide, data) for _ in range(20)) / 20 / 8
    start = sum(losses[:5]) / 5
    # Untrained: about 4 log 2 = 2.8 nats of coin flips per point. Two equally likely patterns
    # cost log 2 = 0.69 nats under the best model, plus the ELBO's KL gap.
    assert start > 2.5, start
    assert final < 1.5, (start, final)
    assert (vae.reconstruct(PATTERNS) - PATTERNS).abs().max() < 0.05
    assert len(pyro.get_param_store().keys()) == 0  # nothing went to the global store


def test_svi_parameters_survive_copy_pickle_and_state_dict():
    vae = VAE(x_shape=(4,), z_dim=2, hidden=(8,), likelihood="gaussian")
    buffer = io.BytesIO()
    torch.save(vae, buffer)
    buffer.seek(0)
    for clone in (copy.deepcopy(vae), torch.load(buffer, weights_only=False)):
        before = [p.detach().clone() for p in clone.parameters()]
        with local_params():  # in Pyro's global mode the second clone would train the first's
            svi = SVI(clone.model, clone.guide, pyro.optim.Adam({"lr": 0.1}), Trace_ELBO())
            svi.step(PATTERNS)
        assert all(not torch.equal(a, b) for a, b in zip(before, clone.parameters(), strict=True))
    state = vae.state_dict()
    assert all(type(v) is torch.Tensor for v in state.values())
    fresh = VAE(x_shape=(4,), z_dim=2, hidden=(8,), likelihood="gaussian")
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.reconstruct(PATTERNS), vae.reconstruct(PATTERNS))
    assert repr(vae.decoder.net[0].bias).startswith("Parameter containing:\ntensor(")
