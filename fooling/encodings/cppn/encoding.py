"""The CPPN (indirect) encoding: genomes are small networks drawn at every pixel.

A batch is a list of :class:`~.genome.Genome`. ``decode`` draws the whole batch in
one tensor program (:mod:`.render`); variation is mutation only (no crossover, as
in the paper), registered in a DEAP toolbox under ``mutate_population`` with the
single operators beside it (structural ones edit a :class:`~.mutation.Editable`).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch
from deap import base

from ...settings.evolve import CPPN_CPU_MATHS, EvolveSettings
from ..base import Encoding
from .functions import FUNCTION_NAMES
from .genome import INPUT_NAMES, WEIGHT_RANGE, Genome, initial_genome
from .mutation import (
    MutationRates, Packed, add_connection, add_node, delete_connection, delete_node, mutate_functions,
    mutate_population, mutate_population_packed, mutate_structure, mutate_weights, rewire_connection,
)
from .render import Style, render
from .serialize import genome_to_json, genomes_from_arrays, genomes_to_arrays


class CPPNEncoding(Encoding[list, Genome]):
    """CPPN genomes: a list of N networks -> images (N, C, H, W); C = 1 (grey) or 3 (HLS or RGB)."""

    name = "cppn"

    def __init__(
        self, image_shape: tuple[int, int, int], *, coords: str = "scaled", colour: str = "hls",
        rates: MutationRates = MutationRates(), cpu_math: str = "numpy",
    ) -> None:
        super().__init__(image_shape)
        channels = self.image_shape[0]
        if channels not in (1, 3):
            raise ValueError(f"CPPN images have 1 or 3 channels, not {channels}")
        if channels == 3 and colour not in ("hls", "rgb"):
            raise ValueError(f"colour must be hls or rgb, not {colour!r}")
        self.style = Style(coords, "grey" if channels == 1 else colour, (self.image_shape[1], self.image_shape[2]))
        self.rates = rates
        if cpu_math not in CPPN_CPU_MATHS:
            raise ValueError(f"cpu_math must be one of {', '.join(CPPN_CPU_MATHS)}, not {cpu_math!r}")
        self.cpu_math = cpu_math  # whose sin, tanh and exp a CPU draws with (see cppn.execute.run_program)
        self.toolbox = base.Toolbox()
        self.toolbox.register("mutate_population", mutate_population, rates=rates)
        self.toolbox.register("add_connection", add_connection)
        self.toolbox.register("delete_connection", delete_connection)
        self.toolbox.register("rewire_connection", rewire_connection)
        self.toolbox.register("add_node", add_node, max_hidden=rates.max_hidden)
        self.toolbox.register("delete_node", delete_node)
        self.toolbox.register("mutate_structure", mutate_structure, max_hidden=rates.max_hidden)
        self.toolbox.register("mutate_weights", mutate_weights, rate=rates.weight_rate, eta=rates.weight_eta,
                              variant=rates.weight_variant)
        self.toolbox.register("mutate_functions", mutate_functions, rate=rates.function_rate)
        self._packs: list[tuple[list[Genome], Packed]] = []  # the last few mutate() results, laid end to end

    RECENT_PACKS = 4  # a generation's batch may join several mutate() results (MAP-Elites: children + lineages)

    @classmethod
    def from_config(cls, config: EvolveSettings, image_shape: tuple[int, int, int]) -> "CPPNEncoding":
        """The encoding a config asks for (preset values fill any field left at None)."""
        c = config.resolved()
        rates = MutationRates(
            add_connection=c.cppn_add_connection, delete_connection=c.cppn_delete_connection,
            rewire_connection=c.cppn_rewire_connection, add_node=c.cppn_add_node, delete_node=c.cppn_delete_node,
            weight_rate=c.cppn_weight_rate, weight_eta=c.cppn_weight_eta, weight_variant=c.mutation,
            function_rate=c.cppn_function_rate, max_hidden=c.cppn_max_hidden,
        )
        return cls(image_shape, coords=c.cppn_coords, colour=c.colour, rates=rates, cpu_math=c.cppn_cpu_math)

    @property
    def num_outputs(self) -> int:
        return self.style.channels

    def random(self, n: int, rng: np.random.Generator) -> list:
        return [initial_genome(self.num_outputs, rng) for _ in range(n)]

    def mutate(self, genomes: list, rng: np.random.Generator, generation: int) -> list:
        tool = self.toolbox.mutate_population
        if getattr(tool, "func", None) is not mutate_population or tool.args:
            return tool(genomes, rng)  # another operator registered: no pack
        children, packed = mutate_population_packed(genomes, rng, **tool.keywords)
        if packed is not None:  # a copy of the list: the caller may change its own
            self._packs = [*self._packs[1 - self.RECENT_PACKS:], (list(children), packed)]
        return children

    def decode(self, genomes: list, device: torch.device) -> torch.Tensor:
        return render(genomes, self.style, device, packed=self._packed(genomes), cpu_math=self.cpu_math)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_packs": []}  # a copy (pickled, sent to a worker) carries no recent batches

    def _packed(self, genomes: Sequence[Genome]) -> Optional[Packed]:
        """``genomes`` laid end to end when they are recent mutate() results joined in order (the same
        genome objects: genomes are never written), else None (then drawing concatenates them)."""
        parts, at = [], 0
        for children, packed in self._packs:
            if at < len(genomes) and genomes[at:at + len(children)] == children:
                parts.append(packed)
                at += len(children)
        return Packed.join(parts) if parts and at == len(genomes) else None

    def size(self, genomes: list) -> int:
        return len(genomes)

    def pick(self, genomes: list, i: int) -> Genome:
        return genomes[i].copy()

    def stack(self, genomes: Sequence[Genome]) -> list:
        return list(genomes)

    def to_arrays(self, genomes: list) -> dict[str, np.ndarray]:
        return genomes_to_arrays(genomes, self.num_outputs)

    def from_arrays(self, arrays: dict[str, np.ndarray]) -> list:
        return genomes_from_arrays(arrays, self.num_outputs)

    def genome_json(self, genome: Genome) -> Optional[dict[str, Any]]:
        return genome_to_json(genome, self.style)

    def settings(self) -> dict[str, Any]:
        r = self.rates
        return {
            **super().settings(), "coords": self.style.coords, "colour": self.style.colour,
            "inputs": list(INPUT_NAMES), "functions": list(FUNCTION_NAMES),
            "output": "function of the output node (evolved like hidden ones), then |v|",
            "weight_range": WEIGHT_RANGE,
            "add_connection": r.add_connection, "delete_connection": r.delete_connection,
            "rewire_connection": r.rewire_connection, "add_node": r.add_node, "delete_node": r.delete_node,
            "weight_rate": r.weight_rate, "weight_eta": r.weight_eta, "weight_mutation": r.weight_variant,
            "function_rate": r.function_rate, "max_hidden": r.max_hidden,
        }
