"""NVIL (Mnih and Gregor 2014): neural variational inference and learning, as published.

The guide of a model with discrete latents is trained by the score-function estimator. For each
latent site s of the guide and each data point, NVIL multiplies grad log q(s | parents) by a
**local learning signal**: the terms of log p(x, z) - log q(z | x) that s can change, i.e. those
of the sites that depend on s or on a guide site sampled from it (for a layered sigmoid belief
net with h_0 = x, layer i's signal is log p(h_{i-1}, ..., h_n) - log q(h_i, ..., h_n | h_{i-1})).
Dropping the other terms leaves the gradient unbiased and lowers its variance. Each signal is
then

* **centred** by a running mean c_s (decay ``decay``) and an input-dependent baseline C_s(x)
  (a network the guide hands over as ``infer={"baseline": {"nn_baseline": net,
  "nn_baseline_input": x}}``, Pyro's convention), trained to minimise (l_s - c_s - C_s(x))^2;
* **normalised** by max(1, sqrt(v_s)), v_s a running estimate of the centred signal's variance.

Centring keeps the estimator unbiased; the normalisation only rescales each site's step, as an
adaptive learning rate. The model's parameters get the plain gradient of the ELBO.

Which terms a site can change is read from the programs themselves with Pyro's
``pyro.infer.inspect.get_dependencies`` (on the model and on the guide), once, at the first call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyro.poutine as poutine
import torch
from pyro.infer.inspect import get_dependencies
from pyro.poutine.util import site_is_subsample

from ..._validation import check_instance, check_label

__all__ = ["NVIL", "local_signal_sites"]


def _descendants(parents: dict[str, set[str]], site: str) -> set[str]:
    out, frontier = {site}, [site]
    while frontier:
        current = frontier.pop()
        for child, ups in parents.items():
            if current in ups and child not in out:
                out.add(child)
                frontier.append(child)
    return out


def local_signal_sites(model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                       **kwargs: Any) -> dict[str, tuple[set[str], set[str]]]:
    """For each latent site of the guide: (model sites, guide sites) whose terms its signal keeps.

    Examples:
        >>> from ppdgm.models.sbn import SigmoidBeliefNet
        >>> sbn = SigmoidBeliefNet(x_shape=(4,), layers=(2, 3))
        >>> sites = local_signal_sites(sbn.model, sbn.guide, torch.zeros(2, 4))
        >>> sorted(sites["z1"][0]), sorted(sites["z1"][1])  # the top layer: p(z1) p(z2 | z1), q(z1 | z2)
        (['z1', 'z2'], ['z1'])
    """
    model_parents = _direct_parents(model, args, kwargs)
    guide_parents = _direct_parents(guide, args, kwargs)
    out = {}
    for site in guide_parents:
        downstream = _descendants(guide_parents, site)
        model_sites = {m for m, ups in model_parents.items() if (ups | {m}) & downstream}
        out[site] = (model_sites, downstream)
    return out


def _direct_parents(program: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, set[str]]:
    with torch.random.fork_rng():
        deps = get_dependencies(program, args, kwargs)["prior_dependencies"]
    return {site: set(ups) - {site} for site, ups in deps.items()}


class NVIL:
    """The NVIL loss of a batch: one player, a surrogate whose value is the negative ELBO and
    whose gradient is NVIL's (see the module docstring).

    Args:
        decay: the running mean and variance's decay (0.8 in the paper); 1 freezes them.
        normalize: divide each centred signal by max(1, its running standard deviation).
        data_plate: the plate of the data points; every latent site must sit in it.

    ``state_dict()`` holds the running statistics, so the engine checkpoints and resumes them.

    Examples:
        >>> from ppdgm.models.sbn import SigmoidBeliefNet
        >>> sbn = SigmoidBeliefNet(x_shape=(6,), layers=(3,), baseline_hidden=4)
        >>> NVIL()(sbn.model, sbn.guide, sbn.sample(5)).requires_grad
        True
    """

    def __init__(self, decay: float = 0.8, normalize: bool = True, data_plate: str = "data") -> None:
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay <= 1:
            raise ValueError(f"decay: expected a number in [0, 1], got {decay!r}")
        check_instance("normalize", normalize, bool, "True or False")
        self.decay = float(decay)
        self.normalize = normalize
        self.data_plate = check_label("data_plate", data_plate)
        # site -> (running mean, running variance), float64 tensors of shape ()
        self.stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._sites: dict[str, tuple[set[str], set[str]]] | None = None

    def __repr__(self) -> str:
        return f"NVIL(decay={self.decay}, normalize={self.normalize})"

    def state_dict(self) -> dict[str, Any]:
        """The running mean and variance of each site's signal, as plain numbers."""
        return {"stats": {k: [float(m), float(v)] for k, (m, v) in self.stats.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the engine does so on resume)."""
        self.stats = {k: (torch.tensor(float(v[0]), dtype=torch.float64),
                          torch.tensor(float(v[1]), dtype=torch.float64))
                      for k, v in state["stats"].items()}

    def step_state(self) -> dict[str, torch.Tensor]:
        """The running statistics as tensors, which a compiled step takes in and gives back
        (see :class:`ppdgm.inference.compiled.StepGraphs`)."""
        return {f"{site}/{part}": value for site, pair in self.stats.items()
                for part, value in zip(("mean", "var"), pair)}

    def load_step_state(self, state: dict[str, torch.Tensor]) -> None:
        """Take the statistics :meth:`step_state` names."""
        sites = {name.rsplit("/", 1)[0] for name in state}
        self.stats = {site: (state[f"{site}/mean"], state[f"{site}/var"]) for site in sites}

    def __call__(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                 **kwargs: Any) -> torch.Tensor:
        if self._sites is None:
            self._sites = local_signal_sites(model, guide, *args, **kwargs)
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        log_p = self._per_point(model_trace)
        log_q = self._per_point(guide_trace)
        elbo = sum(log_p.values()) - sum(log_q.values())  # per data point
        # The ELBO's own gradient (the model's parameters, and the guide's zero-mean direct term),
        # then each latent site's score function times its centred, normalised local signal.
        surrogate = elbo
        baseline_loss = elbo.new_zeros(())
        for site, (model_sites, guide_sites) in self._sites.items():
            signal = (sum(log_p[m] for m in model_sites if m in log_p)
                      - sum(log_q[g] for g in guide_sites if g in log_q)).detach()
            net = self._net_baseline(guide_trace.nodes[site], signal)
            residual = signal - self._update_mean(site, signal - net.detach()).to(signal.dtype) - net
            baseline_loss = baseline_loss + residual.pow(2).sum()  # trains C_s(x) only
            scale = self.stats[site][1].sqrt().clamp(min=1.0) if self.normalize else 1.0
            surrogate = surrogate + log_q[site] * (residual.detach() / scale).to(residual.dtype)
        loss = baseline_loss - surrogate.sum()
        return -elbo.sum().detach() + (loss - loss.detach())

    def _per_point(self, trace: poutine.Trace) -> dict[str, torch.Tensor]:
        """Each sample site's log-density summed to one value per data point, shape ``(n,)``."""
        trace.compute_log_prob()
        out = {}
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            dims = [f.dim for f in site["cond_indep_stack"] if f.name == self.data_plate]
            lp = site["log_prob"]
            if not dims or lp.dim() < -dims[0]:
                raise ValueError(f"model: site {name!r} is outside the {self.data_plate!r} plate; "
                                 "NVIL's signals are per data point")
            out[name] = lp.movedim(dims[0], 0).reshape(lp.shape[dims[0]], -1).sum(1)
        return out

    @staticmethod
    def _net_baseline(site: dict, signal: torch.Tensor) -> torch.Tensor:
        spec = site["infer"].get("baseline", {})
        net = spec.get("nn_baseline")
        if net is None:
            return torch.zeros_like(signal)
        value = net(spec["nn_baseline_input"])
        return value.reshape(signal.shape)

    def _update_mean(self, site: str, centred_by_net: torch.Tensor) -> torch.Tensor:
        # c_s and v_s, moved towards this batch's mean and variance of l_s - C_s(x), kept as
        # float64 tensors: no value is read into Python, so a compiled step can carry them.
        fresh = centred_by_net.new_zeros((), dtype=torch.float64)
        mean, var = self.stats.get(site, (fresh, fresh + 1.0))
        mean, var = mean.to(fresh.device), var.to(fresh.device)
        a = self.decay
        values = centred_by_net.detach().to(torch.float64)
        batch_var = values.var() if values.numel() > 1 else fresh
        mean = a * mean + (1 - a) * values.mean()
        self.stats[site] = (mean, a * var + (1 - a) * batch_var)
        return mean
