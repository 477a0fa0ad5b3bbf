"""The fooling images an evolution run contributes to the fooling class.

One elite per class per run would give only n images per run, so a run is
sampled at *snapshots*: every ``snapshot_every`` generations (and at the end)
each class's elite joins the pool if it changed since the previous snapshot.
Pools are saved as plain ``.npz`` arrays (loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import FoolingError
from ..imaging import to_uint8
from ..run import EvolutionRun


@dataclass
class Pool:
    """Fooling images: uint8 (M, C, H, W); per image its class, confidence and generation (M,).

    ``upto``: the last generation that has been snapshotted (0: none yet).
    """

    images: np.ndarray
    classes: np.ndarray
    confidence: np.ndarray
    generation: np.ndarray
    upto: int = 0

    @classmethod
    def empty(cls, image_shape: Sequence[int]) -> "Pool":
        return cls(np.zeros((0, *image_shape), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.float64),
                   np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.classes)

    def last_confidence(self, k: int) -> float:
        """Confidence of the newest (most confident) pooled image of class ``k`` (-inf if none)."""
        mine = self.confidence[self.classes == k]
        return float(mine.max()) if mine.size else -np.inf

    def extend(self, images: np.ndarray, classes: np.ndarray, confidence: np.ndarray, generation: int) -> "Pool":
        """A new pool with these images (uint8 (m, C, H, W)) appended, snapshotted up to ``generation``."""
        return Pool(np.concatenate([self.images, images]), np.concatenate([self.classes, classes]),
                    np.concatenate([self.confidence, confidence]),
                    np.concatenate([self.generation, np.full(len(classes), generation, np.int64)]), generation)

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename)."""
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, images=self.images, classes=self.classes, confidence=self.confidence,
                     generation=self.generation, upto=np.int64(self.upto))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "Pool":
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["images"], data["classes"], data["confidence"], data["generation"],
                           int(data["upto"]))
        except (OSError, KeyError, ValueError) as err:
            raise FoolingError(f"cannot read fooling images from {path}: {err}") from None

    @classmethod
    def concat(cls, pools: Sequence["Pool"]) -> "Pool":
        """All images of ``pools`` in one (``upto`` is meaningless for the result and set to 0)."""
        return cls(*(np.concatenate([getattr(p, key) for p in pools])
                     for key in ("images", "classes", "confidence", "generation")))


def snapshot(run: EvolutionRun, pool: Pool, min_confidence: float) -> Pool:
    """``pool`` plus every elite of ``run`` that is new since the pool's last snapshot and confident enough."""
    archive = run.archive
    generation = run.strategy.generation - 1
    cells = [c for c in archive.occupied
             if archive.fitness[c] >= min_confidence
             and archive.fitness[c] > pool.last_confidence(int(archive.classes[c]))]
    if not cells:
        return Pool(pool.images, pool.classes, pool.confidence, pool.generation, generation)
    cells = np.asarray(cells)
    images = to_uint8(run.encoding.decode(archive.elites(cells), run.device)).transpose(0, 3, 1, 2)
    return pool.extend(np.ascontiguousarray(images), archive.classes[cells], archive.fitness[cells], generation)


def balanced_sample(pools: Sequence[Pool], total: int, rng: np.random.Generator) -> np.ndarray:
    """``total`` fooling images, an equal share from each non-empty pool (one pool per iteration).

    Within a pool images are drawn without replacement while they last; a pool smaller
    than its share is used whole and topped up by repeats. Returns uint8 (total, C, H, W).
    """
    pools = [p for p in pools if len(p)]
    if not pools:
        raise FoolingError("no fooling images to train on (is --min-confidence too high?)")
    shares = np.full(len(pools), total // len(pools))
    shares[: total % len(pools)] += 1
    chosen = []
    for pool, share in zip(pools, shares):
        whole, rest = divmod(int(share), len(pool))
        index = np.concatenate([np.tile(np.arange(len(pool)), whole), rng.permutation(len(pool))[:rest]])
        chosen.append(pool.images[np.sort(index)])
    return np.concatenate(chosen)
