"""Bookkeeping of a gradient ascent: per image the best version so far, milestones and a trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from ...milestones import THRESHOLDS, Milestones

__all__ = ["THRESHOLDS", "AscentResult", "BestSoFar", "Milestones"]


@dataclass
class AscentResult:
    """Outcome per target image: the most confident image seen and when things happened.

    images: (B, C, H, W) on the CPU; confidence, best_step: (B,); trace: (steps + 1, B)
    best confidence so far after each step; evaluations: images scored in all; states:
    per image, what the parameterisation kept of its best version (None for pixels).
    """

    targets: np.ndarray
    images: torch.Tensor
    confidence: np.ndarray
    best_step: np.ndarray
    milestones: Milestones
    trace: np.ndarray
    steps_run: int
    evaluations: int = 0
    extra: dict = field(default_factory=dict)
    states: Optional[list[Any]] = None
    stopped: bool = False  # should_stop() ended it early: ``state`` resumes it
    state: Optional[dict[str, np.ndarray]] = None


class BestSoFar:
    """Keeps, per image, the most confident version seen (on the images' device), plus milestones and
    a trace of confidences."""

    def __init__(self, n: int, steps: int) -> None:
        self.confidence = np.full(n, -np.inf)
        self.best_step = np.full(n, -1, dtype=np.int64)
        self.images: Optional[torch.Tensor] = None  # (n, C, H, W), allocated at the first offer
        self.states: list[Any] = [None] * n
        self.milestones = Milestones.empty(n)
        self.trace = np.full((steps + 1, n), np.nan)
        self.evaluations = 0

    def offer(self, rows: np.ndarray, step: int, images: torch.Tensor, p: np.ndarray, top1: np.ndarray) -> np.ndarray:
        """Images ``rows`` (len R) at ``step``: images (R, C, H, W), target confidences p (R,), top-1 flags.

        Returns the positions (into ``rows``) of the images that beat their best so far.
        """
        self.evaluations += len(rows)
        self.milestones.update(rows, step, p, is_top1=top1)
        better = np.flatnonzero(p > self.confidence[rows])
        if better.size:
            if self.images is None:
                self.images = torch.zeros((len(self.confidence), *images.shape[1:]), device=images.device)
            elif self.images.device != images.device:
                self.images = self.images.to(images.device)
            where = torch.as_tensor(better, device=images.device)
            self.images[torch.as_tensor(rows[better], device=images.device)] = images.detach()[where].float()
            self.confidence[rows[better]] = p[better]
            self.best_step[rows[better]] = step
        self.trace[step] = self.confidence
        return better

    def keep_states(self, rows: np.ndarray, states: Optional[list[Any]]) -> None:
        """Store ``states`` (one per image of ``rows``) beside the best images; None: nothing to store."""
        if states is not None:
            for r, s in zip(rows.tolist(), states):
                self.states[r] = s

    def result(self, targets: np.ndarray, steps_run: int) -> AscentResult:
        return AscentResult(targets=targets, images=self.images.cpu(), confidence=self.confidence.copy(),
                            best_step=self.best_step.copy(), milestones=self.milestones,
                            trace=self.trace[: steps_run + 1].copy(), steps_run=steps_run,
                            evaluations=self.evaluations,
                            states=None if all(s is None for s in self.states) else list(self.states))

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything as numpy arrays, "best."-prefixed (for checkpoints)."""
        return {"best.confidence": self.confidence.copy(), "best.step": self.best_step.copy(),
                "best.images": self.images.cpu().numpy().copy(), "best.top1": self.milestones.top1.copy(),
                "best.passed": self.milestones.passed.copy(), "best.trace": self.trace.copy(),
                "best.evaluations": np.asarray(self.evaluations, dtype=np.int64)}

    def load_arrays(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_arrays`."""
        self.confidence[:] = state["best.confidence"]
        self.best_step[:] = state["best.step"]
        self.images = torch.from_numpy(np.ascontiguousarray(state["best.images"])).clone()
        self.milestones.top1[:] = state["best.top1"]
        self.milestones.passed[:] = state["best.passed"]
        self.trace[:] = state["best.trace"]
        self.evaluations = int(state["best.evaluations"])
