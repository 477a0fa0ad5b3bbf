"""MAP-Elites archive over classes: one elite (the most confident image) per class.

Cells are the classes being evolved for. Every candidate is offered to every
cell (the paper's rule), so one image may be the elite of several classes; such
an image is stored once and shared.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .encodings.base import Encoding
from .milestones import THRESHOLDS, Milestones

__all__ = ["THRESHOLDS", "Archive"]


class Archive:
    """Per-class elites: genome, confidence, generation found and the parent cell it came from.

    classes: the class indices (into the classifier's K outputs) that have cells.
    """

    def __init__(self, encoding: Encoding, classes: Sequence[int], labels: Sequence[str]) -> None:
        self.encoding = encoding
        self.classes = np.asarray(classes, dtype=np.int64)
        self.labels = [labels[k] for k in self.classes]
        n = len(self.classes)
        self.fitness = np.full(n, -np.inf)  # confidence of each cell's elite; -inf: empty
        self.generation_found = np.full(n, -1, dtype=np.int64)
        self.parent = np.full(n, -1, dtype=np.int64)  # the cell whose elite was the parent; -1: random
        self.scores: Optional[np.ndarray] = None  # (cells, M): each model's confidence, for ensembles
        self.milestones = Milestones.empty(n, top1=False)  # the generation each threshold was first passed
        self.genomes: list[Any] = [None] * n

    @property
    def passed(self) -> np.ndarray:
        """(cells, len(THRESHOLDS)) the generation each threshold was first passed (-1: never)."""
        return self.milestones.passed

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def occupied(self) -> np.ndarray:
        """Indices of the cells that hold an elite."""
        return np.flatnonzero(np.isfinite(self.fitness))

    @property
    def coverage(self) -> float:
        return float(np.isfinite(self.fitness).mean())

    def add(
        self,
        genomes: Any,
        confidence: np.ndarray,
        generation: int,
        parents: Optional[np.ndarray] = None,
        scores: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """Offer a batch to every cell; returns the indices of the cells that improved.

        confidence: (N, cells) fitness of each candidate for each cell. parents: (N,)
        the cell each candidate's parent came from (-1 for random ones). scores:
        optional (N, cells, M) per-model confidences, kept for the elites.
        """
        best = confidence.argmax(axis=0)  # (cells,) the best candidate for each cell
        best_fit = confidence[best, np.arange(len(self))]
        improved = np.flatnonzero(best_fit > self.fitness)
        picked: dict[int, Any] = {}
        for cell in improved:  # at most one Python step per class, never per candidate
            i = int(best[cell])
            if i not in picked:
                picked[i] = self.encoding.pick(genomes, i)
            self.genomes[cell] = picked[i]
        self.fitness[improved] = best_fit[improved]
        self.generation_found[improved] = generation
        self.parent[improved] = -1 if parents is None else parents[best[improved]]
        self.milestones.update(improved, generation, self.fitness[improved])
        if scores is not None:
            if self.scores is None:
                self.scores = np.full((len(self), scores.shape[-1]), np.nan)
            self.scores[improved] = scores[best[improved], improved]
        return improved

    def elites(self, cells: np.ndarray) -> Any:
        """A batch of the elites of ``cells`` (which must be occupied)."""
        return self.encoding.stack([self.genomes[c] for c in cells])

    # --- checkpointing: plain arrays only -------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays describing the archive; shared elites are stored once."""
        unique: dict[int, int] = {}
        order: list[Any] = []
        index = np.full(len(self), -1, dtype=np.int64)
        for cell, genome in enumerate(self.genomes):
            if genome is None:
                continue
            key = id(genome)
            if key not in unique:
                unique[key] = len(order)
                order.append(genome)
            index[cell] = unique[key]
        state = {
            "classes": self.classes, "fitness": self.fitness, "generation_found": self.generation_found,
            "parent": self.parent, "passed": self.passed, "elite_index": index,
        }
        if self.scores is not None:
            state["scores"] = self.scores
        if order:
            for key, value in self.encoding.to_arrays(self.encoding.stack(order)).items():
                state[f"elite.{key}"] = value
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if not np.array_equal(state["classes"], self.classes):
            raise ValueError("checkpoint archive has different classes")
        self.fitness = state["fitness"].astype(np.float64)
        self.generation_found = state["generation_found"].astype(np.int64)
        self.parent = state["parent"].astype(np.int64)
        self.milestones = Milestones(state["passed"].astype(np.int64))
        self.scores = state["scores"] if "scores" in state else None
        index = state["elite_index"]
        self.genomes = [None] * len(self)
        arrays = {k[len("elite."):]: v for k, v in state.items() if k.startswith("elite.")}
        if arrays:
            batch = self.encoding.from_arrays(arrays)
            shared = [self.encoding.pick(batch, i) for i in range(self.encoding.size(batch))]
            for cell, i in enumerate(index):
                if i >= 0:
                    self.genomes[cell] = shared[i]
