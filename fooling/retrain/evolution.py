"""One iteration's evolution: several runs against one network, sampled at snapshots into pools
(a :class:`SnapshotPool` hook on each evolution run).

Each run lives in its own evolve run directory (``run_<r>/``) next to its pool
(``pool_<r>.npz``). An interrupted run resumes from its checkpoint; a resumed run
snapshots at the same generations as an uninterrupted one, so it yields the
same pool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..settings.evolve import CPPN_CPU_MATHS, MEMORY_FORMATS, SINCE, EvolveSettings
from ..run import EvolutionRun
from ..progress import continued
from ..run.hooks import GenerationRecord, Hook
from ..rundir.reader import read_json_object
from .pool import Pool, snapshot
from ..settings.retrain import RetrainSettings


class Interrupted(Exception):
    """Ctrl-C stopped an evolution run; its checkpoint and pool are on disk."""


@dataclass
class Evolved:
    """What evolving against one network gave: each run's pool and summary.json."""

    pools: list[Pool]
    summaries: list[dict[str, Any]]

    def best_per_class(self) -> dict[int, float]:
        """Class index -> the best confidence any run reached for it (0.0 if no run filled the cell)."""
        best: dict[int, float] = {}
        for summary in self.summaries:
            for entry in summary["classes"]:
                best[entry["index"]] = max(best.get(entry["index"], 0.0), entry["confidence"] or 0.0)
        return best

    @property
    def pool(self) -> Pool:
        return Pool.concat(self.pools)


def _is_snapshot(generation: int, settings: RetrainSettings) -> bool:
    return generation > 0 and (generation % settings.snapshot_every == 0 or generation == settings.generations)


class SnapshotPool(Hook):
    """Adds the run's new, confident elites to ``pool`` (saved to ``path``) at every snapshot generation.

    It hears of a generation after the run checkpointed it; a run killed in between takes the missed snapshot
    when it resumes (:func:`evolve_run`).
    """

    def __init__(self, settings: RetrainSettings, pool: Pool, path: Path) -> None:
        self.settings = settings
        self.pool = pool
        self.path = path

    def after_generation(self, run: EvolutionRun, record: GenerationRecord) -> None:
        if _is_snapshot(record.generation, self.settings):
            self.take(run)

    def take(self, run: EvolutionRun) -> None:
        """Snapshot the archive's elites (as 8-bit images) into the pool now, and save it."""
        self.pool = snapshot(run, self.pool, self.settings.min_confidence)
        self.pool.save(self.path)


def _open(settings: RetrainSettings, model: str, classes: list[int], seed: int, folder: Path) -> EvolutionRun:
    """Resume the run in ``folder`` if it was started (one killed before its first checkpoint resumes from
    generation 0), else start it there."""
    # every snapshot generation is checkpointed before the snapshot is taken (no time floor), which is what lets
    # a killed run take a missed snapshot when it resumes
    if (folder / "config.json").is_file():
        return EvolutionRun.resume(folder, checkpoint_seconds=0)
    config = EvolveSettings(
        model=model, classes=classes, encoding=settings.encoding, preset=settings.preset,
        generations=settings.generations, population=settings.population, seed=seed, device=settings.device,
        checkpoint_every=settings.snapshot_every, checkpoint_seconds=0, image_size=settings.image_size,
        cppn_size=settings.cppn_size, out=str(folder), **experiment_settings(folder.parent.parent),
    )
    return EvolutionRun.start(config)


# settings of an experiment's evolve runs that its first run fixes for the rest, and the values each may take
EXPERIMENT_SETTINGS: dict[str, tuple[Any, ...]] = {"crops": (1, 10), "cppn_cpu_math": CPPN_CPU_MATHS,
                                                   "memory_format": MEMORY_FORMATS}


def experiment_settings(root: Path) -> dict[str, Any]:
    """The settings of :data:`EXPERIMENT_SETTINGS` as the first evolve run of the experiment in ``root``
    (ITER/run_R/config.json) recorded them, a key it lacks as runs begun before the setting existed had it
    (:data:`~fooling.settings.evolve.SINCE`); {} before it has a run (the preset and the defaults decide). So every
    run of an experiment scores and draws alike, also one begun when the paper preset scored ImageNet networks over
    one crop, or CPPNs were drawn with PyTorch's functions."""
    for path in sorted(root.glob("iter_*/run_*/config.json")):
        record = read_json_object(path)
        if record is None:
            continue
        values = {key: record.get(key, SINCE.get(key)) for key in EXPERIMENT_SETTINGS}
        return {key: value for key, value in values.items() if _valid(key, value)}  # a bad one: the default's
    return {}


def _valid(key: str, value: Any) -> bool:
    return type(value) in (int, str) and value in EXPERIMENT_SETTINGS[key]  # (JSON's true is not the crops 1)


def evolve_run(settings: RetrainSettings, model: str, classes: list[int], seed: int, folder: Path,
               pool_path: Path, progress: bool) -> tuple[Pool, dict[str, Any]]:
    """Run (or finish) the evolve run in ``folder``, snapshotting its elites into ``pool_path``.

    Returns (pool, summary.json's contents).
    """
    run = _open(settings, model, classes, seed, folder)
    pool: Optional[Pool] = Pool.load(pool_path) if pool_path.is_file() else None
    if pool is None or run.strategy.generation == 0:
        pool = Pool.empty(run.encoding.image_shape)
    hook = SnapshotPool(settings, pool, pool_path)
    done = run.strategy.generation - 1
    if _is_snapshot(done, settings) and pool.upto < done:  # killed between checkpoint and snapshot
        hook.take(run)
    if run.strategy.generation <= settings.generations:
        with continued():
            run.run(progress=progress, hooks=[hook])
        if run.interrupted:
            raise Interrupted(str(folder))
    else:
        run.close()
    return hook.pool, run.summary()


def evolve_iteration(settings: RetrainSettings, iteration: int, model: str, classes: list[int], folder: Path,
                     progress: bool) -> Evolved:
    """All runs of one iteration against ``model`` in ``folder`` (finished runs are only read back)."""
    folder.mkdir(parents=True, exist_ok=True)
    pools, summaries = [], []
    for r in range(settings.runs_per_iteration):
        run_dir, pool_path = folder / f"run_{r}", folder / f"pool_{r}.npz"
        summary_path = run_dir / "summary.json"
        if pool_path.is_file() and summary_path.is_file():
            pool = Pool.load(pool_path)
            if pool.upto == settings.generations:
                pools.append(pool)
                summaries.append(json.loads(summary_path.read_text()))
                continue
        seed = settings.run_seed(iteration, r)
        pool, summary = evolve_run(settings, model, classes, seed, run_dir, pool_path, progress)
        pools.append(pool)
        summaries.append(summary)
    return Evolved(pools, summaries)



def read_pool(folder: Path, runs: int) -> Pool:
    """The fooling images of a finished iteration in ``folder`` (all its runs' pools)."""
    return Pool.concat([Pool.load(folder / f"pool_{r}.npz") for r in range(runs)])
