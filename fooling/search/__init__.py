"""Search strategies: MAP-Elites over classes, SNES emitters per class inside it (the default), a single-target GA (ask/tell), gradient ascent."""

from .base import Strategy
from .cppn_weight_es import CppnWeightEs
from .ga import GeneticAlgorithm
from .map_elites import MapElites
from .snes_elites import SnesElites

__all__ = ["CppnWeightEs", "GeneticAlgorithm", "MapElites", "SnesElites", "Strategy"]
