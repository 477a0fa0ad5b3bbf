"""A ``fool ascend`` run: gradient ascent (or a perturbation attack) over many classes, written
to the same run directory as ``fool evolve`` (config.json, summary.json, metrics.csv, elites/,
log.txt) plus milestones.csv, the first step at which each class hit each milestone
(:mod:`.ascent_records` builds those records).

Classes go through the network ``batch_size`` at a time (one image per class). Each
class's starting noise comes from its own seed, so results do not depend on the
batch size or on which other classes are in the run. With ``from_run`` (a CPPN
``fool evolve`` run) the ascent instead tunes the weights of each class's evolved
elite (:class:`~..search.gradient.CppnWeights`) and writes the tuned genomes'
.json beside their PNGs.
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
from ..classifiers.fingerprint import RECORD_KEY, check_fingerprints, fingerprints
from ..classifiers import Classifier, load_classifier, resolve_device
from ..encodings.cppn import Genome, Style, genome_to_json
from ..encodings.cppn.serialize import load_genome
from ..errors import FoolingError
from ..imaging import load_image
from ..objective import Objective, image_shape
from ..progress import Progress
from ..rundir.checkpoint import load_checkpoint, save_checkpoint
from ..rundir.lock import RunLock
from ..rundir.names import CLASSES_CSV
from ..rundir.reader import read_elite_folder
from ..rundir.writer import RunDirectory, median_and_max, unused_path
from ..search.gradient import (
    AscentResult, CppnWeights, Milestones, PixelImages, StepRule, ascend, initial_images,
)
from ..search.perturb import fit_photo, perturb
from ..search.regularizers import Regularizers
from ..settings.ascend import INITS, SINCE, AscendSettings
from .ascent_records import class_records, class_rows, metrics_rows, write_milestones
from .class_metrics import write_classes_csv
from .summary import run_summary
from .signals import install_stop_handlers, restore_handlers


def step_rule(config: AscendSettings) -> StepRule:
    """The step rule of ``config``: its preset's, with any explicitly given value swapped in."""
    return StepRule(objective=config.preset_value("objective"), rate=config.preset_value("rate"),
                    step_size=config.preset_value("step_size"))


def regularizers(config: AscendSettings) -> Regularizers:
    """The regularisers of ``config`` (preset, then given values). For CPPN weights (``from_run``) only
    the decay applies: blur and zeroing act on pixels."""
    reg = Regularizers(**{f.name: config.preset_value(f.name) for f in dataclasses.fields(Regularizers)})
    if config.from_run is not None:
        reg = dataclasses.replace(reg, blur_radius=0.0, blur_every=0, norm_percentile=0.0,
                                  contribution_percentile=0.0)
    return reg


def preset_rules(name: str) -> tuple[StepRule, Regularizers]:
    """(step rule, regularisers) of the preset ``name`` (see :data:`fooling.settings.ascend.PRESETS`)."""
    config = AscendSettings(preset=name)
    return step_rule(config), regularizers(config)


def default_out(config: AscendSettings) -> Path:
    """runs/<model>_ascent_s<seed> (or _pgd / _fgsm / _cppn-ascent), with -2, -3, … appended if taken."""
    method = config.attack if config.perturbation else "cppn-ascent" if config.from_run else "ascent"
    return unused_path(f"{config.model.replace(':', '-')}_{method}_s{config.seed}")


def load_cppn_elites(run: str | Path) -> tuple[dict[int, Genome], Style]:
    """The CPPN elite of each class in ``run``/elites/ ({class index: genome}) and their common style.

    Raises FoolingError when the folder holds no CPPN genomes (e.g. a direct-encoding run).
    """
    run = Path(run)
    if not run.is_dir():
        raise FoolingError(f"--from {run}: no such run directory")
    genomes: dict[int, Genome] = {}
    styles = set()
    for elite in read_elite_folder(run / "elites"):
        if elite.genome is not None:
            if elite.index in genomes:
                raise FoolingError(f"--from {run}: two elites for class {elite.index} in {run / 'elites'}")
            genomes[elite.index], style = load_genome(elite.genome)
            styles.add(style)
    if not genomes:
        raise FoolingError(f"--from {run}: no CPPN elites (elites/<class>_<label>.json); "
                           "tuning needs a run evolved with --encoding cppn")
    if len(styles) > 1:
        raise FoolingError(f"--from {run}: its elites were drawn in different styles")
    return genomes, styles.pop()


def check_source_weights(run: str | Path, model: str, classifier: Classifier) -> None:
    """Refuse (one line) to tune ``run``'s elites on ``model`` if that is the run's own network and its
    weights changed since the run was made (its confidences would no longer mean what they say)."""
    try:
        record = RunDirectory(run).read_config()
    except FoolingError:
        return
    recorded = (record.get("run") or {}).get(RECORD_KEY) if isinstance(record.get("run"), dict) else None
    if isinstance(recorded, dict) and model in recorded:
        check_fingerprints({**record, "run": {**record["run"], RECORD_KEY: {model: recorded[model]}}},
                           {model: classifier})


def run_model(run: str | Path) -> Optional[str]:
    """The network a ``fool evolve`` run was scored against (its config.json's model), None if unreadable."""
    try:
        model = RunDirectory(run).read_config().get("model")
    except (FoolingError, AttributeError):
        return None
    return model if isinstance(model, str) else None


def class_seed(seed: int, k: int) -> int:
    """The seed of class k's starting noise."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


class AscentRun:
    """One run: its config, classifier, classes and run directory."""

    def __init__(self, config: AscendSettings, classifier: Optional[Classifier] = None) -> None:
        config.validate()
        regularizers(config).validate()
        self.classifier = classifier or load_classifier(config.model, resolve_device(config.device), config.crops)
        self.device = self.classifier.device
        k = self.classifier.num_classes
        self.genomes: Optional[dict[int, Genome]] = None
        self.style: Optional[Style] = None
        if config.from_run is not None:
            self.genomes, self.style = load_cppn_elites(config.from_run)
            check_source_weights(config.from_run, config.model, self.classifier)
        default_classes = sorted(self.genomes) if self.genomes is not None else range(k)
        self.classes = list(config.classes) if config.classes else list(default_classes)
        bad = [c for c in self.classes if not 0 <= c < k]
        if bad:
            raise FoolingError(f"class {bad[0]} does not exist: {config.model} has classes 0-{k - 1}")
        self.objective = Objective([self.classifier], self.classes, memory_format=config.memory_format)
        if config.eot:  # expectation over transformation (fooling.objective.eot)
            from ..objective.eot import EOT

            self.objective.with_eot(EOT(config.eot, config.transforms, config.seed))
        c, h, w = image_shape(self.classifier)
        if self.style is not None:
            missing = [cl for cl in self.classes if cl not in self.genomes]
            if missing:
                raise FoolingError(f"--from {config.from_run} has no elite for class {missing[0]} "
                                   f"({self.classifier.labels[missing[0]]})")
            if self.style.channels != c:
                raise FoolingError(f"--from {config.from_run} holds {self.style.colour} CPPNs ({self.style.channels} "
                                   f"channel(s)), but {config.model} takes {c}")
            h, w = self.style.size
        if config.image_size and config.image_size < self.classifier.min_image_side:  # a 1x1 image, upscaled 28x
            raise FoolingError(f"--image-size {config.image_size} is too small for {config.model}: the smallest "
                               f"image side it takes is {self.classifier.min_image_side}")
        self.shape = (c, config.image_size, config.image_size) if config.image_size else (c, h, w)
        self.photo = None
        if config.init not in INITS:
            try:
                self.photo = fit_photo(load_image(config.init, c), self.shape)
            except OSError as err:
                raise FoolingError(f"cannot read --init {config.init}: {str(err).splitlines()[0]}") from None
        out = Path(config.out) if config.out else default_out(config)
        self.config = dataclasses.replace(config, out=str(out))
        self.rundir = RunDirectory(out)
        self.results: list[AscentResult] = []  # finished batches
        self.partial: Optional[AscentResult] = None  # the batch an interrupt stopped part-way
        self.step_seconds = np.zeros(config.steps + 1)
        self.stop_signal: Optional[int] = None  # the signal that interrupted the run
        self._resumed = False
        self._current: Optional[dict[str, np.ndarray]] = None  # mid-batch ascent state to resume from
        self._saved = 0  # the last checkpoint's number
        self._elapsed = 0.0  # seconds run before this session
        self._started: Optional[float] = None

    # --- one batch of classes -------------------------------------------------------------------
    def _start_images(self, targets: np.ndarray) -> torch.Tensor:
        if self.photo is not None:
            return self.photo.expand(len(targets), -1, -1, -1)
        return torch.cat([
            initial_images(self.objective, 1, self.config.init,
                           torch.Generator().manual_seed(class_seed(self.config.seed, int(k))), self.shape)
            for k in targets
        ])

    def _run_batch(self, targets: np.ndarray, on_step, resume: Optional[dict[str, np.ndarray]] = None,
                   save=None, should_stop=None) -> AscentResult:
        cfg = self.config
        stop_at = cfg.stop_at or None
        if cfg.perturbation:  # short batches: an interrupted one is redone from its start
            return perturb(self.objective, self.photo, targets, cfg.epsilon, cfg.norm, cfg.attack, cfg.steps,
                           cfg.step_size, stop_at, on_step)
        if self.genomes is not None:
            param = CppnWeights([self.genomes[int(k)] for k in targets], self.style, self.device,
                                decay=regularizers(cfg).decay, size=self.shape[1:])
        else:
            param = PixelImages(self._start_images(targets).to(self.device), self.objective.centre,
                                regularizers(cfg))
        try:
            return ascend(self.objective, targets, param, cfg.steps, step_rule(cfg), stop_at, on_step,
                          resume=resume, save=save, save_every=cfg.checkpoint_every, should_stop=should_stop)
        except ValueError as err:
            if resume is None:
                raise
            raise FoolingError(f"checkpoint in {self.rundir.checkpoint} does not fit this run: {err}") from None

    def batches(self) -> list[np.ndarray]:
        """The classes of each batch, in order."""
        size = self.config.batch_size
        return [np.asarray(self.classes[i:i + size]) for i in range(0, len(self.classes), size)]

    # --- resuming -------------------------------------------------------------------------------
    @classmethod
    def resume(cls, path: str | Path, classifier: Optional[Classifier] = None) -> "AscentRun":
        """Re-open an interrupted ``fool ascend`` run from its checkpoint (from its start if it has none)."""
        rundir = RunDirectory(path)
        record = rundir.read_config()
        if not isinstance(record.get("run"), dict) or record["run"].get("command") != "ascend":
            raise FoolingError(f"{path} is not a `fool ascend` run (its config.json says otherwise)")
        names = {f.name for f in AscendSettings.fields()}
        config = AscendSettings.from_json({**SINCE, **{k: v for k, v in record.items() if k in names}},
                                          where=str(rundir.config_path))  # older runs: as they began
        config = dataclasses.replace(config, out=str(rundir.path))
        run = cls(config, classifier)
        check_fingerprints(record, {config.model: run.classifier})  # changed weights: one line, nothing written
        run._resumed = True
        if (rundir.checkpoint / "state.json").is_file():
            arrays, values = load_checkpoint(rundir.checkpoint)
            try:
                run._load_state(arrays, values)
            except (KeyError, ValueError, TypeError) as err:
                raise FoolingError(f"checkpoint in {rundir.checkpoint} does not fit this run: {err}") from None
        where = (f"batch {len(run.results) + 1} of {len(run.batches())}"
                 + (f", step {int(run._current['step'])}" if run._current is not None else ""))
        rundir.log(f"resume: {' '.join(sys.argv)} (at {where})")
        return run

    def _load_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        batches = self.batches()
        for b, done in enumerate(values["done"]):
            targets = np.asarray(done["targets"], dtype=np.int64)
            if b >= len(batches) or not np.array_equal(targets, batches[b]):
                raise ValueError(f"batch {b} holds other classes")
            extra = {k: arrays[f"done{b}.{k}"] for k in ("linf", "l2") if f"done{b}.{k}" in arrays}
            self.results.append(AscentResult(
                targets=targets, images=torch.empty(0), confidence=arrays[f"done{b}.confidence"],
                best_step=arrays[f"done{b}.best_step"],
                milestones=Milestones(arrays[f"done{b}.passed"], top1=arrays[f"done{b}.top1"]),
                trace=arrays[f"done{b}.trace"], steps_run=int(done["steps_run"]),
                evaluations=int(done["evaluations"]), extra=extra))
        current = {k[8:]: v for k, v in arrays.items() if k.startswith("current.")}
        self._current = current or None
        self._saved = int(values["generation"])
        self.step_seconds = arrays["step_seconds"].astype(np.float64)
        self._elapsed = float(values["elapsed_s"])

    # --- checkpoints ------------------------------------------------------------------------------
    def checkpoint(self, current: Optional[dict[str, np.ndarray]] = None) -> None:
        """Save the finished batches' results and, mid-batch, the ascent's state (``current``)."""
        arrays: dict[str, np.ndarray] = {"step_seconds": self.step_seconds}
        done = []
        for b, r in enumerate(self.results):
            arrays.update({f"done{b}.confidence": r.confidence, f"done{b}.best_step": r.best_step,
                           f"done{b}.top1": r.milestones.top1, f"done{b}.passed": r.milestones.passed,
                           f"done{b}.trace": r.trace})
            arrays.update({f"done{b}.{k}": np.asarray(v) for k, v in r.extra.items() if k in ("linf", "l2")})
            done.append({"targets": [int(k) for k in r.targets], "steps_run": int(r.steps_run),
                         "evaluations": int(r.evaluations)})
        if current is not None:
            arrays.update({f"current.{k}": v for k, v in current.items()})
        # a number that grows with every checkpoint: steps finished over all batches
        position = sum(r.steps_run + 1 for r in self.results) + (int(current["step"]) if current is not None else 0)
        self._saved = max(position, self._saved + 1)
        save_checkpoint(self.rundir.checkpoint, self._saved, arrays, {
            "done": done, "elapsed_s": self._elapsed_now(), "batch": len(self.results),
            "step": int(current["step"]) if current is not None else 0})

    def _elapsed_now(self) -> float:
        return self._elapsed + (time.perf_counter() - self._started if self._started is not None else 0.0)

    # --- signals ----------------------------------------------------------------------------------
    def _request_stop(self, signum: int, frame: Any) -> None:
        if self.stop_signal is not None:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.stop_signal = signum

    @property
    def interrupted(self) -> bool:
        return self.stop_signal is not None

    # --- the run --------------------------------------------------------------------------------
    def run(self, progress: bool = True, stop_after: Optional[int] = None) -> dict[str, Any]:
        """Run every batch of classes, writing elites as batches finish; returns summary.json's contents.

        Ctrl-C (SIGINT), SIGTERM and SIGHUP stop after the current step: the run writes its elites
        so far, summary.json ("stop_reason": "interrupted", "finished": false) and a checkpoint that
        :meth:`resume` continues from; :attr:`stop_signal` then holds the signal. A second Ctrl-C
        stops at once (KeyboardInterrupt), leaving the last checkpoint. ``stop_after``: behave as if
        interrupted once that many steps have run in this call (for tests).
        """
        if not self._resumed:
            self.rundir.create(self.config_record())
            self.rundir.log(f"start: {' '.join(sys.argv)}")
        lock = RunLock(self.rundir.path).acquire()  # a second process on this run gets one line naming us
        try:
            return self._run(progress, stop_after)
        finally:
            lock.release()

    def _run(self, progress: bool, stop_after: Optional[int]) -> dict[str, Any]:
        cfg = self.config
        self._started = time.perf_counter()
        batches = self.batches()
        first = len(self.results)
        start_position = first * cfg.steps + (int(self._current["step"]) if self._current is not None else 0)
        bar = Progress(len(batches) * cfg.steps, start_position, enabled=progress, unit="step",
                       cells_label="classes done")
        ran = [0]

        def should_stop() -> bool:
            if stop_after is not None and ran[0] >= stop_after:
                self.stop_signal = self.stop_signal or signal.SIGINT
            return self.stop_signal is not None

        handlers = install_stop_handlers(self._request_stop)
        try:
            for b in range(first, len(batches)):
                if should_stop():
                    break
                targets = batches[b]
                last = [time.perf_counter()]
                done = sum(len(r.targets) for r in self.results)
                earlier = [r.confidence for r in self.results]  # shown: median/best over all classes so far

                def on_step(step: int, confidence: np.ndarray) -> None:
                    now = time.perf_counter()
                    self.step_seconds[step] += now - last[0]
                    last[0] = now
                    ran[0] += 1
                    median, best = median_and_max(np.concatenate([*earlier, confidence]))
                    bar.update(b * cfg.steps + step, len(targets), done, len(self.classes), median, best)

                resume, self._current = self._current, None
                result = self._run_batch(targets, on_step, resume, self.checkpoint, should_stop)
                if result.stopped:
                    self.partial = result
                    break
                self.results.append(result)
                median, best = median_and_max(np.concatenate([r.confidence for r in self.results]))
                bar.update((b + 1) * cfg.steps, 0, done + len(targets), len(self.classes), median, best,
                           force=b == len(batches) - 1)
                self._write_elites(result)
                self.checkpoint()
                self.rundir.write_summary(self.summary(self._elapsed_now()))
        except KeyboardInterrupt:
            self.rundir.log("stopped at once by a second Ctrl-C; the last checkpoint stands")
            raise
        except Exception as err:
            self._elapsed = self._elapsed_now()
            self.rundir.write_summary(self.summary(self._elapsed, "error"))
            self.rundir.log(f"error: {type(err).__name__}: {err}")
            raise
        finally:
            bar.close()
            restore_handlers(handlers)
        self._elapsed = self._elapsed_now()
        self._started = None
        if self.partial is not None:
            self._write_elites(self.partial)
        elif self.interrupted:
            self.checkpoint()
        self.rundir.truncate_metrics(-1)
        self.rundir.append_metrics(self.metrics_rows())
        self._write_milestones()
        if self.interrupted:
            summary = self.summary(self._elapsed, "interrupted")
            self.rundir.write_summary(summary)
            name = signal.Signals(self.stop_signal).name
            where = f"{len(self.results)} of {len(batches)} batches finished" + (
                f", batch {len(self.results) + 1} at step {int(self.partial.state['step'])}" if self.partial else "")
            self.rundir.log(f"interrupted by {name}: {where}; checkpointed")
            return summary
        records = self._class_records()
        reached = cfg.stop_at > 0 and all(r["confidence"] >= cfg.stop_at for r in records)
        summary = self.summary(self._elapsed, "until" if reached else "budget")
        self.rundir.write_summary(summary)
        self.rundir.log(f"finished {len(self.classes)} classes in {self._elapsed:.1f} s")
        return summary

    def config_record(self) -> dict[str, Any]:
        """config.json: every setting plus versions, device and the image shape."""
        return {**self.config.to_json(), "run": {
            "command": "ascend", "device": str(self.device), "image_shape": list(self.shape),
            "step_rule": dataclasses.asdict(step_rule(self.config)),
            "regularizers": dataclasses.asdict(regularizers(self.config)),
            "num_classes": self.classifier.num_classes,
            RECORD_KEY: fingerprints([self.config.model], [self.classifier]),
            "versions": {"fooling": __version__, "torch": torch.__version__, "numpy": np.__version__,
                         "python": sys.version.split()[0]},
        }}

    # --- outputs ----------------------------------------------------------------------------------
    def _write_elites(self, result: AscentResult) -> None:
        """Write (or replace) the elites of ``result``'s classes; other classes' files stay."""
        labels = self.classifier.labels
        genome_json = None
        if self.style is not None and result.states is not None:
            genome_json = [genome_to_json(state, self.style) for state in result.states]
        self.rundir.write_elites(list(result.images), [int(k) for k in result.targets],
                                 [labels[k] for k in result.targets], [float(c) for c in result.confidence],
                                 genome_json, replace_all=False)

    def _all_results(self) -> list[AscentResult]:
        return self.results + ([self.partial] if self.partial is not None else [])

    def _class_records(self) -> list[dict[str, Any]]:
        return class_records(self._all_results(), self.classifier.labels)

    def metrics_rows(self) -> list[dict[str, Any]]:
        """One metrics.csv row per step (the 'generation' column), over all classes."""
        return metrics_rows(self._all_results(), self.config.steps, self.step_seconds)

    def _write_milestones(self) -> None:
        """milestones.csv, and classes.csv (each class's best confidence at every step it rose: fool plot's
        curves)."""
        write_milestones(self.rundir.path / "milestones.csv", self._class_records())
        write_classes_csv(self.rundir.path / CLASSES_CSV, class_rows(self._all_results(), self.classifier.labels))

    def summary(self, elapsed: float, stop_reason: Optional[str] = None) -> dict[str, Any]:
        """summary.json: evolve's schema plus per-class milestones (and change sizes for perturbations).

        stop_reason: budget | until (every class reached --stop-at) | interrupted | error; None while
        the run goes on. "finished" is true for budget and until.
        """
        records = self._class_records()
        confidence = np.array([r["confidence"] for r in records]) if records else np.zeros(1)
        evaluations = sum(r.evaluations for r in self._all_results())
        cfg = self.config
        return run_summary(
            generation=max((r.steps_run for r in self._all_results()), default=0), evaluations=evaluations,
            elapsed_s=elapsed, models=[cfg.model], encoding="cppn" if self.style else "pixels",
            strategy=cfg.attack if cfg.perturbation else "ascent", preset=cfg.preset, seed=cfg.seed,
            coverage=len(records) / len(self.classes), median_confidence=float(np.median(confidence)),
            max_confidence=float(confidence.max()), stop_reason=stop_reason, classes=records,
            extra={"steps": cfg.steps, "from_run": cfg.from_run,
                   "classes_done": sum(len(r.targets) for r in self.results)})
