"""Search strategies: MAP-Elites over classes, SNES emitters per class inside it (the default), a single-target GA (ask/tell), gradient ascent."""

from .base import Strategy
from .ga import GeneticAlgorithm
from .map_elites import MapElites
from .snes_elites import SnesElites

__all__ = ["GeneticAlgorithm", "MapElites", "SnesElites", "Strategy"]
