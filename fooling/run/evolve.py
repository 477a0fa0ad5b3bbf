"""The one evolution loop: ask -> decode -> score -> tell, with checkpoints and outputs.

``EvolutionRun.start(config)`` begins a run in a new directory;
``EvolutionRun.resume(path)`` continues one from its last checkpoint. A resumed
run ends with exactly the archive an uninterrupted run with the same seed and
device would have.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .. import __version__
from ..archive import THRESHOLDS, Archive
from ..classifiers import Classifier, get_spec, load_classifier, resolve_device
from ..settings.evolve import EvolveSettings, check_run_size
from ..encodings import Encoding, make_encoding
from ..errors import FoolingError
from ..imaging import to_uint8
from ..search import GeneticAlgorithm, MapElites, Strategy
from .checkpoint import load_checkpoint, save_checkpoint
from .progress import Progress
from .rundir import RunDirectory, median_and_max, unused_path
from .scoring import Scorer
from .seeding import make_rngs

DECODE_CHUNK = 64  # elites decoded at a time when writing PNGs


def image_shape_for(config: EvolveSettings, classifier: Classifier, dataset: str) -> tuple[int, int, int]:
    """(C, H, W) of the evolved images: --image-size, else 256 for direct ImageNet (the paper), else the net's input."""
    channels = classifier.input_shape[0]
    if config.image_size:
        return (channels, config.image_size, config.image_size)
    if dataset == "imagenet" and config.encoding == "direct":
        return (channels, 256, 256)
    return classifier.input_shape


def default_out(config: EvolveSettings) -> Path:
    """runs/<model>_<encoding>_s<seed>, with -2, -3, … appended if taken."""
    return unused_path(f"{config.model_names[0].replace(':', '-')}_{config.encoding}_s{config.seed}")


def _versions() -> dict[str, str]:
    import deap

    return {"fooling": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "deap": getattr(deap, "__version__", "?"), "python": sys.version.split()[0]}


class EvolutionRun:
    """A run in progress: its config, directory, classifiers, encoding, archive and strategy."""

    def __init__(self, config: EvolveSettings, rundir: RunDirectory) -> None:
        self.config = config
        self.rundir = rundir
        self.device = resolve_device(config.device)
        self.classifiers = [load_classifier(name, self.device, config.crops) for name in config.model_names]
        first = self.classifiers[0]
        self.labels = first.labels
        self.classes = self._classes(first.num_classes)
        self.scorer = Scorer(self.classifiers, self.classes, config.combine)
        shape = image_shape_for(config, first, get_spec(config.model_names[0]).dataset)
        check_run_size(config, shape, len(self.classes), max(c.min_image_side for c in self.classifiers))
        self.encoding: Encoding = make_encoding(config, shape)
        self.archive = Archive(self.encoding, self.classes, self.labels)
        rng, py_random = make_rngs(config.seed)
        self.strategy: Strategy
        if config.strategy == "ga":
            self.strategy = GeneticAlgorithm(self.archive, rng, py_random, mu=config.initial_population,
                                             lambda_=config.population, cxpb=config.ga_cxpb, mutpb=config.ga_mutpb)
        else:
            self.strategy = MapElites(self.archive, rng, config.population, config.initial_population,
                                      laggard_bias=config.laggard_bias)
        self.evaluations = 0
        self.elapsed = 0.0
        self._stop_requested = False
        # fitness of every cell as elites/ last showed it (None: unknown, e.g. after a resume). An elite is
        # only ever replaced by a strictly fitter one, so a changed fitness is exactly a changed elite.
        self._elites_written: Optional[np.ndarray] = None

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

    # --- starting and resuming ---------------------------------------------------------------
    @classmethod
    def start(cls, config: EvolveSettings) -> "EvolutionRun":
        """Validate ``config``, make its run directory and set up the run (nothing evaluated yet)."""
        config = config.resolved()
        out = Path(config.out) if config.out else default_out(config)
        config = dataclasses.replace(config, out=str(out))
        rundir = RunDirectory(out)
        if rundir.path.exists() and (not rundir.path.is_dir() or any(rundir.path.iterdir())):
            rundir.create({})  # raises the "already holds" error without touching anything
        run = cls(config, rundir)  # loads models: fails before any file is written
        rundir.create(run.config_record())
        rundir.log(f"start: {' '.join(sys.argv)}")
        return run

    @classmethod
    def resume(cls, path: str | Path, generations: Optional[int] = None, **changes: Any) -> "EvolutionRun":
        """Re-open a run from its last checkpoint; ``generations`` raises its total budget; ``changes``
        sets others of :data:`~fooling.settings.evolve.RESUME_SETTINGS` (until, checkpoint_every)."""
        rundir = RunDirectory(path)
        record = rundir.read_config()
        settings = {k: v for k, v in record.items() if k != "run"}
        config = EvolveSettings.from_json(settings).resolved()
        if changes:
            config = dataclasses.replace(config, **changes).resolved()
        arrays, values = load_checkpoint(rundir.checkpoint)
        done = int(values["generation"])
        if generations is not None:
            if generations <= 0:
                raise FoolingError(f"--generations must be positive, got {generations}")
            if generations < done:
                raise FoolingError(f"{path} is already at generation {done}; --generations {generations} is less")
            config = dataclasses.replace(config, generations=generations)
        run = cls(config, rundir)
        try:
            run.archive.load_state_dict({k[8:]: v for k, v in arrays.items() if k.startswith("archive.")})
            run.strategy.load_state_dict({k[9:]: v for k, v in arrays.items() if k.startswith("strategy.")},
                                         values["strategy"])
        except (KeyError, ValueError) as err:
            raise FoolingError(f"checkpoint in {rundir.checkpoint} does not fit this run: {err}") from None
        run.evaluations = int(values["evaluations"])
        run.elapsed = float(values["elapsed_s"])
        rundir.truncate_metrics(done)
        rundir.write_config(run.config_record())
        rundir.log(f"resume at generation {done} (budget {config.generations})")
        return run

    def config_record(self) -> dict[str, Any]:
        """config.json: every setting, plus versions, device and the encoding's own settings."""
        return {**self.config.to_json(), "run": {
            "command": "evolve", "versions": _versions(), "device": str(self.device),
            "encoding_settings": self.encoding.settings(), "num_classes": len(self.labels),
        }}

    # --- the loop ------------------------------------------------------------------------------
    def _request_stop(self, signum: int, frame: Any) -> None:
        if self._stop_requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self._stop_requested = True

    def run(self, progress: bool = True, stop_after: Optional[int] = None) -> dict[str, Any]:
        """Evolve until the budget (or generation ``stop_after``); returns summary.json's contents.

        The first Ctrl-C finishes the current generation, checkpoints and returns.
        """
        cfg = self.config
        last = cfg.generations if stop_after is None else min(stop_after, cfg.generations)
        bar = Progress(cfg.generations, self.strategy.generation, enabled=progress)
        rows: list[dict[str, Any]] = []
        previous = signal.signal(signal.SIGINT, self._request_stop) if _main_thread() else None
        started = time.perf_counter() - self.elapsed
        try:
            while self.strategy.generation <= last and not self._stop_requested and not self.reached_goal:
                generation = self.strategy.generation
                genomes = self.strategy.ask()
                images = self.encoding.decode(genomes, self.device)
                fitness, scores = self.scorer(images)
                self.strategy.tell(genomes, fitness, scores)
                n = self.encoding.size(genomes)
                self.evaluations += n
                self.elapsed = time.perf_counter() - started
                median, best = median_and_max(self.archive.fitness)
                rows.append({"generation": generation, "evaluations": self.evaluations,
                             "coverage": round(self.archive.coverage, 6), "median_confidence": round(median, 8),
                             "max_confidence": round(best, 8), "elapsed_s": round(self.elapsed, 3)})
                bar.update(generation, n, self.archive.occupied.size, len(self.archive), median, best,
                           force=generation == last)
                if cfg.snapshot_every and generation % cfg.snapshot_every == 0:
                    self.write_elites(self.rundir.snapshots / str(generation))
                if generation % cfg.checkpoint_every == 0 or generation == last:
                    self.checkpoint(rows)
                    rows = []
            if rows:
                self.checkpoint(rows)
        finally:
            bar.close()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if self._stop_requested:
            self.rundir.log(f"interrupted; checkpointed generation {self.strategy.generation - 1}")
        elif self.reached_goal:
            self.rundir.log(f"every class reached {self.config.until} at generation {self.strategy.generation - 1}")
        else:
            self.rundir.log(f"finished generation {self.strategy.generation - 1}")
        return self.summary()

    @property
    def reached_goal(self) -> bool:
        """True once every class is at ``--until`` or above (never without --until)."""
        until = self.config.until
        return until is not None and bool(np.all(self.archive.fitness >= until))

    @property
    def interrupted(self) -> bool:
        return self._stop_requested

    # --- outputs -------------------------------------------------------------------------------
    def checkpoint(self, rows: list[dict[str, Any]]) -> None:
        """Save the state after the last finished generation, then metrics, elites and summary."""
        generation = self.strategy.generation - 1
        arrays = {f"archive.{k}": v for k, v in self.archive.state_dict().items()}
        strategy_arrays, strategy_values = self.strategy.state_dict()
        arrays.update({f"strategy.{k}": v for k, v in strategy_arrays.items()})
        save_checkpoint(self.rundir.checkpoint, generation, arrays, {
            "evaluations": self.evaluations, "elapsed_s": self.elapsed, "strategy": strategy_values})
        self.rundir.append_metrics(rows)
        self.write_elites()
        self.rundir.write_summary(self.summary())

    def write_elites(self, folder: Optional[Path] = None) -> None:
        """elites/<index>_<label>_<confidence>.png (+ .json genome where the encoding has one), or into ``folder``.

        elites/ is updated incrementally: only the classes whose elite changed since the last write get
        new files (the first write of a session rewrites all). ``folder`` (a snapshot) is written whole.
        Decodes each distinct elite once, a chunk at a time (1000 ImageNet images would not fit at once).
        """
        cells = self.archive.occupied
        written = self._elites_written if folder is None else None
        if written is not None:
            cells = cells[self.archive.fitness[cells] != written[cells]]
        unique: dict[int, int] = {}
        for c in cells:
            unique.setdefault(id(self.archive.genomes[c]), int(c))
        firsts = np.array(list(unique.values()), dtype=np.int64)
        images: dict[int, torch.Tensor] = {}
        for start in range(0, firsts.size, DECODE_CHUNK):
            chunk = firsts[start:start + DECODE_CHUNK]
            decoded = to_uint8(self.encoding.decode(self.archive.elites(chunk), self.device))
            images.update(zip(chunk.tolist(), decoded))
        genome_json = [self.encoding.genome_json(self.archive.genomes[c]) for c in cells]
        pictures = [images[unique[id(self.archive.genomes[c])]] for c in cells]
        self.rundir.write_elites(pictures, self.archive.classes[cells], [self.archive.labels[c] for c in cells],
                                 self.archive.fitness[cells],
                                 genome_json if any(g is not None for g in genome_json) else None, folder,
                                 replace_all=written is None)
        if folder is None:
            self._elites_written = self.archive.fitness.copy()

    def summary(self) -> dict[str, Any]:
        """summary.json: machine-readable results of the run so far."""
        archive = self.archive
        median, best = median_and_max(archive.fitness)
        classes = []
        for cell, k in enumerate(archive.classes):
            filled = bool(np.isfinite(archive.fitness[cell]))
            entry: dict[str, Any] = {
                "index": int(k), "label": archive.labels[cell],
                "confidence": float(archive.fitness[cell]) if filled else None,
                "generation_found": int(archive.generation_found[cell]) if filled else None,
                "passed": {str(t): (int(g) if g >= 0 else None) for t, g in zip(THRESHOLDS, archive.passed[cell])},
            }
            if archive.scores is not None and filled:
                entry["scores"] = dict(zip(self.config.model_names, map(float, archive.scores[cell])))
            classes.append(entry)
        return {
            "generation": self.strategy.generation - 1, "evaluations": self.evaluations,
            "elapsed_s": round(self.elapsed, 3),
            "evals_per_s": round(self.evaluations / self.elapsed, 1) if self.elapsed > 0 else None,
            "model": self.config.model_names[0], "models": self.config.model_names,
            "encoding": self.config.encoding, "strategy": self.config.strategy, "preset": self.config.preset,
            "seed": self.config.seed, "coverage": archive.coverage, "median_confidence": median,
            "max_confidence": best, "classes": classes,
        }


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def evolve(config: EvolveSettings, progress: bool = False) -> dict[str, Any]:
    """Run ``config`` to the end in a new run directory; returns the summary."""
    return EvolutionRun.start(config).run(progress=progress)
