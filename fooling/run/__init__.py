"""Running things: the evolution loop, checkpoints, the run directory, progress."""

from .evolve import EvolutionRun, evolve
from .rundir import RunDirectory

__all__ = ["EvolutionRun", "RunDirectory", "evolve"]
