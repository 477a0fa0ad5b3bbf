"""``fool sweep``: a grid of ordinary evolution runs, one run directory per point under DIR, re-runnable.

Each point of the grid (:class:`~fooling.settings.sweep.SweepSettings`) is one
:class:`~fooling.settings.evolve.EvolveSettings`, run exactly as ``fool evolve`` with those settings would run it,
in ``DIR/<name>``. Names hold the model entry, the encoding and the seed, plus the strategy and the preset when
the sweep has them as axes: ``mnist-lenet_direct_s0``, ``mnist-lenet+mnist-lenet-b-min_cppn_s3`` (an
ensemble's networks joined by '+', its combine rule appended), ``mnist-lenet_direct_map-elites_paper_s1``.

DIR/sweep.json records the grid. Running a sweep again into the same DIR (or ``fool sweep --resume DIR``)
skips the finished points (summary.json: budget or --until reached), resumes the interrupted ones from their
checkpoints, starts the others, and reports those a live process holds (never touches them). A grid may grow
(more seeds, models, ...: the points it adds are started) and its budget may change (generations, until,
checkpoint_every, checkpoint_seconds, checkpoint_background: each run resumes with the new one); any other change
is refused in one line.

Points run one after another in this process, or as Ray tasks (one run per task, to completion, in a worker
process with its own device; a local instance of ``workers`` concurrent runs, or the cluster at
``ray_address``). A point that fails is reported (its reason in one line) and the others go on.
"""

from __future__ import annotations

import json
import math
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..classifiers import get_spec
from ..classifiers.sources import canonical_names, is_source, short_name
from ..errors import FoolingError
from ..progress import ItemProgress
from ..rundir import atomic
from ..rundir.lock import lock_holder
from ..settings.evolve import RESUME_SETTINGS, EvolveSettings, ignored_class_settings
from ..settings.sweep import SWEEP_FILE, SweepSettings
from ..rundir.reader import read_json_object
from .evolve import STOP_SIGNALS, _main_thread

SOURCE_SETTINGS = ("input", "mean", "std", "labels")  # how a model file takes its input (as fool evolve)
CANCEL_WAIT_S = 30.0  # after Ctrl-C, how long the driver waits for cancelled tasks to checkpoint and stop


@dataclass(frozen=True)
class Point:
    """One run of the grid: its directory's name and its settings (``out`` = DIR/name, absolute)."""

    name: str
    config: EvolveSettings


@dataclass
class Outcome:
    """What became of one point. action: started | resumed | skipped (finished before) | busy (a live process
    holds it) | failed | interrupted | not run (the sweep stopped first). summary: its summary.json (None if it
    has none); error: why it failed, one line."""

    name: str
    path: Path
    action: str
    summary: Optional[dict[str, Any]] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        """The run is finished (budget or --until reached)."""
        return bool(self.summary and self.summary.get("stop_reason") in ("budget", "until")) and self.error is None


# --- the grid ----------------------------------------------------------------------------------
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+=-]+", "-", text).strip("-") or "x"


def point_name(sweep: SweepSettings, models: list[str], encoding: str, strategy: Optional[str],
               preset: Optional[str], combine: str, seed: int) -> str:
    """DIR/<name> of a point: model entry, encoding, [strategy], [preset], s<seed> (see the module's text)."""
    model = "+".join(_safe(short_name(m)) for m in models) + (f"-{combine}" if len(models) > 1 else "")
    parts = [model, encoding]
    if sweep.strategies is not None:
        parts.append(str(strategy))
    if sweep.presets is not None:
        parts.append(str(preset))
    return "_".join(parts + [f"s{seed}"])


def expand(sweep: SweepSettings) -> list[Point]:
    """Every point of the grid, each config checked (settings, model names) before anything is made; models
    outermost, seeds innermost. A bad setting, unknown network or impossible combination: one line."""
    sweep.validate()
    out = Path(sweep.out).expanduser().absolute()
    base = sweep.settings
    sources = {k: base.get(k) for k in SOURCE_SETTINGS}
    combines = sweep.combines or [base.get("combine", EvolveSettings.combine)]
    points: list[Point] = []
    for entry in sweep.models:
        own = any(is_source(n) for n in entry)  # --input, --mean ... describe model sources: theirs only
        names = canonical_names(entry, **sources) if own else list(entry)
        for name in names:
            try:
                get_spec(name)  # an unknown network: one line naming close matches
            except FoolingError:
                raise
            except Exception as err:  # a python: model that cannot be built, ...
                raise FoolingError(f"--models {name}: {one_line(err)}") from None
        for encoding in sweep.encodings:
            for strategy in sweep.strategies or [None]:
                for preset in sweep.presets or [None]:
                    for combine in combines if len(names) > 1 else [base.get("combine", EvolveSettings.combine)]:
                        for seed in sweep.seeds:
                            name = point_name(sweep, entry, encoding, strategy, preset, combine, seed)
                            values = {**base, "model": names[0], "models": names if len(names) > 1 else None,
                                      "encoding": encoding, "strategy": strategy, "combine": combine,
                                      "seed": seed, "out": str(out / name)}
                            if preset is not None:
                                values["preset"] = preset
                            values.update(ignored_class_settings(values))  # target: ga points'; classes: others'
                            if not own:
                                values.update(dict.fromkeys(SOURCE_SETTINGS))
                            elif base.get("labels"):
                                values["labels"] = str(Path(base["labels"]).expanduser().absolute())
                            config = EvolveSettings(**values)
                            try:
                                config.resolved()
                            except FoolingError as err:
                                raise FoolingError(f"sweep point {name}: {err}") from None
                            points.append(Point(name, config))
    seen: dict[str, Point] = {}
    for point in points:
        if point.name in seen:
            raise FoolingError(f"two points of the grid would share the run directory {point.name}: "
                               f"{point.config.model_names} and {seen[point.name].config.model_names}")
        seen[point.name] = point
    return points


def read_record(out: Path) -> Optional[dict[str, Any]]:
    """DIR/sweep.json, or None if there is none; one line if it cannot be read."""
    path = out / SWEEP_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as err:
        raise FoolingError(f"{path} is not a readable sweep record ({type(err).__name__})") from None
    if not isinstance(record, dict) or record.get("command") != "sweep" or "grid" not in record:
        raise FoolingError(f"{path} is not a sweep record")
    return record


def recorded(out: str | Path) -> SweepSettings:
    """The sweep recorded in DIR/sweep.json (``fool sweep --resume DIR``)."""
    folder = Path(out)
    record = read_record(folder)
    if record is None:
        raise FoolingError(f"{folder} holds no {SWEEP_FILE}: it is not the folder of a sweep")
    return SweepSettings.from_grid_json(record["grid"], str(folder), str(folder / SWEEP_FILE))


def prepare(sweep: SweepSettings) -> list[Point]:
    """Expand and check the grid against DIR/sweep.json (same grid or more points only), then write sweep.json.
    Refuses a DIR that holds other things than this sweep's (a non-empty folder without sweep.json)."""
    points = expand(sweep)
    out = Path(sweep.out)
    record = read_record(out) if out.is_dir() else None
    if record is None and out.exists():
        if not out.is_dir():
            raise FoolingError(f"--out {out} is a file, not a folder")
        if any(out.iterdir()):
            raise FoolingError(f"{out} is not empty and holds no {SWEEP_FILE}: give a new folder (or the folder "
                               f"of a sweep) as --out")
    if record is not None:
        before = SweepSettings.from_grid_json(record["grid"], str(out), str(out / SWEEP_FILE))
        why = sweep.extends(before)
        if why is not None:
            raise FoolingError(f"{out} holds a different sweep ({why}); a sweep may only add points to it: use "
                               f"another --out, or `fool sweep --resume {out}` to continue it")
    from ..paths import check_writable_dir

    check_writable_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write(out / SWEEP_FILE, json.dumps({"command": "sweep", "grid": sweep.grid_json(),
                                               "runs": [p.name for p in points]}, indent=2) + "\n")
    return points


# --- one point ---------------------------------------------------------------------------------
def state(path: Path, generations: int) -> str:
    """new (no run yet) | busy (a live process holds it) | done (finished with this budget) | resume."""
    if not (path / "config.json").is_file():
        return "new"
    if lock_holder(path) is not None:
        return "busy"
    summary = read_json_object(path / "summary.json") or {}
    reason, generation = summary.get("stop_reason"), summary.get("generation")
    if reason == "until" or (reason == "budget" and isinstance(generation, int) and generation >= generations):
        return "done"
    return "resume"


def one_line(err: BaseException) -> str:
    """An exception as one line: a FoolingError's message, else 'TypeName: first line'."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, FoolingError):
        return text or "error"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_point(config: dict[str, Any], changes: dict[str, Any], progress: bool = False) -> Outcome:
    """Run one point to the end (start, resume or skip it) in this process; never raises but for
    KeyboardInterrupt. ``config``: its EvolveSettings as JSON; ``changes``: the budget settings a resumed run takes
    (:data:`~fooling.settings.evolve.RESUME_SETTINGS`). This is also the body of each Ray task."""
    from .evolve import EvolutionRun

    settings = EvolveSettings.from_json(config)
    path = Path(str(settings.out))
    name = path.name
    now = state(path, settings.generations)
    if now == "busy":
        return Outcome(name, path, "busy", read_json_object(path / "summary.json"),
                       f"in use by process {lock_holder(path)}; not touched")
    if now == "done":
        return Outcome(name, path, "skipped", read_json_object(path / "summary.json"))
    action = "started" if now == "new" else "resumed"
    try:
        if now == "new":
            run = EvolutionRun.start(settings)
        else:
            run = EvolutionRun.resume(path, changes.get("generations"),
                                      **{k: v for k, v in changes.items() if k != "generations"})
        summary = run.run(progress=progress)
    except Exception as err:  # one point's failure is reported; the sweep goes on
        return Outcome(name, path, "failed", read_json_object(path / "summary.json"), one_line(err))
    if run.interrupted:
        return Outcome(name, path, "interrupted", summary, run.stop_message())
    return Outcome(name, path, action, summary)


# --- the drivers ---------------------------------------------------------------------------------
def _changes(sweep: SweepSettings) -> dict[str, Any]:
    return {k: sweep.settings[k] for k in RESUME_SETTINGS if k in sweep.settings}


DONE = {"started": "finished", "resumed": "resumed and finished", "skipped": "skipped (finished before)"}


def done_line(outcome: Outcome) -> str:
    """A progress line for a point that has come back: what became of it ('NAME finished', 'NAME failed')."""
    return f"{outcome.name} {DONE.get(outcome.action, outcome.action)}"


def _sequential(points: list[Point], changes: dict[str, Any], bar: ItemProgress) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for i, point in enumerate(points):
        outcome = run_point(point.config.to_json(), changes)
        outcomes.append(outcome)
        bar.done(done_line(outcome))
        if outcome.action == "interrupted":  # Ctrl-C: the run checkpointed and stopped; so does the sweep
            outcomes += [Outcome(p.name, Path(str(p.config.out)), "not run") for p in points[i + 1:]]
            break
    return outcomes


def _ray_tasks(sweep: SweepSettings, points: list[Point], changes: dict[str, Any],
               bar: ItemProgress) -> list[Outcome]:
    from ..distributed.ray_setup import connected

    option = "--ray-address" if sweep.ray_address else "--workers"
    cpus = sweep.cpus_per_run
    local_cpus = None if sweep.ray_address else max(1, math.ceil((sweep.workers or 1) * cpus))
    with connected(option, sweep.ray_address, num_cpus=local_cpus) as ray:
        resources = ray.cluster_resources()
        gpus = sweep.gpus_per_run if sweep.gpus_per_run is not None else (1.0 if resources.get("GPU", 0) >= 1 else 0)
        for what, need, key in (("--gpus-per-run", gpus, "GPU"), ("--cpus-per-run", cpus, "CPU")):
            if need > resources.get(key, 0):
                raise FoolingError(f"{what} {need:g} is more than the Ray cluster has ({resources.get(key, 0):g} "
                                   f"{key}s): no run could start")
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(run_point)
        pending = {task.remote(p.config.to_json(), changes): p for p in points}
        outcomes: dict[str, Outcome] = {}
        previous = {s: signal.signal(s, _interrupt) for s in STOP_SIGNALS} if _main_thread() else {}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    point = pending.pop(ref)
                    outcomes[point.name] = _result(ray, ref, point)
                    bar.done(done_line(outcomes[point.name]))
        except KeyboardInterrupt:  # cancel every task: a running one stops like a Ctrl-C'd run (checkpoint kept)
            for ref in pending:
                ray.cancel(ref)
            deadline = time.monotonic() + CANCEL_WAIT_S
            for ref, point in pending.items():
                try:
                    ready, _ = ray.wait([ref], timeout=max(0.0, deadline - time.monotonic()))
                except KeyboardInterrupt:  # again: wait for none of the others
                    ready, deadline = [], time.monotonic()
                outcome = _result(ray, ref, point) if ready else None
                if outcome is None or outcome.action == "failed":
                    outcome = Outcome(point.name, Path(str(point.config.out)), "interrupted",
                                      read_json_object(Path(str(point.config.out)) / "summary.json"), "cancelled")
                outcomes[point.name] = outcome
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    return [outcomes[p.name] for p in points]


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM and SIGHUP stop the driver like Ctrl-C (as they stop `fool evolve`)."""
    raise KeyboardInterrupt


def _result(ray: Any, ref: Any, point: Point) -> Outcome:
    """A finished task's outcome; a task that died (worker lost, cancelled) as a failed point."""
    path = Path(str(point.config.out))
    try:
        return ray.get(ref)
    except Exception as err:
        cause = getattr(err, "cause", None)
        return Outcome(point.name, path, "failed", read_json_object(path / "summary.json"),
                       one_line(cause if isinstance(cause, BaseException) else err))


def sweep(settings: SweepSettings, progress: bool = False,
          on_start: Optional[Callable[[list[Point]], None]] = None) -> list[Outcome]:
    """Run the grid of ``settings`` (see the module's text); one :class:`Outcome` per point, in grid order.

    Everything is checked, and a missing Ray named, before any folder is made. on_start: called with the points
    once DIR/sweep.json is written (the command line prints what it is about to do)."""
    if settings.uses_ray:
        from ..distributed.ray_setup import require_ray

        require_ray("--ray-address" if settings.ray_address else "--workers")
    points = prepare(settings)
    if on_start is not None:
        on_start(points)
    changes = _changes(settings)
    with ItemProgress(len(points), "runs", quiet=not progress) as bar:
        if settings.uses_ray:
            return _ray_tasks(settings, points, changes, bar)
        return _sequential(points, changes, bar)
