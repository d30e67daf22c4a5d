"""Plain Pyro programs, each exercising one thing ``pyro.infer.SVI`` accepts, for the engine to run.

Shared by ``test_pyro_compat.py`` and by the fresh process it starts to resume each run. Every
program keeps its parameters in Pyro's param store, as user code written for SVI does.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import (
    JitTrace_ELBO,
    RenyiELBO,
    ReweightedWakeSleep,
    Trace_ELBO,
    TraceEnum_ELBO,
    TraceGraph_ELBO,
    TraceMeanField_ELBO,
    config_enumerate,
)
from pyro.infer.autoguide import AutoDiagonalNormal
from torch.distributions import constraints
from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence
from torch.utils.data import DataLoader

Pair = namedtuple("Pair", "x y")


@dataclass
class Program:
    """A model/guide pair, its objective, its data and how SVI iterates that data."""

    model: Callable[..., Any]
    guide: Callable[..., Any]
    objective: Any
    data: Callable[[], Any]  # a fresh tensor, or a fresh DataLoader, per call
    batch_size: int = 8
    epochs: int = 3
    callbacks: list = field(default_factory=list)
    step_callbacks: list = field(default_factory=list)


def _normal_guide(x: Any, *_: Any) -> None:
    loc = pyro.param("q_loc", torch.tensor(0.0))
    scale = pyro.param("q_scale", torch.tensor(1.0), constraint=constraints.positive)
    pyro.sample("mu", dist.Normal(loc, scale))


def _normal_model(x: torch.Tensor) -> None:
    mu = pyro.sample("mu", dist.Normal(pyro.param("prior_loc", torch.tensor(0.5)), 3.0))
    with pyro.plate("data", len(x)):
        pyro.sample("x", dist.Normal(mu, 1.0), obs=x)


def _points(n: int = 24) -> torch.Tensor:
    return 1.5 + torch.randn(n, generator=torch.Generator().manual_seed(11))


# ------------------------------------------------------------------------ batches of other kinds


def _pair_model(x: torch.Tensor, y: torch.Tensor) -> None:
    mu = pyro.sample("mu", dist.Normal(0.0, 3.0))
    with pyro.plate("data", len(x)):
        pyro.sample("y", dist.Normal(mu * x, 0.5), obs=y)


def _pair_loader(shuffle: bool = False) -> DataLoader:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(24, generator=g)
    pairs = list(zip(x, 2.0 * x + 0.3 * torch.randn(24, generator=g)))
    return DataLoader(pairs, batch_size=8, shuffle=shuffle,
                      collate_fn=lambda rows: Pair(torch.stack([r[0] for r in rows]),
                                                   torch.stack([r[1] for r in rows])))


def _packed_model(seqs: torch.nn.utils.rnn.PackedSequence) -> None:
    mu = pyro.sample("mu", dist.Normal(0.0, 3.0))
    decay = pyro.param("decay", torch.tensor(0.9), constraint=constraints.unit_interval)
    # Each time step's values shrink by `decay`: the packed data are read batch_sizes at a time.
    chunks = torch.split(seqs.data, seqs.batch_sizes.tolist())
    for t, chunk in enumerate(chunks):
        with pyro.plate(f"step_{t}", len(chunk)):
            pyro.sample(f"v_{t}", dist.Normal(mu * decay**t, 1.0), obs=chunk)


def _packed_loader() -> DataLoader:
    g = torch.Generator().manual_seed(3)
    seqs = [1.0 + torch.randn(int(n), generator=g) for n in torch.randint(2, 6, (24,), generator=g)]
    return DataLoader(seqs, batch_size=8, collate_fn=lambda s: pack_sequence(s, enforce_sorted=False))


# ------------------------------------------------------------ models that check their own shapes


@config_enumerate
def _enumerated_model(x: torch.Tensor) -> None:
    weights = pyro.param("weights", torch.tensor([0.4, 0.6]), constraint=constraints.simplex)
    locs = pyro.param("locs", torch.tensor([-1.0, 1.0]))
    with pyro.plate("data", len(x)):
        z = pyro.sample("z", dist.Categorical(weights))
        assert z.shape == (2, 1), "the mixture index must be enumerated in parallel"
        pyro.sample("x", dist.Normal(locs[z], 1.0), obs=x)


def _no_guide(x: torch.Tensor) -> None:
    pass


def _particle_model(x: torch.Tensor) -> None:
    mu = pyro.sample("mu", dist.Normal(pyro.param("prior_loc", torch.tensor(0.5)), 3.0))
    assert mu.shape == (4, 1), "particles must be vectorized"
    with pyro.plate("data", len(x)):
        pyro.sample("x", dist.Normal(mu, 1.0), obs=x)


def _particle_guide(x: torch.Tensor) -> None:
    _normal_guide(x)


# ---------------------------------------------------------------- score-function state in the store


def _coin_model(x: torch.Tensor) -> None:
    p = pyro.param("bias", torch.tensor(0.6), constraint=constraints.unit_interval)
    coin = pyro.sample("coin", dist.Bernoulli(p))
    with pyro.plate("data", len(x)):
        pyro.sample("x", dist.Normal(2.0 * coin - 1.0, 1.0), obs=x)


def _coin_guide(x: torch.Tensor) -> None:
    q = pyro.param("q_coin", torch.tensor(0.5), constraint=constraints.unit_interval)
    pyro.sample("coin", dist.Bernoulli(q),
                infer={"baseline": {"use_decaying_avg_baseline": True, "baseline_beta": 0.8}})


# ------------------------------------------------------------------ a parameter created late


def _late_guide(x: torch.Tensor) -> None:
    """A guide that starts reading a shift parameter once its location has moved past 0.1."""
    loc = pyro.param("q_loc", torch.tensor(0.0))
    if loc.item() > 0.1:
        loc = loc + pyro.param("late_shift", torch.tensor(0.1))
    pyro.sample("mu", dist.Normal(loc, 0.5))


# ------------------------------------------------- the shapes of three classic Pyro examples


class _LabelVAE:
    """A semi-supervised-VAE-shaped pair: an unobserved class y, enumerated in the guide, and a
    Gaussian code z, with torch networks registered by ``pyro.module``."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.decoder = torch.nn.Linear(2 + 3, 4)
        self.encoder = torch.nn.Linear(4 + 3, 4)
        self.classifier = torch.nn.Linear(4, 3)

    def model(self, x: torch.Tensor) -> None:
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", len(x)):
            y = pyro.sample("y", dist.OneHotCategorical(torch.ones(3) / 3))
            z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
            loc = self.decoder(_joined(z, y))
            pyro.sample("x", dist.Normal(loc, 1.0).to_event(1), obs=x)

    @config_enumerate
    def guide(self, x: torch.Tensor) -> None:
        pyro.module("encoder", self.encoder)
        pyro.module("classifier", self.classifier)
        with pyro.plate("data", len(x)):
            y = pyro.sample("y", dist.OneHotCategorical(logits=self.classifier(x)))
            stats = self.encoder(_joined(x, y))
            pyro.sample("z", dist.Normal(stats[..., :2], stats[..., 2:].exp()).to_event(1))


class _SometimesEncoded:
    """A guide whose encoder is registered every step but used only on labelled batches (the
    last column of a batch marks it): on the others its weights get no gradient, and SVI's Adam
    still moves them by its momentum."""

    def __init__(self) -> None:
        torch.manual_seed(1)
        self.encoder = torch.nn.Linear(1, 2)

    def model(self, x: torch.Tensor) -> None:
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, 0.5), obs=x[:, 0])

    def guide(self, x: torch.Tensor) -> None:
        pyro.module("encoder", self.encoder)
        loc = pyro.param("z_loc", torch.tensor(0.0))
        if bool(x[0, 1] > 0):  # a labelled batch
            stats = self.encoder(x[:, :1])
            loc = loc + stats[:, 0]
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Normal(loc, 0.5))


def _labelled_in_turn() -> torch.Tensor:
    x = torch.randn(24, generator=torch.Generator().manual_seed(7))
    labelled = (torch.arange(24) // 8 % 2 == 0).float()  # batches 0 and 2 of each epoch
    return torch.stack([x, labelled], 1)


def _joined(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    batch = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])  # enumeration adds dimensions
    return torch.cat([a.expand(batch + a.shape[-1:]), b.expand(batch + b.shape[-1:])], -1)


def _label_points() -> torch.Tensor:
    return torch.randn(16, 4, generator=torch.Generator().manual_seed(2))


class _SequenceModel:
    """A deep-Markov-model-shaped pair: a guide that reads packed sequences with a GRU."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.rnn = torch.nn.GRU(1, 4)
        self.head = torch.nn.Linear(4, 2)

    def model(self, seqs: torch.nn.utils.rnn.PackedSequence) -> None:
        padded, lengths = pad_packed_sequence(seqs, batch_first=True)
        mask = torch.arange(padded.shape[1]) < lengths[:, None]
        with pyro.plate("sequences", len(lengths)):
            level = pyro.sample("level", dist.Normal(0.0, 2.0))
            with pyro.plate("steps", padded.shape[1], dim=-2):
                pyro.sample("v", dist.Normal(level, 1.0).mask(mask.T), obs=padded.T)

    def guide(self, seqs: torch.nn.utils.rnn.PackedSequence) -> None:
        pyro.module("rnn", self.rnn)
        pyro.module("head", self.head)
        inputs = torch.nn.utils.rnn.PackedSequence(seqs.data[:, None], seqs.batch_sizes,
                                                   seqs.sorted_indices, seqs.unsorted_indices)
        _, last = self.rnn(inputs)
        stats = self.head(last[0])
        with pyro.plate("sequences", len(stats)):
            pyro.sample("level", dist.Normal(stats[:, 0], stats[:, 1].exp()))


def _gamma_model(x: torch.Tensor) -> None:
    """A sparse-gamma-DEF-shaped model: gamma weights and gamma codes, Poisson counts.

    ``x`` is a batch of one: the whole (24, 3) count table, subsampled by the plate."""
    weights = pyro.sample("w", dist.Gamma(torch.ones(2, 3), 1.0).to_event(2))
    with pyro.plate("data", 24, subsample_size=8) as index:
        codes = pyro.sample("codes", dist.Gamma(torch.ones(2), 1.0).to_event(1))
        pyro.sample("x", dist.Poisson(codes @ weights).to_event(1), obs=x[0, index])


def _gamma_guide(x: torch.Tensor) -> None:
    shape = pyro.param("w_shape", torch.ones(2, 3), constraint=constraints.positive)
    rate = pyro.param("w_rate", torch.ones(2, 3), constraint=constraints.positive)
    pyro.sample("w", dist.Gamma(shape, rate).to_event(2))
    with pyro.plate("data", 24, subsample_size=8):
        # Per-data-point parameters, read for the subsample the plate draws.
        code_shape = pyro.param("code_shape", torch.ones(24, 2), constraint=constraints.positive,
                                event_dim=1)
        code_rate = pyro.param("code_rate", torch.ones(24, 2), constraint=constraints.positive,
                               event_dim=1)
        pyro.sample("codes", dist.Gamma(code_shape, code_rate).to_event(1))


def _counts() -> torch.Tensor:
    return torch.poisson(2.0 * torch.ones(24, 3), generator=torch.Generator().manual_seed(4))


def _clip(engine: Any, _: int) -> None:
    with torch.no_grad():
        pyro.param("q_loc").unconstrained().clamp_(max=1.0)


def _perturb(engine: Any, _: int) -> None:
    with torch.no_grad():  # draws from the global RNG, which the checkpoint must have seen
        pyro.param("prior_loc").unconstrained().add_(0.01 * torch.randn(()))


def programs() -> dict[str, Callable[[], Program]]:
    """Fresh programs by name (a fresh one per call: guides and objectives may keep state)."""
    return {
        "namedtuple batches": lambda: Program(_pair_model, _normal_guide, Trace_ELBO(), _pair_loader),
        "PackedSequence batches": lambda: Program(_packed_model, _normal_guide, Trace_ELBO(),
                                                  _packed_loader),
        "enumerated, shape-asserting": lambda: Program(
            _enumerated_model, _no_guide, TraceEnum_ELBO(max_plate_nesting=1), _points),
        "vectorized particles": lambda: Program(
            _particle_model, _particle_guide,
            Trace_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1), _points),
        "ReweightedWakeSleep": lambda: Program(
            _normal_model, _normal_guide, ReweightedWakeSleep(num_particles=3, max_plate_nesting=1),
            _points),
        "RenyiELBO": lambda: Program(_normal_model, _normal_guide, RenyiELBO(alpha=0.5, num_particles=2),
                                     _points),
        "TraceGraph decaying baseline": lambda: Program(_coin_model, _coin_guide, TraceGraph_ELBO(),
                                                        _points),
        "autoguide, lazy initialisation": lambda: Program(
            _normal_model, AutoDiagonalNormal(_normal_model), Trace_ELBO(), _points),
        "parameter created late": lambda: Program(_normal_model, _late_guide, Trace_ELBO(), _points),
        "parameter-changing callbacks": lambda: Program(
            _normal_model, _normal_guide, Trace_ELBO(), _points, callbacks=[_clip, _perturb],
            step_callbacks=[_clip]),
        "semi-supervised-VAE shape, enumerated class": lambda: _enumerated_vae(),
        "deep-Markov-model shape, GRU on packed sequences": lambda: _sequences(),
        "sparse-gamma-DEF shape, subsampled local parameters": lambda: Program(
            _gamma_model, _gamma_guide, TraceMeanField_ELBO(), lambda: _counts()[None], batch_size=1,
            epochs=6),
        "JitTrace_ELBO": lambda: Program(_normal_model, _normal_guide,
                                         JitTrace_ELBO(ignore_jit_warnings=True), _points),
        "encoder unused on some batches": lambda: _sometimes_encoded(),
        "unseeded shuffling DataLoader": lambda: Program(
            _pair_model, _normal_guide, Trace_ELBO(), lambda: _pair_loader(shuffle=True)),
    }


def _enumerated_vae() -> Program:
    pair = _LabelVAE()
    return Program(pair.model, pair.guide, TraceEnum_ELBO(max_plate_nesting=1), _label_points)


def _sometimes_encoded() -> Program:
    pair = _SometimesEncoded()
    return Program(pair.model, pair.guide, Trace_ELBO(), _labelled_in_turn)


def _sequences() -> Program:
    pair = _SequenceModel()
    return Program(pair.model, pair.guide, Trace_ELBO(), _packed_loader)


def batches(data: Any, batch_size: int) -> list[tuple]:
    """The batches SVI is stepped on: the loader's, or the tensor cut in order."""
    if isinstance(data, torch.Tensor):
        return [(chunk,) for chunk in data.split(batch_size)]
    return [tuple(b) if isinstance(b, Pair) else (b,) for b in data]
