"""The ask/tell contract every evolutionary strategy follows.

A strategy proposes genomes (``ask``) and learns their confidences (``tell``);
it never decodes or scores anything itself. The run loop does that for the whole
batch at once, which is what lets evaluation run as one forward pass on a GPU.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional

import numpy as np

from ..archive import Archive


class Strategy(ABC):
    """ask() -> genome batch; tell(batch, confidence (N, cells)) updates the archive."""

    def __init__(self, archive: Archive, rng: np.random.Generator) -> None:
        self.archive = archive
        self.encoding = archive.encoding
        self.rng = rng
        self.generation = 0  # the generation the next ask() produces; 0 = the initial population

    @abstractmethod
    def ask(self) -> Any:
        """The next batch of genomes to evaluate."""

    @abstractmethod
    def tell(self, genomes: Any, confidence: np.ndarray, scores: Optional[np.ndarray] = None) -> None:
        """Confidences (N, cells) of the batch from the last ask(); ends the generation."""

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, JSON-able values) to checkpoint; the archive is saved separately."""
        return {}, {"generation": self.generation, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        self.generation = int(values["generation"])
        self.rng.bit_generator.state = values["rng"]
