"""Early stopping on a validation metric (larger is better), serialisable for checkpoints."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass
class EarlyStopping:
    """Tracks the best epoch; stops after `patience` epochs without a strict improvement."""

    metric: str  # e.g. "NDCG@10"
    patience: int  # epochs without improvement before stopping (>= 1)
    best_value: float = -math.inf
    best_epoch: int = -1  # 0-based epoch of the best value, -1 before the first update
    bad_epochs: int = 0  # consecutive epochs without improvement

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"eval.patience={self.patience} must be >= 1")

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Records an epoch's validation metrics; returns True when it is a new best."""
        if self.metric not in metrics:
            raise ValueError(
                f"eval.metric={self.metric!r} is not a validation metric; "
                f"choose one of {sorted(metrics)}"
            )
        value = float(metrics[self.metric])
        if value > self.best_value:
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """True once `patience` consecutive epochs brought no improvement."""
        return self.bad_epochs >= self.patience

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly state (-inf becomes None)."""
        state = dataclasses.asdict(self)
        if not math.isfinite(state["best_value"]):
            state["best_value"] = None
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> EarlyStopping:
        """Inverse of `to_dict`."""
        state = dict(state)
        if state.get("best_value") is None:
            state["best_value"] = -math.inf
        return cls(**state)
