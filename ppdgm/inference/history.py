"""Training history: per-step and per-epoch losses for every player, saved as CSV and JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["History"]

_STEP_FIELDS = ("step", "epoch", "player", "loss", "batch_size")
_EPOCH_FIELDS = ("epoch", "player", "loss_per_example", "loss_mean", "steps", "seconds")


@dataclass
class History:
    """Losses recorded by the engine.

    ``steps`` holds one row per optimizer step: the objective's value as returned (Pyro's ELBOs
    return a sum over the batch) and the batch size. ``epochs`` holds one row per epoch and player:
    ``loss_per_example`` (summed loss / examples seen, i.e. nats per data point for an ELBO) and
    ``loss_mean`` (the plain mean over steps, the right summary for objectives that already
    average over the batch).

    Example:
        >>> h = History()
        >>> h.record_step(step=0, epoch=0, player="svi", loss=12.0, batch_size=4)
        >>> h.close_epoch(epoch=0, seconds=0.1)
        >>> h.epochs[0]["loss_per_example"]
        3.0
    """

    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)

    def record_step(self, *, step: int, epoch: int, player: str, loss: float, batch_size: int) -> None:
        self.steps.append(
            {"step": step, "epoch": epoch, "player": player, "loss": float(loss),
             "batch_size": int(batch_size)}
        )

    def close_epoch(self, *, epoch: int, seconds: float) -> None:
        """Summarise the steps of ``epoch`` into one row per player."""
        rows = [r for r in self.steps if r["epoch"] == epoch]
        for player in dict.fromkeys(r["player"] for r in rows):
            mine = [r for r in rows if r["player"] == player]
            total = sum(r["loss"] for r in mine)
            examples = sum(r["batch_size"] for r in mine)
            self.epochs.append(
                {"epoch": epoch, "player": player, "loss_per_example": total / max(examples, 1),
                 "loss_mean": total / len(mine), "steps": len(mine), "seconds": float(seconds)}
            )

    def last(self, player: str | None = None) -> float:
        """The last epoch's loss per example (of ``player``, or of the last player recorded)."""
        rows = [r for r in self.epochs if player is None or r["player"] == player]
        if not rows:
            raise ValueError(f"player: no completed epoch recorded for {player!r}")
        return rows[-1]["loss_per_example"]

    def players(self) -> list[str]:
        """Names of the players that recorded steps, in first-seen order."""
        return list(dict.fromkeys(r["player"] for r in self.steps))

    def to_frame(self, kind: str = "steps"):  # -> pandas.DataFrame (import kept lazy)
        """The ``"steps"`` or ``"epochs"`` table as a pandas DataFrame."""
        import pandas as pd

        if kind not in ("steps", "epochs"):
            raise ValueError(f"kind: expected 'steps' or 'epochs', got {kind!r}")
        columns = _STEP_FIELDS if kind == "steps" else _EPOCH_FIELDS
        return pd.DataFrame(getattr(self, kind), columns=list(columns))

    def state_dict(self) -> dict[str, Any]:
        return {"steps": [dict(r) for r in self.steps], "epochs": [dict(r) for r in self.epochs]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> History:
        return cls(steps=[dict(r) for r in state["steps"]], epochs=[dict(r) for r in state["epochs"]])

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write ``history_steps.csv``, ``history_epochs.csv`` and ``history.json`` to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "steps_csv": directory / "history_steps.csv",
            "epochs_csv": directory / "history_epochs.csv",
            "json": directory / "history.json",
        }
        self.to_frame("steps").to_csv(paths["steps_csv"], index=False)
        self.to_frame("epochs").to_csv(paths["epochs_csv"], index=False)
        paths["json"].write_text(json.dumps(self.state_dict(), indent=1))
        return paths
