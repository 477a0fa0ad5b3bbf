"""Direct encoding: one gene per pixel channel, floats in [0, 1].

A batch is a float32 tensor (N, G) with G = C·H·W, on the encoding's device (the run's): genomes
are made, varied, decoded and kept in the archive there. Grey images read the genes as
intensities; colour images read them as HLS (the paper) or RGB. Variation is vectorised over the
whole batch in torch (see :mod:`.operators`), draws from a ``torch.Generator`` on the device, and
is registered in a DEAP toolbox under ``mate_population`` / ``mutate_population``.

Every method that takes an ``rng`` takes a torch Generator on :attr:`device`; a numpy Generator is
also accepted (a torch Generator is then seeded from it), for callers outside the run loop.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from deap import base

from ..imaging import hls_to_rgb
from .base import Encoding
from .operators import polynomial_mutation_torch, sbx_crossover_torch, sbx_pairs_torch

Rng = Union[torch.Generator, np.random.Generator]


class DirectEncoding(Encoding[torch.Tensor, torch.Tensor]):
    """Raw-pixel genomes: batch (N, C·H·W) float32 tensor on :attr:`device` -> images (N, C, H, W)."""

    name = "direct"
    rng_kind = "torch"

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
        device: Union[str, torch.device] = "cpu",
        compile: bool = False,
    ) -> None:
        super().__init__(image_shape)
        if colour not in ("hls", "rgb"):
            raise ValueError(f"colour must be hls or rgb, not {colour!r}")
        if mutation not in ("bounded", "unscaled"):
            raise ValueError(f"mutation must be bounded or unscaled, not {mutation!r}")
        self.device = torch.device(device)
        self.compile = compile  # --compile: decode HLS in one fused kernel (fooling.imaging.hls_to_rgb)
        # (genomes, their version, images): a batch converted where it was made (keep_decoded), until decoded
        self._decoded: Optional[tuple[torch.Tensor, int, torch.Tensor]] = None
        self.colour = colour
        self.mutation = mutation
        self.mutation_rate = mutation_rate
        self.mutation_eta = mutation_eta
        self.rate_halving_every = rate_halving_every
        self.crossover_rate = crossover_rate
        self.crossover_eta = crossover_eta
        self.num_genes = int(np.prod(image_shape))
        self.toolbox = base.Toolbox()
        self.toolbox.register("mutate_population", polynomial_mutation_torch, eta=mutation_eta, variant=mutation)
        self.toolbox.register("mate_population", sbx_crossover_torch, eta=crossover_eta)
        self.toolbox.register("mate_pairs", sbx_pairs_torch, eta=crossover_eta)

    def rate_at(self, generation: int) -> float:
        """The per-gene mutation rate in force at ``generation`` (halved every K if set)."""
        if self.rate_halving_every:
            return self.mutation_rate * 0.5 ** (generation // self.rate_halving_every)
        return self.mutation_rate

    def generator(self, rng: Rng) -> torch.Generator:
        """``rng`` itself if a torch Generator; from a numpy Generator, a torch one on :attr:`device` seeded by it."""
        if isinstance(rng, torch.Generator):
            return rng
        return torch.Generator(device=self.device).manual_seed(int(rng.integers(2**63 - 1)))

    def _owned(self, genomes: Any) -> torch.Tensor:
        """A float32 tensor on :attr:`device` that owns its data (a copy of ``genomes``)."""
        if isinstance(genomes, torch.Tensor):
            return genomes.to(self.device, torch.float32, copy=True).contiguous()
        return torch.tensor(np.asarray(genomes, dtype=np.float32), device=self.device)

    def random(self, n: int, rng: Rng) -> torch.Tensor:
        """(n, G) uniform genes in [0, 1) on :attr:`device`."""
        return torch.rand((n, self.num_genes), generator=self.generator(rng), device=self.device)

    def mutate(self, genomes: torch.Tensor, rng: Rng, generation: int) -> torch.Tensor:
        return self.toolbox.mutate_population(self._owned(genomes), self.generator(rng), rate=self.rate_at(generation))

    def crossover(self, a: torch.Tensor, b: torch.Tensor, rng: Rng) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self._owned(a), self._owned(b)
        self.toolbox.mate_population(a, b, self.generator(rng))
        return a, b

    def vary(self, parents: torch.Tensor, rng: Rng, generation: int) -> torch.Tensor:
        """Pairs (0, 1), (2, 3), … cross over with probability ``crossover_rate``; then all mutate."""
        return self.vary_owned(self._owned(parents), rng, generation)

    def vary_owned(self, parents: torch.Tensor, rng: Rng, generation: int) -> torch.Tensor:
        """:meth:`vary` in place on ``parents`` (float32, contiguous, on :attr:`device`), which become the children."""
        if not (isinstance(parents, torch.Tensor) and parents.dtype == torch.float32 and parents.is_contiguous()
                and parents.device == self.device):
            parents = self._owned(parents)
        generator = self.generator(rng)
        children = parents
        pairs = len(children) // 2
        if self.crossover_rate > 0 and pairs:
            chosen = torch.rand(pairs, generator=generator, device=children.device) < self.crossover_rate
            self.toolbox.mate_pairs(children, chosen, generator)
        return self.toolbox.mutate_population(children, generator, rate=self.rate_at(generation))

    def vary_blocks(self, children: torch.Tensor, seeds: np.ndarray, block: int, generation: int) -> torch.Tensor:
        """:meth:`vary_owned` of each block of ``block`` children of ``children`` (n, G) float32 on the CPU, in place,
        block j drawing from the counter-based generator keyed by ``seeds[j]`` (:mod:`.vary_cpu`, compiled
        passes; the same distributions)."""
        from .vary_cpu import vary_blocks  # numba loads on first use

        return vary_blocks(children, seeds, block, crossover_rate=self.crossover_rate,
                           crossover_eta=self.crossover_eta, rate=self.rate_at(generation), eta=self.mutation_eta,
                           variant=self.mutation)

    def ga_blocks(self, population: torch.Tensor, ops: np.ndarray, parents: np.ndarray, seeds: np.ndarray,
                  block: int, generation: int) -> torch.Tensor:
        """(n, G) float32 children on the CPU of a GA plan (DEAP's varOr: child c crosses ``population[parents[c,
        0]]`` with ``population[parents[c, 1]]`` where ``ops[c]`` is 0, keeping the first child, mutates it where 1,
        copies it where 2), block j drawing from the counter-based generator keyed by ``seeds[j]``
        (:func:`.vary_cpu.ga_children`; the distributions of :meth:`crossover` and :meth:`mutate`)."""
        from .vary_cpu import ga_children  # numba loads on first use

        return ga_children(population, ops, parents, seeds, block, crossover_eta=self.crossover_eta,
                           rate=self.rate_at(generation), eta=self.mutation_eta, variant=self.mutation)

    @property
    def decodes_hls_on_cpu(self) -> bool:
        """Whether :meth:`decode` converts HLS to RGB with the CPU's compiled pass (:mod:`fooling.hls_cpu`): then a
        compiled pass that makes children may convert them as it goes, the same bits, and :meth:`keep_decoded`."""
        return self.colour == "hls" and self.image_shape[0] == 3 and not self.compile and self.device.type == "cpu"

    def keep_decoded(self, genomes: torch.Tensor, images: Optional[torch.Tensor]) -> None:
        """``images`` (N, C, H, W) are what :meth:`decode` would make of ``genomes`` (N, G) (None: unknown): the next
        decode of that very tensor, unchanged since, returns them instead (once; nothing is kept after)."""
        self._decoded = None if images is None else (genomes, genomes._version, images)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_decoded": None}  # a copy (pickled, sent to a worker) carries no images

    def decode(self, genomes: Any, device: torch.device) -> torch.Tensor:
        kept, self._decoded = self._decoded, None
        if kept is not None and genomes is kept[0] and genomes._version == kept[1]:  # _version: in-place writes
            return kept[2].to(device)
        if isinstance(genomes, torch.Tensor):
            images = genomes.to(device, torch.float32)
        else:
            images = torch.from_numpy(np.ascontiguousarray(genomes, dtype=np.float32)).to(device)
        images = images.view(-1, *self.image_shape)
        if self.image_shape[0] == 3 and self.colour == "hls":
            images = hls_to_rgb(images, compiled=self.compile)
        return images

    def size(self, genomes: torch.Tensor) -> int:
        return len(genomes)

    def pick(self, genomes: torch.Tensor, i: int) -> torch.Tensor:
        return self._owned(genomes[i])

    def stack(self, genomes: Sequence[torch.Tensor]) -> torch.Tensor:
        if not len(genomes):
            return torch.empty((0, self.num_genes), device=self.device)
        return torch.stack([torch.as_tensor(g, device=self.device) for g in genomes]).to(torch.float32)

    def to_arrays(self, genomes: torch.Tensor) -> dict[str, np.ndarray]:
        if isinstance(genomes, torch.Tensor):
            return {"genes": genomes.detach().to("cpu", torch.float32).numpy()}
        return {"genes": np.asarray(genomes, dtype=np.float32)}

    def from_arrays(self, arrays: dict[str, np.ndarray]) -> torch.Tensor:
        genes = np.asarray(arrays["genes"], dtype=np.float32)
        if genes.ndim != 2 or genes.shape[1] != self.num_genes:
            raise ValueError(f"direct genomes of shape {genes.shape} do not fit images {self.image_shape}")
        return torch.tensor(genes, device=self.device)

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(), "colour": self.colour, "mutation": self.mutation,
            "mutation_rate": self.mutation_rate, "mutation_eta": self.mutation_eta,
            "rate_halving_every": self.rate_halving_every, "crossover_rate": self.crossover_rate,
            "crossover_eta": self.crossover_eta,
        }
