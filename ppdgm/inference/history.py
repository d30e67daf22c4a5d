"""Training history: per-step and per-epoch losses for every player, saved as CSV and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._files import atomic_write_text, make_folder

__all__ = ["History"]

_STEP_FIELDS = ("step", "epoch", "player", "loss", "batch_size")
_EPOCH_FIELDS = ("epoch", "player", "loss_per_example", "loss_mean", "steps", "seconds")


class History:
    """Losses recorded by the engine.

    ``steps`` holds one row per optimizer step: the objective's value as returned (Pyro's ELBOs
    return a sum over the batch) and the batch size. ``epochs`` holds one row per epoch and player:
    ``loss_per_example`` (summed loss / examples seen, i.e. nats per data point for an ELBO) and
    ``loss_mean`` (the plain mean over steps, the right summary for objectives that already
    average over the batch). Steps are stored column by column, so a run of a million steps
    stays cheap to keep and to checkpoint.

    Examples:
        >>> h = History()
        >>> h.record_step(step=0, epoch=0, player="svi", loss=12.0, batch_size=4)
        >>> h.close_epoch(epoch=0, seconds=0.1)
        >>> h.epochs[0]["loss_per_example"]
        3.0
    """

    def __init__(self, steps: list[dict[str, Any]] | None = None,
                 epochs: list[dict[str, Any]] | None = None) -> None:
        self._columns: dict[str, list[Any]] = {name: [] for name in _STEP_FIELDS}
        self.epochs: list[dict[str, Any]] = [dict(r) for r in epochs or []]
        self._open: dict[str, list[float]] = {}  # player -> [loss total, examples, steps]
        for row in steps or []:
            self._append(row)

    @property
    def steps(self) -> list[dict[str, Any]]:
        """One dict per recorded step (built on access; see :meth:`to_frame` for a table)."""
        return [dict(zip(_STEP_FIELDS, values)) for values in zip(*self._columns.values())]

    def __len__(self) -> int:
        return len(self._columns["step"])

    def record_step(self, *, step: int, epoch: int, player: str, loss: float, batch_size: int) -> None:
        self._append({"step": step, "epoch": epoch, "player": player, "loss": float(loss),
                      "batch_size": int(batch_size)})
        totals = self._open.setdefault(player, [0.0, 0, 0])
        totals[0] += float(loss)
        totals[1] += int(batch_size)
        totals[2] += 1

    def _append(self, row: dict[str, Any]) -> None:
        for name in _STEP_FIELDS:
            self._columns[name].append(row[name])

    def close_epoch(self, *, epoch: int, seconds: float) -> None:
        """Summarise the steps recorded since the last call into one row per player."""
        for player, (total, examples, count) in self._open.items():
            self.epochs.append(
                {"epoch": epoch, "player": player, "loss_per_example": total / max(examples, 1),
                 "loss_mean": total / count, "steps": count, "seconds": float(seconds)}
            )
        self._open = {}

    def first_loss(self, player: str, default: float) -> float:
        """The first loss recorded for ``player`` (``default`` when none is).

        Examples:
            >>> h = History()
            >>> h.record_step(step=0, epoch=0, player="d", loss=1.5, batch_size=4)
            >>> h.first_loss("d", default=0.0), h.first_loss("g", default=0.0)
            (1.5, 0.0)
        """
        for name, loss in zip(self._columns["player"], self._columns["loss"]):
            if name == player:
                return loss
        return default

    def last(self, player: str | None = None) -> float:
        """The last epoch's loss per example (of ``player``, or of the last player recorded)."""
        rows = [r for r in self.epochs if player is None or r["player"] == player]
        if not rows:
            raise ValueError(f"player: no completed epoch recorded for {player!r}")
        return rows[-1]["loss_per_example"]

    def wall_seconds(self) -> float:
        """Training wall time over the closed epochs.

        Each player gets its own epoch row carrying the epoch's one wall time, so summing
        ``seconds`` over ``epochs`` would count a two-player epoch twice; this counts it once.

        Examples:
            >>> h = History()
            >>> for epoch in range(2):
            ...     for player in ("wake", "sleep"):
            ...         h.record_step(step=epoch, epoch=epoch, player=player, loss=1.0, batch_size=1)
            ...     h.close_epoch(epoch=epoch, seconds=30.0 + epoch)
            >>> h.wall_seconds()
            61.0
        """
        return sum({r["epoch"]: r["seconds"] for r in self.epochs}.values())

    def players(self) -> list[str]:
        """Names of the players that recorded steps, in first-seen order."""
        return list(dict.fromkeys(self._columns["player"]))

    def to_frame(self, kind: str = "steps"):  # -> pandas.DataFrame (import kept lazy)
        """The ``"steps"`` or ``"epochs"`` table as a pandas DataFrame."""
        import pandas as pd

        if kind not in ("steps", "epochs"):
            raise ValueError(f"kind: expected 'steps' or 'epochs', got {kind!r}")
        columns = _STEP_FIELDS if kind == "steps" else _EPOCH_FIELDS
        if kind == "steps":
            return pd.DataFrame(self._columns, columns=list(columns))
        return pd.DataFrame(self.epochs, columns=list(columns))

    def state_dict(self) -> dict[str, Any]:
        return {"columns": {k: list(v) for k, v in self._columns.items()},
                "epochs": [dict(r) for r in self.epochs],
                "open": {k: list(v) for k, v in self._open.items()}}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> History:
        history = cls(epochs=state["epochs"])
        history._columns = {name: list(state["columns"][name]) for name in _STEP_FIELDS}
        history._open = {k: list(v) for k, v in state.get("open", {}).items()}
        return history

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write ``history_steps.csv``, ``history_epochs.csv`` and ``history.json`` to ``directory``."""
        directory = make_folder("directory", directory)
        paths = {
            "steps_csv": directory / "history_steps.csv",
            "epochs_csv": directory / "history_epochs.csv",
            "json": directory / "history.json",
        }
        # Each file is replaced whole: a kill mid-write leaves the previous version readable.
        atomic_write_text(paths["steps_csv"], self.to_frame("steps").to_csv(index=False))
        atomic_write_text(paths["epochs_csv"], self.to_frame("epochs").to_csv(index=False))
        atomic_write_text(paths["json"], json.dumps(self.state_dict(), indent=1))
        return paths
