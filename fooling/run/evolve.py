"""The one evolution loop: ask -> decode -> objective.fitness -> tell -> hooks (metrics, progress, snapshots,
checkpoints: :mod:`fooling.run.hooks`).

``EvolutionRun.start(config)`` begins a run in a new directory;
``EvolutionRun.resume(path)`` continues one from its last checkpoint. A resumed
run ends with exactly the archive an uninterrupted run with the same seed and
device would have.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import shlex
import signal
import sys
import time
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch

from .. import __version__
from ..archive import Archive
from ..classifiers import Classifier, get_spec, load_classifier, resolve_device
from ..classifiers.fingerprint import RECORD_KEY, check_fingerprints, fingerprints
from ..classifiers.sources import describe_sources
from ..settings.evolve import (IMAGENET_CLASSES, NETWORK_RESOLVED, PLACEMENT_SETTINGS, PRESET_FILLED, RESUME_SETTINGS,
                               SINCE, EvolveSettings, Network, check_run_size, ignored_class_settings)
from ..encodings import Encoding, make_encoding
from ..errors import FoolingError
from ..hostwork import host_threads
from ..paths import not_a_run_directory
from ..imaging import to_uint8
from ..objective import EliteRescorer, Objective, image_shape, trusted_passed
from ..objective.eot import EOT
from ..progress import Progress
from ..rundir.checkpoint import STATE, PreparedCheckpoint, load_checkpoint, prepare_checkpoint, remove_superseded
from ..rundir.lock import RunLock
from ..rundir.writer import RunDirectory, median_and_max, unused_path
from ..search import CppnWeightEs, GeneticAlgorithm, MapElites, SnesElites, Strategy
from .class_metrics import ClassMetrics
from .hooks import Checkpoints, GenerationRecord, Hook, MetricsRows, Snapshots, StopAfter, check_hooks
from .seeding import make_generator, make_rngs
from .summary import class_record, run_summary

DECODE_CHUNK = 64  # elites decoded at a time when writing PNGs
# a checkpoint is written in the background (the run goes on) when the state it must copy for that is at most
# this big: a late ImageNet checkpoint's few hundred changed 786 kB rows; a first one (every row of the bank and of
# snes-elites' means and step sizes: 2.4 GB at 256 px) is written before the run goes on, with no copy
BACKGROUND_BYTES = 512 << 20
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
STOP_REASONS = ("budget", "until", "interrupted", "error")
CHECKPOINT_FIELDS = {"evaluations": (int,), "elapsed_s": (int, float), "strategy": (dict,)}
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"

_run_log = logging.getLogger("fooling.run")


class _Abort(BaseException):
    """A second stop signal: leave at once, without finishing the generation (the last checkpoint stands)."""


def _check_arrays(arrays: dict[str, np.ndarray], folder: Path) -> None:
    """Refuse NaN or infinite values where a checkpoint cannot hold them (-inf: an empty cell's fitness)."""
    occupied = None
    if "archive.fitness" in arrays and np.issubdtype(arrays["archive.fitness"].dtype, np.floating):
        occupied = np.isfinite(arrays["archive.fitness"])
    for key, value in arrays.items():
        if not np.issubdtype(value.dtype, np.floating):
            continue
        nan, inf = np.isnan(value), np.isinf(value)
        if "fitness" in key:
            bad = nan | (inf & (value > 0))
        elif key == "archive.scores" and occupied is not None and value.ndim == 2 and len(value) == len(occupied):
            bad = inf | (nan & occupied[:, None])  # rows of empty cells hold NaN
        else:
            bad = nan | inf
        if bad.any():
            raise FoolingError(f"corrupt checkpoint in {folder}: {key} holds NaN or infinite values")


def evolved_image_shape(config: EvolveSettings, classifier: Classifier) -> tuple[int, int, int]:
    """(C, H, W) of the evolved images: --image-size, else :func:`fooling.objective.image_shape`'s rule, but for
    CPPNs with ``cppn_size`` "input" (runs begun before CPPNs were drawn at the resize side) the network's input."""
    if config.image_size:
        return (classifier.input_shape[0], config.image_size, config.image_size)
    if config.encoding == "cppn" and config.cppn_size == "input":
        return tuple(classifier.input_shape)
    return image_shape(classifier)


def network_of(names: Sequence[str], classifiers: Sequence[Classifier]) -> Network:
    """What the preset needs to know of a run's loaded networks (:data:`~fooling.settings.evolve.IMAGENET_PRESETS`):
    whether the first is an ImageNet one (IMAGENET_CLASSES classes, or the registry's dataset says imagenet, as
    for the 1001 classes of a network `fool retrain` widened) and whether every one takes crops of a larger
    image (what ``crops=10`` needs: :attr:`Classifier.takes_crops`)."""
    first = classifiers[0]
    imagenet = first.num_classes == IMAGENET_CLASSES or get_spec(names[0]).dataset == "imagenet"
    return Network(imagenet=imagenet, takes_crops=all(c.takes_crops for c in classifiers))


def default_out(config: EvolveSettings) -> Path:
    """runs/<model>_<encoding>_s<seed>, with -2, -3, … appended if taken."""
    return unused_path(f"{config.model_names[0].replace(':', '-')}_{config.encoding}_s{config.seed}")


def _versions() -> dict[str, str]:
    import deap

    return {"fooling": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "deap": getattr(deap, "__version__", "?"), "python": sys.version.split()[0]}


class EvolutionRun:
    """A run in progress: its config, directory, classifiers, encoding, archive and strategy.

    While a process works on the run it holds the run directory's lock (:mod:`fooling.rundir.lock`) and logs to
    RUN_DIR/log.txt through :mod:`logging`: from :meth:`start` / :meth:`resume` to the end of :meth:`run`
    (or :meth:`close`).
    """

    def __init__(self, config: EvolveSettings, rundir: RunDirectory) -> None:
        self.config = config
        self.rundir = rundir
        self.device = resolve_device(config.device)
        if config.workers:
            from ..distributed.ray_setup import require_ray

            require_ray("--workers")  # before anything is loaded or written
        # the EvaluatorPool (fooling.distributed.pool) while run() scores on Ray actors (--workers); one set
        # before run() is used as it is and left open (several runs sharing actors: benchmarks, tests)
        self.pool: Any = None
        # a preset's crops wait for the networks (IMAGENET_PRESETS): load with 1, then score as resolved below
        self.classifiers = [load_classifier(name, self.device, config.crops or 1) for name in config.model_names]
        # what config.json's run record says the networks resolved and the preset filled (start and resume set
        # them; None: not recorded, nor written)
        self.network_resolved: Optional[tuple[str, ...]] = None
        self.preset_filled: Optional[tuple[str, ...]] = None
        config = self.config = config.resolved(network_of(config.model_names, self.classifiers))
        for classifier in self.classifiers:
            classifier.set_crops(config.crops)
        first = self.classifiers[0]
        self.labels = first.labels
        self.classes = self._classes(first.num_classes)
        self.objective = Objective(self.classifiers, self.classes, config.combine, precision=config.precision,
                                   compile=config.compile, memory_format=config.memory_format)
        if config.eot:  # --eot K: fitness is the mean confidence over K transforms, the same K for every image
            self.objective.with_eot(EOT.for_selection(config.eot, config.transforms, config.seed))
        shape = evolved_image_shape(config, first)
        check_run_size(config, shape, len(self.classes), max(c.min_image_side for c in self.classifiers))
        self.encoding: Encoding = make_encoding(config, shape, self.device)
        self.archive = Archive(self.encoding, self.classes, self.labels, device=self.device)
        rng, py_random = make_rngs(config.seed)
        generator = make_generator(config.seed, self.archive.device)
        self.strategy: Strategy
        if config.strategy == "ga":
            self.strategy = GeneticAlgorithm(self.archive, rng, py_random, mu=config.initial_population,
                                             lambda_=config.population, cxpb=config.ga_cxpb, mutpb=config.ga_mutpb,
                                             generator=generator)
        elif config.strategy == "snes-elites":
            self.strategy = SnesElites(self.archive, rng, config.population, config.initial_population,
                                       sigma=config.es_sigma, lr_mean=config.es_lr_mean, lr_sigma=config.es_lr_sigma,
                                       focus=config.es_focus, start=config.es_start, scale=config.es_scale,
                                       generator=generator)
        elif config.strategy == "cppn-weight-es":
            self.strategy = CppnWeightEs(self.archive, rng, config.population, config.initial_population,
                                         es_children=config.cppn_es_children, sigma=config.cppn_es_sigma,
                                         patience=config.cppn_es_patience, emitters=config.cppn_es_emitters,
                                         focus=config.es_focus, laggard_bias=config.laggard_bias, generator=generator)
        else:
            self.strategy = MapElites(self.archive, rng, config.population, config.initial_population,
                                      laggard_bias=config.laggard_bias, generator=generator,
                                      lineages=config.cppn_lineages, lineage_children=config.cppn_lineage_children,
                                      lineage_patience=config.cppn_lineage_patience, focus=config.es_focus)
        self.weights_sha256 = fingerprints(config.model_names, self.classifiers)
        self.evaluations = 0
        self.elapsed = 0.0
        self.stop_reason: Optional[str] = None  # budget | until | interrupted | error, once the run stops
        self.stop_signal: Optional[int] = None  # the signal that stopped it (SIGINT, SIGTERM, SIGHUP)
        self._stop_requested = False
        self._abort_requested = False  # a second signal arrived while a checkpoint was being written
        self._aborted = False  # the run left without finishing its generation (second signal)
        self._in_checkpoint = False
        self._saving: Optional[_Saving] = None  # the checkpoint being written in the background
        self._saver: Optional[ThreadPoolExecutor] = None
        self.checkpointed_at: Optional[float] = None  # time.monotonic() at the end of this process's last checkpoint
        # fitness of every cell as elites/ last showed it (None: unknown, e.g. after a resume). An elite is
        # only ever replaced by a strictly fitter one, so a changed fitness is exactly a changed elite.
        self._elites_written: Optional[np.ndarray] = None
        self._lock = RunLock(rundir.path)
        self.log = logging.Logger(f"fooling.run[{rundir.path}]", logging.INFO)  # one per run, not registered
        self.log.parent = _run_log
        self._handler: Optional[logging.Handler] = None
        self.hooks: list[Hook] = []  # observers attached to the run (after the built-in ones, see fooling.run.hooks)

    def _classes(self, num_classes: int) -> list[int]:
        cfg = self.config
        if cfg.strategy == "ga":
            chosen = [cfg.target]
        else:
            chosen = list(cfg.classes) if cfg.classes else list(range(num_classes))
        bad = [k for k in chosen if not 0 <= k < num_classes]
        if bad:
            raise FoolingError(f"class {bad[0]} does not exist: {cfg.model_names[0]} has classes 0-{num_classes - 1}")
        return chosen

    # --- the run directory's lock and log ----------------------------------------------------
    def _open(self) -> None:
        """Take the run directory's lock and attach log.txt (both no-ops if already done)."""
        self._lock.acquire()
        if self._handler is None:
            handler = logging.FileHandler(self.rundir.log_path, encoding="utf-8")
            handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))
            self.log.addHandler(handler)
            self._handler = handler

    def close(self) -> None:
        """Wait for a checkpoint being written, detach log.txt and release the lock (the run can be opened again
        by :meth:`run`)."""
        self._settle_checkpoint()
        if self._saver is not None:
            self._saver.shutdown()
            self._saver = None
        if self._handler is not None:
            self.log.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        self._lock.release()

    # --- starting and resuming ---------------------------------------------------------------
    @classmethod
    def start(cls, config: EvolveSettings) -> "EvolutionRun":
        """Validate ``config``, set up the run (models, encoding, archive), then make its run directory.

        Nothing is written before everything the run needs has been built.
        """
        resolved, filled = config.network_resolved(), config.preset_filled()  # recorded in config.json
        config = config.resolved()
        out = Path(config.out) if config.out else default_out(config)
        config = dataclasses.replace(config, out=str(out))
        rundir = RunDirectory(out)
        rundir.refuse_if_taken()  # the "already holds" error without touching anything
        run = cls(config, rundir)  # loads models: fails before any file is written
        run.network_resolved, run.preset_filled = resolved, filled
        rundir.path.mkdir(parents=True, exist_ok=True)
        run._lock.acquire()
        try:
            rundir.create(run.config_record())
            run._open()
        except BaseException:
            run.close()
            raise
        run.log.info("start: %s", " ".join(shlex.quote(a) for a in sys.argv))
        run.log.info("versions: %s; device %s", ", ".join(f"{k} {v}" for k, v in _versions().items()), run.device)
        return run

    @classmethod
    def resume(cls, path: str | Path, generations: Optional[int] = None, **changes: Any) -> "EvolutionRun":
        """Re-open a run from its last checkpoint; ``generations`` raises its total budget; ``changes``
        sets others of :data:`~fooling.settings.evolve.RESUME_SETTINGS` (until, checkpoint_every,
        checkpoint_seconds).

        Takes the run's lock, checks config.json, the checkpoint and the models' weights against each other,
        then rewrites summary.json, metrics.csv and elites/ from the checkpoint (whatever a crash left of
        them). A run killed before its first checkpoint starts again from generation 0.
        """
        fixed = sorted(set(changes) - set(RESUME_SETTINGS) - set(PLACEMENT_SETTINGS))
        if fixed and fixed[0] not in {f.name for f in dataclasses.fields(EvolveSettings)}:
            raise FoolingError(f"EvolveSettings has no setting {fixed[0]!r}")
        if fixed:  # the command line refuses them too (fooling.cli.evolve); from Python they were applied in silence
            raise FoolingError(f"{fixed[0]} cannot change on resume: the run keeps the settings in its config.json "
                               f"(only {', '.join((*RESUME_SETTINGS, *PLACEMENT_SETTINGS))} may)")
        if generations is not None and (not isinstance(generations, int) or isinstance(generations, bool)):
            raise FoolingError(f"--generations must be an integer, got {generations!r}")
        rundir = RunDirectory(path)
        if not rundir.path.is_dir():
            raise not_a_run_directory(path)
        record = rundir.read_config()
        lock = RunLock(rundir.path).acquire()
        try:
            return cls._resume(rundir, record, generations, lock, changes)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _resume(cls, rundir: RunDirectory, record: dict[str, Any], generations: Optional[int],
                lock: RunLock, changes: dict[str, Any]) -> "EvolutionRun":
        path = rundir.path
        settings = {**SINCE, **{k: v for k, v in record.items() if k != "run"}}  # older runs: as they began
        settings.update(ignored_class_settings(settings))  # older runs recorded what their strategy ignored
        config = EvolveSettings.from_json(settings, where=str(rundir.config_path)).resolved()
        network_resolved = EvolveSettings.resolved_by_run(record.get("run"), str(rundir.config_path))
        preset_filled = EvolveSettings.filled_by_run(record.get("run"), str(rundir.config_path))
        # where evaluations run is the resuming command's choice (absent: in this process), not config.json's
        placement = {name: changes.pop(name, None) for name in PLACEMENT_SETTINGS}
        changes.update(placement, workers=placement["workers"] or 0)
        if changes:
            config = dataclasses.replace(config, **changes).resolved()
        fresh = not (rundir.checkpoint / STATE).is_file()
        if fresh:
            summary = _read_json(rundir.summary_path)
            if isinstance(summary, dict) and isinstance(summary.get("generation"), int) and summary["generation"] >= 0:
                raise FoolingError(f"{path} has results up to generation {summary['generation']} but no checkpoint "
                                   f"({rundir.checkpoint / STATE} is missing); it cannot be resumed")
            arrays, values, done = {}, {}, -1
        else:
            arrays, values = load_checkpoint(rundir.checkpoint, CHECKPOINT_FIELDS)
            done = int(values["generation"])
        if generations is not None:
            if generations <= 0:
                raise FoolingError(f"--generations must be positive, got {generations}")
            if generations < done:
                raise FoolingError(f"{path} is already at generation {done}; --generations {generations} is less")
            config = dataclasses.replace(config, generations=generations)
        run = cls(config, rundir)
        run.network_resolved, run.preset_filled = network_resolved, preset_filled  # as the run recorded them
        run._lock = lock
        run._open()
        try:
            check_fingerprints(record, dict(zip(config.model_names, run.classifiers)), logger=run.log)
            if not fresh:
                run._load(arrays, values)
            rundir.remove_stale_files()
            remove_superseded(rundir.checkpoint, None if fresh else values)
            rundir.write_config(run.config_record())
            run._restore_outputs(values, fresh)
        except BaseException:
            run.close()
            raise
        if fresh:
            run.log.info("resume: no checkpoint yet; starting again from generation 0 (budget %d)", config.generations)
        else:
            run.log.info("resume at generation %d (budget %d)", done, config.generations)
        return run

    def _load(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        """Put a loaded checkpoint into the archive and strategy, after checking it belongs to this run."""
        folder = self.rundir.checkpoint
        if values.get("legacy"):
            self.log.warning("checkpoint written before checkpoints were checksummed: loaded unverified")
        expected = {"models": self.config.model_names, "encoding": self.config.encoding,
                    "classes": [int(k) for k in self.classes]}
        for key, want in expected.items():
            if key in values and values[key] != want:
                raise FoolingError(f"checkpoint in {folder} does not fit this run: it has {key} {values[key]}, "
                                   f"config.json says {want}")
        _check_arrays(arrays, folder)
        try:
            self.archive.load_state_dict({k[8:]: v for k, v in arrays.items() if k.startswith("archive.")})
            self.strategy.load_state_dict({k[9:]: v for k, v in arrays.items() if k.startswith("strategy.")},
                                          values["strategy"])
        except (KeyError, ValueError, TypeError, IndexError, AttributeError, RuntimeError) as err:
            message = " ".join(str(err).split())[:200]
            raise FoolingError(f"checkpoint in {folder} does not fit this run: {type(err).__name__}: {message}") \
                from None
        if self.strategy.generation != int(values["generation"]) + 1:
            raise FoolingError(f"checkpoint in {folder} does not fit this run: its strategy is at generation "
                               f"{self.strategy.generation - 1}, state.json says {values['generation']}")
        self.evaluations = int(values["evaluations"])
        self.elapsed = float(values["elapsed_s"])

    def _restore_outputs(self, values: dict[str, Any], fresh: bool) -> None:
        """summary.json, metrics.csv and elites/ exactly as the checkpoint in ``values`` had them written."""
        rows = [r for r in values.get("metrics", []) if isinstance(r, dict)]
        done = int(values.get("generation", -1))
        keep_through = done
        if rows:
            try:
                keep_through = int(rows[0]["generation"]) - 1
            except (KeyError, TypeError, ValueError):
                raise FoolingError(f"corrupt checkpoint in {self.rundir.checkpoint}: bad metrics rows") from None
        self.rundir.restore_metrics(keep_through, rows)
        self._elites_written = None
        self.write_elites()
        if not fresh:
            self.stop_reason = self._reason(done)
            self.rundir.write_summary(self.summary())
            self.stop_reason = None

    def config_record(self) -> dict[str, Any]:
        """config.json: every setting, plus versions, device, the encoding's own settings and weights SHA-256."""
        return {**self.config.to_json(), "run": {
            "command": "evolve", "versions": _versions(), "device": str(self.device),
            "encoding_settings": self.encoding.settings(), "num_classes": len(self.labels),
            "memory_formats": {c.name: c.memory_format for c in self.classifiers},  # what --memory-format became
            RECORD_KEY: dict(self.weights_sha256), **describe_sources(self.config.model_names),
            **({} if self.network_resolved is None else {NETWORK_RESOLVED: list(self.network_resolved)}),
            **({} if self.preset_filled is None else {PRESET_FILLED: list(self.preset_filled)}),
        }}

    # --- the loop ------------------------------------------------------------------------------
    def _request_stop(self, signum: int, frame: Any) -> None:
        """First signal: finish the generation, checkpoint, stop. Second: stop at once (the last checkpoint stands)."""
        if self._aborted:  # already leaving at once: more signals change nothing
            return
        if self._stop_requested:
            if self._in_checkpoint:  # let the checkpoint finish: it is written in a crash-safe order anyway
                self._abort_requested = True
                return
            self._aborted = True
            raise _Abort
        self._stop_requested = True
        self.stop_signal = signum

    def _reason(self, generation: int, hooks: Sequence[Hook] = ()) -> Optional[str]:
        """Why the run stops after ``generation`` (None: it goes on); ``hooks`` may ask for a pause."""
        if self.reached_goal:
            return "until"
        if generation >= self.config.generations:
            return "budget"
        paused = any([h.should_stop(self, generation) for h in hooks])  # every hook is asked
        if self._stop_requested or paused:
            return "interrupted"
        return None

    def abort_if_requested(self, reason: Optional[str]) -> None:
        """After a checkpoint: a second stop signal that arrived while it was written stops the run now."""
        if self._abort_requested and reason is None:
            self._aborted = True
            raise _Abort

    def run(self, progress: bool = True, stop_after: Optional[int] = None,
            hooks: Iterable[Hook] = ()) -> dict[str, Any]:
        """Evolve until the budget; returns summary.json's contents.

        Each generation: ask -> decode -> objective.fitness -> tell, then the hooks hear of it: the built-in
        ones (metrics rows, progress bar, snapshots, checkpoints), then :attr:`hooks`, then ``hooks`` given
        here (see :mod:`fooling.run.hooks`). ``stop_after``: pause after that generation (a
        :class:`~fooling.run.hooks.StopAfter` hook).

        The first SIGINT / SIGTERM / SIGHUP finishes the current generation, checkpoints and returns; a second
        one returns at once, leaving the last checkpoint (``interrupted`` is then True either way).
        An unexpected exception is logged with its traceback, marked in summary.json (stop_reason "error")
        and raised again.

        The loop is :meth:`begin`, then :meth:`propose` / score / :meth:`accept` while :attr:`pending` is None,
        then :meth:`conclude`: :class:`fooling.run.multi.RunGroup` steps several runs through the same calls
        with one forward pass for all.
        """
        self.begin(progress, stop_after, hooks)
        previous = {s: signal.signal(s, self._request_stop) for s in STOP_SIGNALS} if _main_thread() else {}
        try:
            self.start_hooks()
            with self.scaled_out():
                while self.pending is None:
                    if self.pool is None:
                        genomes, images = self.propose()
                        fitness, scores = self.objective.fitness_tensor(images)  # stay on the device
                    else:  # --workers: Ray actors vary (from the plan), decode and score; same values
                        with self.bookkeeping():
                            plan = self.strategy.plan()
                            genomes = self.strategy.ask() if plan is None else self.strategy.take(plan)
                        fitness, scores = self.pool.fitness(genomes, self.encoding.size(genomes), plan=plan,
                                                            source=self.strategy)
                    self.accept(genomes, fitness, scores)
            self.conclude()
        except _Abort:
            self.abort()
        except BaseException as err:
            self.fail(err, previous)
            raise
        return self.end(previous)

    @contextlib.contextmanager
    def scaled_out(self) -> Iterator[Any]:
        """With ``--workers N``: Ray connected (:func:`~fooling.distributed.ray_setup.connected`) and
        :attr:`pool` an :class:`~fooling.distributed.pool.EvaluatorPool` for the block, both closed after it;
        without: nothing (the in-process objective scores)."""
        cfg = self.config
        if not cfg.workers or self.pool is not None:
            yield self.pool
            return
        import os

        from ..distributed.pool import EvaluatorPool
        from ..distributed.ray_setup import connected

        local_cpus = None if cfg.ray_address or cfg.gpus_per_worker else max(os.cpu_count() or 1, cfg.workers)
        with connected("--workers", cfg.ray_address, num_cpus=local_cpus) as ray:
            started = time.perf_counter()
            pool = EvaluatorPool(ray, cfg, self.encoding.image_shape, self.classes, cfg.workers, self.device,
                                 cfg.gpus_per_worker, encoding=self.encoding)
            self.log.info("workers: %d Ray actors (%s) ready in %.1f s", pool.workers,
                          ", ".join(f"{i['device']} on {i['node']}" for i in pool.info), time.perf_counter() - started)
            self.pool = pool
            try:
                yield pool
            finally:
                self.pool = None
                t = pool.traffic
                self.log.info("workers: %d generations, %.0f bytes sent and %.0f received per generation; "
                              "%d actors replaced", t.generations, t.per_generation()["sent"],
                              t.per_generation()["received"], t.replaced)
                pool.close()

    # --- one generation at a time (the loop of run(), and of fooling.run.multi's lockstep driver) ------
    def begin(self, progress: bool = True, stop_after: Optional[int] = None, hooks: Iterable[Hook] = ()) -> None:
        """Take the lock, build the hooks of this run() call and reset the stop state (no signal handlers)."""
        cfg = self.config
        metrics = MetricsRows()
        self._every: list[Hook] = [metrics, _ProgressBar(progress), Snapshots(cfg.snapshot_every),
                                   Checkpoints(cfg.checkpoint_every, metrics, cfg.checkpoint_seconds), ClassMetrics(),
                                   *self.hooks, *check_hooks(hooks)]
        if stop_after is not None:
            self._every.append(StopAfter(stop_after))
        self._open()
        self.stop_reason, self.stop_signal = None, None
        self._stop_requested = self._abort_requested = self._aborted = False
        self._started = time.perf_counter() - self.elapsed
        self._ran = False
        self.pending: Optional[str] = "error"  # why the run stops after its last generation; None: it goes on

    def start_hooks(self) -> None:
        """The hooks' on_start, then whether the run goes on at all (:attr:`pending`)."""
        for hook in self._every:
            hook.on_start(self)
        self.pending = self._reason(self.strategy.generation - 1, self._every)

    def propose(self) -> tuple[Any, torch.Tensor]:
        """(genomes, images (N, C, H, W) on the device) of the next generation: ask, then decode."""
        with self.bookkeeping():
            genomes = self.strategy.ask()
            return genomes, self.encoding.decode(genomes, self.device)

    def bookkeeping(self) -> contextlib.AbstractContextManager[None]:
        """The intra-op threads of this run's host work (ask, decode, tell), by the size of a generation's
        images: one thread for small ones (MNIST), all for big ones (:func:`fooling.hostwork.host_threads`)."""
        return host_threads(self.device, self.config.population * math.prod(self.encoding.image_shape))

    def accept(self, genomes: Any, fitness: torch.Tensor, scores: Optional[torch.Tensor]) -> None:
        """Tell the strategy the generation's fitness (N, cells) (and ensemble scores (N, cells, M)), then
        the hooks (metrics, progress, checkpoints, ...); sets :attr:`pending`."""
        generation = self.strategy.generation
        with self.bookkeeping():
            self.strategy.tell(genomes, _no_nan(fitness), None if scores is None else _no_nan(scores))
        n = self.encoding.size(genomes)
        self.evaluations += n
        self.elapsed = time.perf_counter() - self._started
        median, best = median_and_max(self.archive.fitness)
        self.pending = reason = self._reason(generation, self._every)
        record = GenerationRecord(generation, self.evaluations, n, self.archive.coverage, median, best,
                                  self.elapsed, reason)
        self._ran = True
        for hook in self._every:
            hook.after_generation(self, record)

    def conclude(self) -> None:
        """The loop ended normally: record why (a run that ran no generation still writes its summary)."""
        self.stop_reason = self.pending
        if not self._ran:  # stopped before any generation: the summary still says why
            self.rundir.write_summary(self.summary())

    def abort(self) -> None:
        """A second stop signal left the generation unfinished: the last checkpoint stands."""
        self._aborted, self.stop_reason = True, "interrupted"
        self._settle_checkpoint()
        self.log.warning("second stop signal during generation %d: stopped without finishing it; "
                         "the checkpoint of generation %s stands", self.strategy.generation,
                         self._checkpointed_generation())
        self._mark_summary("interrupted")

    def fail(self, err: BaseException, previous: dict[int, Any]) -> None:
        """An exception stopped the run: log it, mark summary.json (not for KeyboardInterrupt and the like:
        no more writes), then :meth:`end`; the caller raises it again."""
        self.stop_reason = "error"
        self._settle_checkpoint()
        if isinstance(err, Exception):
            self.log.exception("error during generation %d: %s", self.strategy.generation, err)
            try:
                self._mark_summary("error")
            finally:
                self._finish(self._every, previous)
        else:  # e.g. KeyboardInterrupt outside the main thread
            self.log.error("stopped by %s during generation %d", type(err).__name__, self.strategy.generation)
            self._finish(self._every, previous)

    def end(self, previous: dict[int, Any]) -> dict[str, Any]:
        """Hooks' on_end, the stop line in log.txt, the lock released; returns the summary."""
        self._finish(self._every, previous)
        if self._aborted:
            return self._disk_summary() or self.summary()
        return self.summary()

    def _finish(self, hooks: Sequence[Hook], previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        try:
            for hook in hooks:
                hook.on_end(self, self.stop_reason)
        finally:
            if self.stop_reason != "error":
                self.log.info("stopped: %s", self.stop_message())
            self.close()


    def stop_message(self) -> str:
        """Why the run stopped, in words: 'budget reached', 'every class reached 0.99', 'interrupted', ..."""
        done = self._checkpointed_generation() if self._aborted else self.strategy.generation - 1
        if self.stop_reason == "budget":
            return f"budget reached (generation {done})"
        if self.stop_reason == "until":
            return f"every class reached {self.config.until} at generation {done}"
        if self.stop_reason == "interrupted":
            if self.stop_signal is not None:
                how = f"interrupted by {signal.Signals(self.stop_signal).name}"
            else:
                how = "interrupted" if self._stop_requested or self._aborted else "paused"
            if self._aborted:
                how += " twice, stopped without finishing the generation"
            return f"{how}; checkpointed generation {done}" if done is not None and done >= 0 else \
                f"{how} before the first checkpoint"
        return str(self.stop_reason)

    def _checkpointed_generation(self) -> Optional[int]:
        summary = self._disk_summary()
        return summary.get("generation") if summary else None

    def _disk_summary(self) -> Optional[dict[str, Any]]:
        value = _read_json(self.rundir.summary_path)
        return value if isinstance(value, dict) else None

    def _mark_summary(self, reason: str) -> None:
        """Set summary.json's stop_reason (its results stay those of the last checkpoint); none yet: nothing."""
        summary = self._disk_summary()
        if summary is not None:
            summary["stop_reason"], summary["finished"] = reason, False
            self.rundir.write_summary(summary)

    @property
    def reached_goal(self) -> bool:
        """True once every class is at ``--until`` or above (never without --until)."""
        until = self.config.until
        return until is not None and bool(np.all(self.archive.fitness >= until))

    @property
    def interrupted(self) -> bool:
        """True if a signal (Ctrl-C, SIGTERM, SIGHUP) stopped the last :meth:`run`."""
        return self._stop_requested or self._aborted

    @property
    def finished(self) -> bool:
        return self.stop_reason in ("budget", "until")

    # --- outputs -------------------------------------------------------------------------------
    def checkpoint(self, rows: list[dict[str, Any]], background: bool = False) -> None:
        """Checkpoint the state after the last finished generation: the save, the elites that changed, then
        metrics and summary.

        The state, the elites' pictures and the summary are taken now; the save (hashing, then waiting on the
        disk) runs in a thread beside the elite PNGs (drawing and deflating, on the CPU). ``background``: the
        run goes on meanwhile (when the copies that needs come to at most :data:`BACKGROUND_BYTES`); the next
        checkpoint, or the end of the run, first waits for it (:meth:`wait_for_checkpoint`) and raises its error.
        state.json keeps ``rows`` (the metrics since the previous checkpoint), so a crash before metrics.csv
        loses nothing, and elites/ written ahead of a save that never finished is no harm: a resume rewrites
        metrics.csv, elites/ and summary.json from the checkpoint. summary.json (whose generation the stop
        message reports as checkpointed) is written only once the save is durable.
        """
        started = time.perf_counter()
        self._in_checkpoint = True
        try:
            self.wait_for_checkpoint()
            generation = self.strategy.generation - 1
            arrays = {f"archive.{k}": v for k, v in self.archive.state_dict(rows=True).items()}
            strategy_arrays, strategy_values = self.strategy.state_dict()
            arrays.update({f"strategy.{k}": v for k, v in strategy_arrays.items()})
            values = {"evaluations": self.evaluations, "elapsed_s": self.elapsed, "strategy": strategy_values,
                      "models": self.config.model_names, "encoding": self.config.encoding,
                      "classes": [int(k) for k in self.classes], "metrics": rows}
            prepared = prepare_checkpoint(self.rundir.checkpoint, generation, arrays, values,
                                          detach_bytes=BACKGROUND_BYTES if background else 0)
            saving = _Saving(generation, started, prepared, self._elite_files(), rows, self.summary())
            if background and prepared.detached:
                if self._saver is None:
                    self._saver = ThreadPoolExecutor(1, thread_name_prefix="fooling-checkpoint")
                saving.future = self._saver.submit(saving.write, self.rundir)
                self._saving = saving
            else:
                saving.write(self.rundir)
                self._saved(saving)
        finally:
            self._in_checkpoint = False
        self.checkpointed_at = time.monotonic()

    def wait_for_checkpoint(self) -> None:
        """Return once the checkpoint being written in the background (if any) is durable; raise its error."""
        saving = self._saving
        if saving is None:
            return
        try:
            saving.future.result()
        except BaseException as err:
            if saving.future.done():  # its own error, not a signal that interrupted the wait
                self._saving = None
                self.log.error("checkpoint of generation %d failed: %s", saving.generation, err)
            raise
        self._saving = None
        self._saved(saving)

    def _settle_checkpoint(self) -> None:
        """:meth:`wait_for_checkpoint` on the way out of a run: an error of that checkpoint is logged, not raised
        (the run is already stopping, for a reason of its own)."""
        saving = self._saving
        try:
            self.wait_for_checkpoint()
        except BaseException:
            if self._saving is saving:  # a signal interrupted the wait: not the checkpoint's own error
                raise

    def _saved(self, saving: "_Saving") -> None:
        """A checkpoint is durable: the owners of its arrays may trust the digests it computed."""
        saving.prepared.remember()
        self.log.info("checkpoint: generation %d (%.2f s%s)", saving.generation, time.perf_counter() - saving.started,
                      ", written while the run went on" if saving.future is not None else "")

    def _elite_files(self, folder: Optional[Path] = None) -> tuple[Any, ...]:
        """The arguments of :meth:`RunDirectory.write_elites` for :meth:`write_elites`, taken now: the pictures
        on the host, so they can be written in another thread; elites/ counts as written from here on."""
        cells = self.archive.occupied
        written = self._elites_written if folder is None else None
        if written is not None:
            cells = cells[self.archive.fitness[cells] != written[cells]]
        keys = self.archive.elite_keys()  # cells with equal keys share an elite
        unique: dict[int, int] = {}
        for c in cells:
            unique.setdefault(int(keys[c]), int(c))
        firsts = np.array(list(unique.values()), dtype=np.int64)
        images: dict[int, np.ndarray] = {}
        for start in range(0, firsts.size, DECODE_CHUNK):
            chunk = firsts[start:start + DECODE_CHUNK]
            decoded = to_uint8(self.encoding.decode(self.archive.elites(chunk), self.device))
            images.update(zip(chunk.tolist(), decoded))
        genome_json = [self.encoding.genome_json(self.archive.store.one(int(c))) for c in cells]
        pictures = [images[unique[int(keys[c])]] for c in cells]
        if folder is None:
            self._elites_written = self.archive.fitness.copy()
        return (pictures, self.archive.classes[cells], [self.archive.labels[c] for c in cells],
                np.array(self.reported_fitness()[0][cells]),
                genome_json if any(g is not None for g in genome_json) else None, folder, written is None)

    def write_elites(self, folder: Optional[Path] = None) -> None:
        """elites/<index>_<label>.png (+ .json genome where the encoding has one), or into ``folder``.

        elites/ is updated incrementally: only the classes whose elite changed since the last write get
        new files (the first write of a session rewrites all). ``folder`` (a snapshot) is written whole.
        Decodes each distinct elite once, a chunk at a time (1000 ImageNet images would not fit at once).
        """
        self.rundir.write_elites(*self._elite_files(folder))

    def summary(self) -> dict[str, Any]:
        """summary.json: machine-readable results of the run so far (:func:`fooling.run.summary.run_summary`)."""
        archive = self.archive
        fitness, scores = self.reported_fitness()
        low = self.config.precision != "fp32"
        median, best = median_and_max(fitness)
        classes = []
        for cell, k in enumerate(archive.classes):
            filled = bool(np.isfinite(archive.fitness[cell]))
            confidence = float(fitness[cell]) if filled else None
            passed = archive.milestones.passed_record(cell)
            entry = class_record(int(k), archive.labels[cell], confidence,
                                 int(archive.generation_found[cell]) if filled else None,
                                 trusted_passed(passed, confidence) if low else passed)
            if scores is not None and filled:
                entry["scores"] = dict(zip(self.config.model_names, map(float, scores[cell])))
            if low and filled:
                entry[f"confidence_{self.config.precision}"] = float(archive.fitness[cell])
            classes.append(entry)
        return run_summary(
            generation=self.strategy.generation - 1, evaluations=self.evaluations, elapsed_s=self.elapsed,
            models=self.config.model_names, encoding=self.config.encoding, strategy=self.config.strategy,
            preset=self.config.preset, seed=self.config.seed, coverage=archive.coverage, median_confidence=median,
            max_confidence=best, stop_reason=self.stop_reason, classes=classes,
            extra={"precision": self.config.precision, "confidence_precision": "fp32"} if low else None)

    def reported_fitness(self) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """The elites' (fitness (cells,), ensemble scores (cells, M) or None) that summary.json and elites/
        report: the archive's own in fp32 runs; under --precision bf16 / fp16 re-scored in fp32
        (:class:`~fooling.objective.EliteRescorer`, only the elites that changed since the last call)."""
        if self.config.precision == "fp32":
            return self.archive.fitness, self.archive.scores
        if getattr(self, "_rescorer", None) is None:
            self._rescorer = EliteRescorer(self.objective)
        return self._rescorer.update(self.archive.fitness,
                                     lambda cells: self.encoding.decode(self.archive.elites(cells), self.device))


class _Saving:
    """One checkpoint taken at ``generation``: its save, the elite files and rows of metrics that changed,
    and the summary, written in this order of durability by :meth:`write` (in any thread)."""

    def __init__(self, generation: int, started: float, prepared: PreparedCheckpoint, elites: tuple[Any, ...],
                 rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
        self.generation, self.started, self.prepared = generation, started, prepared
        self.elites, self.rows, self.summary = elites, rows, summary
        self.future: Optional[futures.Future[None]] = None  # set when written in the background

    def write(self, rundir: RunDirectory) -> None:
        """The save in a thread of its own while the elite PNGs are written, then metrics.csv and summary.json
        (only once the save is durable)."""
        with ThreadPoolExecutor(1, thread_name_prefix="fooling-save") as saver:
            saving = saver.submit(self.prepared.commit)
            try:
                rundir.write_elites(*self.elites)
            finally:
                futures.wait([saving])  # an error of the elites is raised before one of the save
            saving.result()
        rundir.append_metrics(self.rows)
        rundir.write_summary(self.summary)


class _ProgressBar(Hook):
    """The progress bar (or plain progress lines) of :class:`~fooling.progress.Progress`."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Optional[Progress] = None

    def on_start(self, run: EvolutionRun) -> None:
        self.bar = Progress(run.config.generations, run.strategy.generation, enabled=self.enabled)

    def after_generation(self, run: EvolutionRun, record: GenerationRecord) -> None:
        assert self.bar is not None
        self.bar.update(record.generation, record.new_evaluations, run.archive.occupied.size, len(run.archive),
                        record.median_confidence, record.max_confidence, force=record.last)

    def on_end(self, run: EvolutionRun, stop_reason: Optional[str]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _no_nan(values: torch.Tensor) -> torch.Tensor:
    """NaN scores (a broken classifier output) count as -inf: such an image never becomes an elite.
    On the tensor's device, without reading anything back."""
    return values.masked_fill(torch.isnan(values), -np.inf)


def _read_json(path: Path) -> Any:
    """A JSON file's value; None if missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def evolve(config: EvolveSettings, progress: bool = False) -> dict[str, Any]:
    """Run ``config`` to the end in a new run directory; returns the summary."""
    return EvolutionRun.start(config).run(progress=progress)
