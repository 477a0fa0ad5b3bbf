"""Search strategies: MAP-Elites over classes, a single-target GA (ask/tell), gradient ascent."""

from .base import Strategy
from .ga import GeneticAlgorithm
from .map_elites import MapElites

__all__ = ["GeneticAlgorithm", "MapElites", "Strategy"]
