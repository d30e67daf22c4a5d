"""Contrastive divergence (Hinton 2002) and persistent CD (Tieleman 2008) for the RBM.

The negative log-likelihood of a data point is F(v) + log Z, and its gradient is
dF(v)/dtheta - E_{v' ~ p}[dF(v')/dtheta]: a positive phase on the data and a negative phase
under the model. CD-k replaces the model expectation by the free energy of samples v' drawn by
k block Gibbs sweeps started at the data (PCD-k: continued from persistent chains, which carry
over from one batch to the next). The objective returns a *surrogate* whose gradient is that
estimate:

    loss = sum_i F(x_i) - n * mean_j F(v'_j),   v' sampled without gradient,

a sum over the batch of n points, like Pyro's ELBO losses, so that the engine's per-point
figures (loss / batch size) are per-point. Its value is **not** the negative log-likelihood
(log Z is missing and the negative phase shifts it); measure that with
:meth:`RBM.log_prob <ppdgm.models.rbm.RBM.log_prob>` or :func:`ppdgm.inference.ais.rbm_log_likelihood`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..._validation import check_instance, check_positive_int, check_tensor
from ...models.rbm import RBM, free_energy, gibbs_step

__all__ = ["ContrastiveDivergence"]


class ContrastiveDivergence:
    """CD-k or PCD-k as a callable objective ``loss(model, guide, x)`` for the engine or
    ``pyro.infer.SVI`` (the parameters are read as Pyro param sites, which is what SVI trains).

    ``model`` must be an RBM's bound ``model`` method (the RBM is ``model.__self__``); the guide
    is not used. Negative samples are drawn with the global torch RNG (which the engine seeds
    and checkpoints) on the data's device, under ``torch.no_grad``.

    Args:
        k: Gibbs sweeps per update.
        persistent: keep the chains between calls (PCD) instead of restarting them at the data.
        num_chains: PCD only: how many persistent chains (default: the first batch's size). The
            chains start at the first batch's data points, repeated to fill ``num_chains``.
        k_final: grow the sweeps from ``k`` to ``k_final`` as training goes (:meth:`anneal`), as
            Salakhutdinov and Murray trained their CD-25 RBM; ``None`` keeps ``k``.

    The persistent chains are the objective's state: :meth:`state_dict` and
    :meth:`load_state_dict` save and restore them, so a resumed PCD run continues its chains.

    Examples:
        >>> from ppdgm.models.rbm import RBM
        >>> rbm = RBM(visible=6, hidden=3)
        >>> x = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]]).repeat(4, 1)
        >>> loss = ContrastiveDivergence(k=1)(rbm.model, rbm.guide, x)
        >>> loss.shape, loss.requires_grad
        (torch.Size([]), True)
    """

    def __init__(self, k: int = 1, persistent: bool = False, num_chains: int | None = None,
                 k_final: int | None = None) -> None:
        self.k = check_positive_int("k", k)
        self.k_start = self.k
        if k_final is not None and check_positive_int("k_final", k_final) < self.k:
            raise ValueError(f"k_final: expected at least k ({self.k}), got {k_final}")
        self.k_final = k_final
        if not isinstance(persistent, bool):
            raise TypeError(f"persistent: expected a bool, got {type(persistent).__name__}")
        self.persistent = persistent
        if num_chains is not None:
            check_positive_int("num_chains", num_chains)
            if not persistent:
                raise ValueError(
                    "num_chains: only persistent CD keeps chains (CD starts one chain per data "
                    f"point); got num_chains={num_chains} with persistent=False"
                )
        self.num_chains = num_chains
        self.chains: torch.Tensor | None = None

    def __call__(self, model: Callable[..., Any], guide: Callable[..., Any], x: torch.Tensor,
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        rbm = check_instance("model", getattr(model, "__self__", None), RBM, reason=(
            "contrastive divergence needs an RBM's bound model method (rbm.model)"))
        if args or kwargs:
            raise TypeError(
                "args: contrastive divergence takes one data batch, loss(model, guide, x); got "
                f"{len(args)} more positional argument(s) and keywords {sorted(kwargs)}"
            )
        # The model's own check: values (NaN, {0, 1}) only while Pyro's validation is on, which
        # the engine keeps to the first epoch.
        rbm._check_x(x)
        W, b, c = rbm.energy_parameters()  # as param sites: pyro.infer.SVI optimizes those
        negative = self.negative_samples(rbm, x)
        return x.shape[0] * (free_energy(x, W, b, c).mean() - free_energy(negative, W, b, c).mean())

    def anneal(self, fraction: float) -> int:
        """Set the sweeps for the ``fraction`` of training done: ``k`` at 0, ``k_final`` at 1, linear
        in between (rounded); returns them. The fit recipe calls it after every epoch.

        Examples:
            >>> cd = ContrastiveDivergence(k=1, k_final=25)
            >>> cd.anneal(0.5), cd.anneal(1.0)
            (13, 25)
        """
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction: expected a number in [0, 1], got {fraction!r}")
        if self.k_final is not None:
            self.k = self.k_start + round((self.k_final - self.k_start) * fraction)
        return self.k

    @torch.no_grad()
    def negative_samples(self, rbm: RBM, x: torch.Tensor) -> torch.Tensor:
        """The negative phase's visible samples for batch ``x``: k sweeps from ``x`` (CD) or
        from the persistent chains (PCD, which are advanced in place).

        Examples:
            >>> from ppdgm.models.rbm import RBM
            >>> rbm = RBM(visible=3, hidden=2)
            >>> pcd = ContrastiveDivergence(k=2, persistent=True, num_chains=5)
            >>> pcd.negative_samples(rbm, torch.ones(2, 3)).shape
            torch.Size([5, 3])
        """
        W, b, c = rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach()
        if self.persistent:
            v = self._persistent_start(rbm, x)
        else:
            v = x.detach()
        for _ in range(self.k):
            v, _ = gibbs_step(v, W, b, c)
        if self.persistent:
            self.chains = v
        return v

    def _persistent_start(self, rbm: RBM, x: torch.Tensor) -> torch.Tensor:
        if self.chains is None:
            n = self.num_chains if self.num_chains is not None else x.shape[0]
            repeats = -(-n // x.shape[0])
            return x.detach().repeat(repeats, 1)[:n].clone()
        if self.chains.shape[-1] != rbm.visible:
            raise ValueError(
                f"chains: the persistent chains have {self.chains.shape[-1]} visible units but the "
                f"RBM has {rbm.visible}"
            )
        # Chains restored from a checkpoint follow the data to the run's device.
        return self.chains.to(device=x.device, dtype=x.dtype)

    def state_dict(self) -> dict[str, Any]:
        """The objective's state: its settings and the persistent chains (``None`` before the
        first PCD call, and always for plain CD).

        Examples:
            >>> sorted(ContrastiveDivergence(k=3).state_dict())
            ['chains', 'k', 'k_final', 'k_start', 'num_chains', 'persistent']
        """
        chains = None if self.chains is None else self.chains.detach().clone()
        return {"k": self.k, "k_start": self.k_start, "k_final": self.k_final,
                "persistent": self.persistent, "num_chains": self.num_chains, "chains": chains}

    def step_state(self) -> dict[str, torch.Tensor]:
        """The persistent chains (nothing for CD, or before PCD's first call), which a compiled
        step takes in and gives back (see :class:`ppdgm.inference.compiled.StepGraphs`)."""
        return {} if self.chains is None else {"chains": self.chains}

    def load_step_state(self, state: dict[str, torch.Tensor]) -> None:
        """Take the chains :meth:`step_state` names."""
        if "chains" in state:
            self.chains = state["chains"]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the sweeps and the persistent chains from :meth:`state_dict` (settings must match).

        Examples:
            >>> pcd = ContrastiveDivergence(persistent=True)
            >>> pcd.load_state_dict({"k": 1, "persistent": True, "num_chains": None,
            ...                      "chains": torch.zeros(4, 3)})
            >>> pcd.chains.shape
            torch.Size([4, 3])
        """
        if not isinstance(state, dict):
            raise TypeError(f"state: expected a dict from state_dict(), got {type(state).__name__}")
        missing = sorted({"k", "persistent", "num_chains", "chains"} - set(state))
        if missing:
            raise ValueError(f"state: missing keys {missing}")
        # The settings must match; the current sweeps (grown by anneal) are restored. States
        # saved before k_final existed hold the fixed k as "k".
        ours = {"k": self.k_start, "k_final": self.k_final, "persistent": self.persistent,
                "num_chains": self.num_chains}
        theirs = {"k": state.get("k_start", state["k"]), "k_final": state.get("k_final"),
                  "persistent": state["persistent"], "num_chains": state["num_chains"]}
        if ours != theirs:
            raise ValueError(f"state: saved for {theirs}, but this objective is {ours}")
        self.k = check_positive_int("state['k']", state["k"])
        chains = state["chains"]
        if chains is not None:
            check_tensor("state['chains']", chains, ndim=2, floating=True, support="binary")
            if self.num_chains is not None and chains.shape[0] != self.num_chains:
                raise ValueError(
                    f"state['chains']: expected {self.num_chains} chains (num_chains), "
                    f"got shape {tuple(chains.shape)}"
                )
            chains = chains.detach().clone()
        self.chains = chains
