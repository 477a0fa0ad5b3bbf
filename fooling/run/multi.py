"""Several evolution runs stepped in lockstep, with one forward pass for all (``fool evolve --seeds 0-4``).

A :class:`RunGroup` is N ordinary :class:`~fooling.run.evolve.EvolutionRun` objects (each with its own strategy,
archive, generator, hooks, run directory, lock and log), one per seed, in ``OUT/s<seed>/``; with
``--encodings direct,cppn`` one per encoding and seed, in ``OUT/<encoding>_s<seed>/`` (each encoding with its
own preset values, as a lone run of it would have; one forward pass for the runs whose images have one size). Each generation the
driver asks every run that goes on for its images (:meth:`~fooling.run.evolve.EvolutionRun.propose`),
scores them all in one call of ``objective.fitness_tensor``, splits the fitness back and hands each run its
share (:meth:`~fooling.run.evolve.EvolutionRun.accept`: tell, metrics, checkpoints, ...). A run that stops
(budget, ``--until``) drops out of the batch; the others go on.

So each run directory is an ordinary run: ``fool evolve --resume OUT/s1`` continues it alone, and
``fool evolve --resume OUT`` continues the whole group (OUT/group.json names its members).

Exactness: with one objective call for all (``one_pass``, the default on CUDA) a member ends exactly as the
same seed run alone would whenever the classifiers' per-image outputs do not depend on the batch they are
computed in (true of elementwise models such as the tests' oracle; real networks' kernels pick other
algorithms for other batch sizes: mnist-lenet's confidences then differ from a lone run's in the 7th digit,
and the runs drift apart). With one call per run (the default on CPU, where a forward pass is chunked at
CPU_MAX_CHUNK images anyway) every member is bit-identical to its lone run with any classifier; the group
then only steps the runs together (no speed-up on CPU).
"""

from __future__ import annotations

import dataclasses
import json
import signal
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import torch

from ..errors import FoolingError
from ..limits import MAX_GROUP_RUNS, MAX_SEEDS
from ..rundir import atomic
from ..rundir.writer import unused_path
from ..settings.evolve import EvolveSettings
from .evolve import STOP_SIGNALS, EvolutionRun, _Abort, _main_thread
from .hooks import Hook

GROUP_FILE = "group.json"  # OUT/group.json: {"command": "evolve", "seeds": [...], "encodings": [...], "runs": [...]}

HookSource = Union[Iterable[Hook], Callable[[EvolutionRun], Iterable[Hook]]]


def member_name(seed: int, encoding: Optional[str] = None) -> str:
    """The run directory of ``seed`` inside a group's folder: s<seed>, or <encoding>_s<seed> in a grid of encodings."""
    return f"s{seed}" if encoding is None else f"{encoding}_s{seed}"


def parse_seeds(spec: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,2,7' and '0-2,5' too. Empty, descending or repeated: FoolingError."""
    seeds: list[int] = []
    for part in spec.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise FoolingError(f"--seeds takes seeds and ranges such as 0-4 or 0,2,7, got {spec!r}")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise FoolingError(f"--seeds range {part} runs backwards; write {last}-{first}")
        if len(seeds) + last - first + 1 > MAX_SEEDS:
            raise FoolingError(f"--seeds {spec} names more than {MAX_SEEDS:,} seeds")
        seeds.extend(range(first, last + 1))
    if len(set(seeds)) != len(seeds):
        raise FoolingError(f"--seeds {spec} names a seed twice")
    return seeds


def is_group(path: str | Path) -> bool:
    """Whether ``path`` is the folder of a group of runs (group.json, no config.json of its own)."""
    folder = Path(path)
    return (folder / GROUP_FILE).is_file() and not (folder / "config.json").exists()


def default_group_out(config: EvolveSettings) -> Path:
    """runs/<model>_<encoding>_seeds<first>-<last>, with -2, -3, ... appended if taken."""
    seeds = config.seeds or [config.seed]
    span = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    encodings = "+".join(config.encodings or [config.encoding])
    return unused_path(f"{config.model_names[0].replace(':', '-')}_{encodings}_seeds{span}")


def member_configs(config: EvolveSettings, out: Path) -> list[EvolveSettings]:
    """One config per seed of ``config.seeds`` (and per encoding of ``config.encodings``, encoding-major), as that
    run alone would be given it (checked: it resolves to the preset's values for its encoding), out=OUT/<member_name>.
    Left unresolved, so that each run records what it left to its preset (config.json's preset_filled)."""
    assert config.seeds
    grid = config.encodings is not None
    members = [dataclasses.replace(config, encoding=encoding, seed=seed, seeds=None, encodings=None,
                                   out=str(out / member_name(seed, encoding if grid else None)))
               for encoding in (config.encodings or [config.encoding]) for seed in config.seeds]
    for member in members:
        member.resolved()
    return members


class RunGroup:
    """Runs of the same settings but their seeds (and encodings), stepped together with one forward pass per
    generation."""

    def __init__(self, path: Path, runs: list[EvolutionRun], one_pass: Optional[bool] = None) -> None:
        self.path = path
        self.runs = runs
        # one_pass: all runs' images in one objective call (the point on a GPU); False: one call per run, so
        # each run is bit-identical to a lone run with any classifier. Default: one pass on CUDA only (a CPU
        # forward pass runs in chunks of at most CPU_MAX_CHUNK images anyway: nothing to gain there).
        self.one_pass = runs[0].device.type == "cuda" if one_pass is None else one_pass
        self._stop_requested = False
        self._abort_requested = False  # a second signal arrived while some run wrote a checkpoint

    # --- starting and resuming ---------------------------------------------------------------
    @classmethod
    def start(cls, config: EvolveSettings, one_pass: Optional[bool] = None) -> "RunGroup":
        """New run directories OUT/s<seed> for each of ``config.seeds``, and OUT/group.json.

        Refuses an OUT that exists (``--out`` of a group names a new folder). The first run is built before
        anything is written, so a bad setting leaves nothing behind."""
        config.validate()
        if not config.seeds:
            raise FoolingError("a group of runs needs seeds (--seeds 0-4)")
        count = len(config.seeds) * len(config.encodings or [config.encoding])
        if count > MAX_GROUP_RUNS:
            raise FoolingError(f"--seeds makes {count:,} runs stepped together, more than the {MAX_GROUP_RUNS} a group "
                               "may have; use fewer seeds, or `fool sweep` to run them one after another")
        out = Path(config.out) if config.out else default_group_out(config)
        if out.exists():
            raise FoolingError(f"{out} already exists; --seeds makes a new folder of run directories: pick another "
                               f"--out (or continue a group with `fool evolve --resume {out}`)")
        runs: list[EvolutionRun] = []
        try:
            members = member_configs(config, out)
            for i, member in enumerate(members):
                runs.append(EvolutionRun.start(member))
                if i == 0:
                    atomic.write(out / GROUP_FILE, json.dumps(
                        {"command": "evolve", "seeds": list(config.seeds),
                         "encodings": [m.encoding for m in members[::len(config.seeds)]],
                         "runs": [Path(m.out or "").name for m in members]}, indent=2) + "\n")
        except BaseException:
            for run in runs:
                run.close()
            raise
        return cls(out, runs, one_pass)

    @classmethod
    def resume(cls, path: str | Path, generations: Optional[int] = None, one_pass: Optional[bool] = None,
               **changes: Any) -> "RunGroup":
        """Re-open every run of the group in ``path`` from its last checkpoint (see
        :meth:`EvolutionRun.resume`; ``generations`` and ``changes`` apply to each)."""
        folder = Path(path)
        try:
            record = json.loads((folder / GROUP_FILE).read_text())
            names = [str(n) for n in record["runs"]]
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
            raise FoolingError(f"{folder / GROUP_FILE} is not a readable group of runs ({type(err).__name__})") \
                from None
        runs: list[EvolutionRun] = []
        try:
            for name in names:
                runs.append(EvolutionRun.resume(folder / name, generations, **changes))
        except BaseException:
            for run in runs:
                run.close()
            raise
        return cls(folder, runs, one_pass)

    def close(self) -> None:
        for run in self.runs:
            run.close()

    # --- the lockstep loop -------------------------------------------------------------------
    def _request_stop(self, signum: int, frame: Any) -> None:
        """First signal: every run that goes on finishes the generation, checkpoints and stops. Second: stop
        at once (after any checkpoint being written: those are written in a crash-safe order anyway)."""
        if any(run._aborted for run in self.runs):
            return
        if self._stop_requested:
            if any(run._in_checkpoint for run in self.runs):
                self._abort_requested = True
                return
            raise _Abort
        self._stop_requested = True
        for run in self.runs:
            if run.pending is None:
                run._stop_requested, run.stop_signal = True, signum

    def run(self, progress: bool = True, stop_after: Optional[int] = None,
            hooks: HookSource = ()) -> list[dict[str, Any]]:
        """Evolve every run until it stops; returns their summaries (in the group's order).

        progress: a progress bar for the first run. hooks: hooks every run is given (each hook then sees every
        run), or a function run -> that run's own hooks (e.g. one TensorBoard writer each)."""
        for i, run in enumerate(self.runs):
            run.begin(progress and i == 0, stop_after, hooks(run) if callable(hooks) else hooks)
        self._stop_requested = self._abort_requested = False
        previous = {s: signal.signal(s, self._request_stop) for s in STOP_SIGNALS} if _main_thread() else {}
        self._current: Optional[EvolutionRun] = None  # the run being told its generation
        try:
            for run in self.runs:
                run.start_hooks()
            while True:
                stepping = [run for run in self.runs if run.pending is None]
                if not stepping:
                    break
                self._step(stepping)
            for run in self.runs:
                run.conclude()
        except _Abort:
            for run in self.runs:
                if run.pending is None:  # its generation was not finished (or not checkpointed as its last)
                    run.abort()
                else:
                    run.conclude()
        except BaseException as err:
            self._restore(previous)
            for run in self.runs:
                if run.pending is None or run is self._current:
                    run.fail(err, {})
                else:
                    run.conclude()
                    run.end({})
            raise
        self._restore(previous)
        return [run.end({}) for run in self.runs]

    def _step(self, stepping: list[EvolutionRun]) -> None:
        """One generation of each of ``stepping``: their images in one forward pass, then each run's tell."""
        proposals = [run.propose() for run in stepping]
        if self.one_pass and len(proposals) > 1 and len({images.shape[1:] for _, images in proposals}) == 1:
            sizes = [int(images.shape[0]) for _, images in proposals]
            fitness, scores = stepping[0].objective.fitness_tensor(torch.cat([images for _, images in proposals]))
            fitnesses: Any = fitness.split(sizes)
            score_parts: Any = scores.split(sizes) if scores is not None else [None] * len(sizes)
        else:
            scored = [run.objective.fitness_tensor(images) for run, (_, images) in zip(stepping, proposals)]
            fitnesses, score_parts = [f for f, _ in scored], [s for _, s in scored]
        for run, (genomes, _), part, score in zip(stepping, proposals, fitnesses, score_parts):
            self._current = run
            run.accept(genomes, part, score)
            self._current = None
            if self._abort_requested:
                raise _Abort

    @staticmethod
    def _restore(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    # --- what the runs say -------------------------------------------------------------------
    @property
    def evaluations(self) -> int:
        """Images scored by all runs together."""
        return sum(run.evaluations for run in self.runs)

    @property
    def interrupted(self) -> bool:
        return any(run.interrupted for run in self.runs)
