"""Running things: the evolution loop and the gradient ascent loop (they write through fooling.rundir)."""

from .evolve import EvolutionRun, evolve

__all__ = ["EvolutionRun", "evolve"]
