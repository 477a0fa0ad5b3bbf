"""Observers of the evolution loop (EvoTorch's hooks, pyribs' scheduler callbacks).

The loop body of :meth:`fooling.run.EvolutionRun.run` is ask -> decode -> objective.fitness -> tell,
then every hook is told about the generation, in order:

1. the run's built-in hooks: :class:`MetricsRows` (a metrics.csv row per generation), the progress bar,
   :class:`Snapshots` (``--snapshot-every``) and :class:`Checkpoints` (``--checkpoint-every`` generations at least
   ``--checkpoint-seconds`` apart, and the last generation: state, metrics.csv, elites/, summary.json);
2. ``run.hooks`` (hooks attached to the run object);
3. the ``hooks`` given to that :meth:`~fooling.run.EvolutionRun.run` call.

So a user's hook sees the generation after it was checkpointed. A hook may also ask the run to pause
(:meth:`Hook.should_stop`), which stops it like ``--generations`` would, with stop_reason "interrupted"
and a checkpoint: :class:`StopAfter` runs a run a slice at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional

if TYPE_CHECKING:
    from .evolve import EvolutionRun


@dataclass(frozen=True)
class GenerationRecord:
    """What one generation did. ``stop_reason`` is None while the run goes on, else why it stops after this
    generation (budget | until | interrupted)."""

    generation: int
    evaluations: int  # images scored since the run began
    new_evaluations: int  # images scored in this generation
    coverage: float
    median_confidence: float
    max_confidence: float
    elapsed_s: float
    stop_reason: Optional[str] = None

    @property
    def last(self) -> bool:
        """True for the generation the run stops after."""
        return self.stop_reason is not None

    def metrics_row(self) -> dict[str, Any]:
        """metrics.csv's row for this generation."""
        return {"generation": self.generation, "evaluations": self.evaluations,
                "coverage": round(self.coverage, 6), "median_confidence": round(self.median_confidence, 8),
                "max_confidence": round(self.max_confidence, 8), "elapsed_s": round(self.elapsed_s, 3)}


class Hook:
    """An observer of an evolution run; every method is optional (the defaults do nothing)."""

    def on_start(self, run: "EvolutionRun") -> None:
        """Before the first generation of a :meth:`~fooling.run.EvolutionRun.run` call."""

    def should_stop(self, run: "EvolutionRun", generation: int) -> bool:
        """Whether the run should pause after ``generation`` (asked before the hooks hear of it; also asked
        with the last finished generation before the first one runs)."""
        return False

    def after_generation(self, run: "EvolutionRun", record: GenerationRecord) -> None:
        """After ``record.generation`` was told to the strategy (the archive holds its elites)."""

    def on_end(self, run: "EvolutionRun", stop_reason: Optional[str]) -> None:
        """When the :meth:`~fooling.run.EvolutionRun.run` call ends, however it ends (stop_reason "error" for
        an exception)."""


def check_hooks(hooks: Iterable[Any]) -> list[Any]:
    """``hooks`` as a list; a TypeError naming the first that is neither a :class:`Hook` nor has its four methods."""
    hooks = list(hooks)
    for hook in hooks:
        if not isinstance(hook, Hook) and not all(
                callable(getattr(hook, m, None)) for m in ("on_start", "should_stop", "after_generation", "on_end")):
            raise TypeError(f"hooks must be fooling.run.hooks.Hook objects (subclass Hook: every method is "
                            f"optional), not {type(hook).__name__}")
    return hooks


class StopAfter(Hook):
    """Pause the run after generation ``generation`` (checkpointed, stop_reason "interrupted")."""

    def __init__(self, generation: int) -> None:
        self.generation = generation

    def should_stop(self, run: "EvolutionRun", generation: int) -> bool:
        return generation >= self.generation


class MetricsRows(Hook):
    """Collects a metrics.csv row per generation; :class:`Checkpoints` writes them (and keeps them in the
    checkpoint) when it checkpoints."""

    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []

    def on_start(self, run: "EvolutionRun") -> None:
        self.pending = []

    def after_generation(self, run: "EvolutionRun", record: GenerationRecord) -> None:
        self.pending.append(record.metrics_row())

    def take(self) -> list[dict[str, Any]]:
        """The rows since the last call (and forget them)."""
        rows, self.pending = self.pending, []
        return rows


class Snapshots(Hook):
    """Every ``every`` generations, the elites as RUN_DIR/snapshots/<generation>/."""

    def __init__(self, every: int) -> None:
        self.every = every

    def after_generation(self, run: "EvolutionRun", record: GenerationRecord) -> None:
        if self.every and record.generation % self.every == 0:
            run.write_elites(run.rundir.snapshots / str(record.generation))


class Checkpoints(Hook):
    """The checkpoint (with ``metrics``' rows since the previous one), metrics.csv, elites/ and summary.json:
    after the last generation, and every ``every`` generations once ``seconds`` have passed since the run's last
    checkpoint in this process (none yet: at once). A checkpoint costs about the same whatever the generation
    costs, so a count of generations alone would checkpoint a GPU run of small generations many times a
    second; a crash loses at most ``seconds`` plus ``every`` generations of work. All but the last are written
    while the run goes on with ``--checkpoint-background``."""

    def __init__(self, every: int, metrics: MetricsRows, seconds: float = 0.0) -> None:
        self.every = every
        self.seconds = seconds
        self.metrics = metrics

    def due(self, run: "EvolutionRun", record: GenerationRecord) -> bool:
        """Whether ``record``'s generation is checkpointed."""
        if record.last:
            return True
        if record.generation % self.every:
            return False
        last = run.checkpointed_at
        return last is None or time.monotonic() - last >= self.seconds

    def after_generation(self, run: "EvolutionRun", record: GenerationRecord) -> None:
        if self.due(run, record):
            run.stop_reason = record.stop_reason
            run.checkpoint(self.metrics.take(), background=not record.last and run.config.checkpoint_background)
            run.abort_if_requested(record.stop_reason)
