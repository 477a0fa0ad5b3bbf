"""What every encoding provides: genomes in, a whole batch of images out.

A *batch* of genomes is whatever the encoding finds fastest (a float tensor
(N, G) on the run's device for raw pixels, a list of networks for CPPNs); a *genome* is one element
of it. Strategies only move genomes around through these methods, so they work
with every encoding.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, Optional, Sequence, TypeVar

import numpy as np
import torch

Batch = TypeVar("Batch")
Genome = TypeVar("Genome")


class Encoding(ABC, Generic[Batch, Genome]):
    """Genome batch -> image batch (N, C, H, W) in [0, 1], plus the variation operators."""

    name: str = ""
    #: what ``rng`` is in :meth:`random`, :meth:`mutate`, :meth:`crossover`, :meth:`vary`: "numpy" (a
    #: ``numpy.random.Generator``; genomes are host objects) or "torch" (a ``torch.Generator`` on
    #: :attr:`device`; a batch is a tensor on the device and the archive keeps it there)
    rng_kind: str = "numpy"
    device: torch.device = torch.device("cpu")

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        self.image_shape = tuple(image_shape)  # (C, H, W)

    # --- making and varying genomes -------------------------------------------------
    @abstractmethod
    def random(self, n: int, rng: np.random.Generator) -> Batch:
        """``n`` fresh genomes (the initial population)."""

    @abstractmethod
    def mutate(self, genomes: Batch, rng: np.random.Generator, generation: int) -> Batch:
        """Mutated copies of ``genomes`` (the input batch is left untouched)."""

    def crossover(self, a: Batch, b: Batch, rng: np.random.Generator) -> tuple[Batch, Batch]:
        """Children of the pairs (a[i], b[i]); encodings without crossover return copies."""
        return self.stack([self.pick(a, i) for i in range(self.size(a))]), self.stack(
            [self.pick(b, i) for i in range(self.size(b))]
        )

    def vary(self, parents: Batch, rng: np.random.Generator, generation: int) -> Batch:
        """Children of ``parents`` (same count). Default: every child is a mutated copy.

        Encodings with crossover override this to cross consecutive pairs first.
        """
        return self.mutate(parents, rng, generation)

    def vary_owned(self, parents: Batch, rng: np.random.Generator, generation: int) -> Batch:
        """:meth:`vary` for a batch the caller gives up (a fresh stack of elites): the same children
        from the same draws, but an encoding may vary ``parents`` in place instead of copying them first."""
        return self.vary(parents, rng, generation)

    # --- the hot path -------------------------------------------------------------------
    @abstractmethod
    def decode(self, genomes: Batch, device: torch.device) -> torch.Tensor:
        """Images (N, C, H, W) float32 in [0, 1] on ``device``, in one call for the whole batch."""

    # --- moving genomes between batches and archive ------------------------------------
    @abstractmethod
    def size(self, genomes: Batch) -> int:
        """Number of genomes in the batch."""

    @abstractmethod
    def pick(self, genomes: Batch, i: int) -> Genome:
        """Genome ``i`` as an object that owns its data (safe to keep in an archive)."""

    @abstractmethod
    def stack(self, genomes: Sequence[Genome]) -> Batch:
        """A batch from single genomes."""

    # --- saving ---------------------------------------------------------------------------
    @abstractmethod
    def to_arrays(self, genomes: Batch) -> dict[str, np.ndarray]:
        """The batch as plain numeric arrays (checkpoints hold nothing pickled)."""

    @abstractmethod
    def from_arrays(self, arrays: dict[str, np.ndarray]) -> Batch:
        """Inverse of :meth:`to_arrays`."""

    def genome_json(self, genome: Genome) -> Optional[dict[str, Any]]:
        """A JSON description of one genome to store next to its PNG, or None if the PNG says it all."""
        return None

    def settings(self) -> dict[str, Any]:
        """The settings that shaped this encoding, for config.json."""
        return {"name": self.name, "image_shape": list(self.image_shape)}
