"""DEAP's creator types, created once for the whole package."""

from __future__ import annotations

import copy
from typing import Any

from deap import base, creator


class GenomeHolder:
    """A DEAP individual that wraps one genome of any encoding (``.genome``)."""

    def __init__(self, genome: Any = None) -> None:
        self.genome = genome

    def __deepcopy__(self, memo: dict) -> "GenomeHolder":
        clone = type(self)(copy.deepcopy(self.genome, memo))
        clone.fitness = copy.deepcopy(self.fitness, memo)  # type: ignore[attr-defined]
        return clone


if not hasattr(creator, "FoolingFitness"):
    creator.create("FoolingFitness", base.Fitness, weights=(1.0,))
if not hasattr(creator, "FoolingIndividual"):
    creator.create("FoolingIndividual", GenomeHolder, fitness=creator.FoolingFitness)

Fitness = creator.FoolingFitness
Individual = creator.FoolingIndividual
