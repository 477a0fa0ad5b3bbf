"""One milestone tracker for evolution and gradient ascent: per item (an archive cell, an ascended image)
the first generation / step at which its confidence passed each of :data:`THRESHOLDS`, and optionally
the first at which its target was the top-1 class. Needs only numpy (the bottom layer)."""

from __future__ import annotations

from typing import Optional

import numpy as np

THRESHOLDS = (0.99, 0.999, 0.9999)  # milestones recorded per class: the first generation each was passed


class Milestones:
    """passed: (N, len(THRESHOLDS)) int64, the generation / step each threshold was first reached (-1: never);
    top1: (N,) int64 the first step the target was top-1 (-1: never), or None where not tracked (evolution)."""

    def __init__(self, passed: np.ndarray, top1: Optional[np.ndarray] = None) -> None:
        self.passed = passed
        self.top1 = top1

    @classmethod
    def empty(cls, n: int, top1: bool = True) -> "Milestones":
        return cls(np.full((n, len(THRESHOLDS)), -1, dtype=np.int64),
                   np.full(n, -1, dtype=np.int64) if top1 else None)

    def update(self, rows: np.ndarray, step: int, confidence: np.ndarray,
               is_top1: Optional[np.ndarray] = None) -> None:
        """Record ``step`` for items ``rows`` (len R) whose confidence (R,) reached a threshold (and, with
        ``is_top1`` (R,) bool, whose target became top-1) for the first time."""
        if is_top1 is not None and self.top1 is not None:
            self.top1[rows] = np.where(is_top1 & (self.top1[rows] < 0), step, self.top1[rows])
        reached = (np.asarray(confidence)[:, None] >= np.asarray(THRESHOLDS)) & (self.passed[rows] < 0)
        self.passed[rows] = np.where(reached, step, self.passed[rows])

    def passed_record(self, i: int) -> dict[str, Optional[int]]:
        """Item i's thresholds as JSON: {"0.99": step, "0.999": step, "0.9999": step}, None where never passed."""
        return {str(t): (int(s) if s >= 0 else None) for t, s in zip(THRESHOLDS, self.passed[i])}

    def record(self, i: int) -> dict[str, Optional[int]]:
        """Item i's milestones as JSON: {"top1": step, "0.99": step, ...} ("top1" only where tracked)."""
        out: dict[str, Optional[int]] = {}
        if self.top1 is not None:
            out["top1"] = int(self.top1[i]) if self.top1[i] >= 0 else None
        return {**out, **self.passed_record(i)}
