"""Direct encoding: one gene per pixel channel, floats in [0, 1].

A batch is a float32 array (N, G) with G = C·H·W. Grey images read the genes as
intensities; colour images read them as HLS (the paper) or RGB. Variation is
vectorised over the whole batch (see :mod:`.operators`) and registered in a DEAP
toolbox under ``mate_population`` / ``mutate_population``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from deap import base

from ..imaging import hls_to_rgb
from .base import Encoding
from .operators import polynomial_mutation, sbx_crossover


class DirectEncoding(Encoding[np.ndarray, np.ndarray]):
    """Raw-pixel genomes: batch (N, C·H·W) float32 -> images (N, C, H, W)."""

    name = "direct"

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        *,
        colour: str = "hls",
        mutation: str = "bounded",
        mutation_rate: float = 0.1,
        mutation_eta: float = 15.0,
        rate_halving_every: int = 0,
        crossover_rate: float = 0.0,
        crossover_eta: float = 10.0,
    ) -> None:
        super().__init__(image_shape)
        if colour not in ("hls", "rgb"):
            raise ValueError(f"colour must be hls or rgb, not {colour!r}")
        if mutation not in ("bounded", "unscaled"):
            raise ValueError(f"mutation must be bounded or unscaled, not {mutation!r}")
        self.colour = colour
        self.mutation = mutation
        self.mutation_rate = mutation_rate
        self.mutation_eta = mutation_eta
        self.rate_halving_every = rate_halving_every
        self.crossover_rate = crossover_rate
        self.crossover_eta = crossover_eta
        self.num_genes = int(np.prod(image_shape))
        self.toolbox = base.Toolbox()
        self.toolbox.register("mutate_population", polynomial_mutation, eta=mutation_eta, variant=mutation)
        self.toolbox.register("mate_population", sbx_crossover, eta=crossover_eta)

    def rate_at(self, generation: int) -> float:
        """The per-gene mutation rate in force at ``generation`` (halved every K if set)."""
        if self.rate_halving_every:
            return self.mutation_rate * 0.5 ** (generation // self.rate_halving_every)
        return self.mutation_rate

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.random((n, self.num_genes), dtype=np.float32)

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator, generation: int) -> np.ndarray:
        return self.toolbox.mutate_population(genomes.copy(), rng, rate=self.rate_at(generation))

    def crossover(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        a, b = a.copy(), b.copy()
        self.toolbox.mate_population(a, b, rng)
        return a, b

    def vary(self, parents: np.ndarray, rng: np.random.Generator, generation: int) -> np.ndarray:
        """Pairs (0, 1), (2, 3), … cross over with probability ``crossover_rate``; then all mutate."""
        return self.vary_owned(parents.copy(), rng, generation)

    def vary_owned(self, parents: np.ndarray, rng: np.random.Generator, generation: int) -> np.ndarray:
        """:meth:`vary` in place on ``parents`` (float32, C-contiguous), which become the children."""
        children = np.ascontiguousarray(parents, dtype=np.float32)
        pairs = len(children) // 2
        if self.crossover_rate > 0 and pairs:
            chosen = np.flatnonzero(rng.random(pairs) < self.crossover_rate)
            if chosen.size:
                a, b = children[2 * chosen], children[2 * chosen + 1]
                self.toolbox.mate_population(a, b, rng)
                children[2 * chosen], children[2 * chosen + 1] = a, b
        return self.toolbox.mutate_population(children, rng, rate=self.rate_at(generation))

    def decode(self, genomes: np.ndarray, device: torch.device) -> torch.Tensor:
        images = torch.from_numpy(np.ascontiguousarray(genomes, dtype=np.float32)).to(device)
        images = images.view(-1, *self.image_shape)
        if self.image_shape[0] == 3 and self.colour == "hls":
            images = hls_to_rgb(images)
        return images

    def size(self, genomes: np.ndarray) -> int:
        return len(genomes)

    def pick(self, genomes: np.ndarray, i: int) -> np.ndarray:
        return genomes[i].copy()

    def stack(self, genomes: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack(genomes).astype(np.float32, copy=False)

    def to_arrays(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        return {"genes": np.asarray(genomes, dtype=np.float32)}

    def from_arrays(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        genes = np.asarray(arrays["genes"], dtype=np.float32)
        if genes.ndim != 2 or genes.shape[1] != self.num_genes:
            raise ValueError(f"direct genomes of shape {genes.shape} do not fit images {self.image_shape}")
        return genes

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(), "colour": self.colour, "mutation": self.mutation,
            "mutation_rate": self.mutation_rate, "mutation_eta": self.mutation_eta,
            "rate_halving_every": self.rate_halving_every, "crossover_rate": self.crossover_rate,
            "crossover_eta": self.crossover_eta,
        }
