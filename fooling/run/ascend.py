"""A ``fool ascend`` run: gradient ascent (or a perturbation attack) over many classes, written
to the same run directory as ``fool evolve`` (config.json, summary.json, metrics.csv, elites/,
log.txt) plus milestones.csv, the first step at which each class hit each milestone.

Classes go through the network ``batch_size`` at a time (one image per class). Each
class's starting noise comes from its own seed, so results do not depend on the
batch size or on which other classes are in the run. With ``from_run`` (a CPPN
``fool evolve`` run) the ascent instead tunes the weights of each class's evolved
elite (:class:`~..search.cppn_weights.CppnWeights`) and writes the tuned genomes'
.json beside their PNGs.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .. import __version__
from ..analysis.elites import read_elite_folder
from ..archive import THRESHOLDS
from ..classifiers import Classifier, load_classifier, resolve_device
from ..encodings.cppn import Genome, Style, genome_to_json
from ..encodings.cppn.serialize import load_genome
from ..errors import FoolingError
from ..imaging import load_image
from ..search.ascent import (
    OBJECTIVES, PRESETS, RATES, AscentResult, PixelImages, StepRule, ascend, ascent_shape, classifier_centre,
    initial_images,
)
from ..search.cppn_weights import CppnWeights
from ..search.perturb import METHODS, NORMS, fit_photo, perturb
from ..search.regularizers import Regularizers
from .rundir import RunDirectory, median_and_max, unused_path

INITS = ("mean", "uniform")  # anything else given as --init is a photo


@dataclass
class AscendConfig:
    """Every setting of one ``fool ascend`` run (saved as config.json). None: from the preset."""

    model: str = "imagenet-efficientnet-lite0"
    classes: Optional[list[int]] = None  # None: every class
    steps: int = 200
    seed: int = 0
    device: str = "auto"
    crops: int = 1
    image_size: Optional[int] = None  # None: the side the network's preprocessing resizes to
    batch_size: int = 32
    stop_at: float = THRESHOLDS[-1]  # an image stops once this confident (0: never)
    # gradient ascent
    preset: str = "paper"
    init: str = "mean"  # mean | uniform | path to a photo
    objective: Optional[str] = None  # prob | logit
    rate: Optional[str] = None  # progress | normalised
    decay: Optional[float] = None
    blur_radius: Optional[float] = None
    blur_every: Optional[int] = None
    norm_percentile: Optional[float] = None
    contribution_percentile: Optional[float] = None
    # perturbation of a photo (--init PHOTO --epsilon E)
    epsilon: Optional[float] = None
    norm: str = "linf"
    attack: str = "pgd"
    step_size: Optional[float] = None  # PGD's step, or the mean pixel change of a normalised ascent step
    # tuning the weights of evolved CPPNs: a `fool evolve --encoding cppn` run directory
    from_run: Optional[str] = None
    out: Optional[str] = None

    @property
    def perturbation(self) -> bool:
        return self.epsilon is not None

    def _from_preset(self, base: Any) -> Any:
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(base) if getattr(self, f.name) is not None}
        return dataclasses.replace(base, **given)

    def step_rule(self) -> StepRule:
        """The preset's step rule with any explicitly given value swapped in."""
        return self._from_preset(PRESETS[self.preset][0])

    def regularizers(self) -> Regularizers:
        """The preset's regularisers with any explicitly given value swapped in. For CPPN weights
        (``from_run``) only the decay applies: blur and zeroing act on pixels."""
        reg = self._from_preset(PRESETS[self.preset][1])
        if self.from_run is not None:
            reg = dataclasses.replace(reg, blur_radius=0.0, blur_every=0, norm_percentile=0.0,
                                      contribution_percentile=0.0)
        return reg

    def validate(self) -> None:
        """Raise :class:`FoolingError` for settings no run can use."""
        if self.preset not in PRESETS:
            raise FoolingError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        for name in ("steps", "batch_size"):
            if getattr(self, name) <= 0:
                raise FoolingError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.crops not in (1, 10):
            raise FoolingError(f"--crops must be 1 or 10, got {self.crops}")
        if self.image_size is not None and self.image_size <= 0:
            raise FoolingError(f"--image-size must be positive, got {self.image_size}")
        if not 0.0 <= self.stop_at <= 1.0:
            raise FoolingError(f"--stop-at must lie in [0, 1], got {self.stop_at}")
        if self.norm not in NORMS:
            raise FoolingError(f"--norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if self.attack not in METHODS:
            raise FoolingError(f"--attack must be one of {', '.join(METHODS)}, not {self.attack!r}")
        if self.perturbation:
            if self.init in INITS:
                raise FoolingError("--epsilon perturbs a photo: give it with --init PHOTO")
            if self.epsilon <= 0:
                raise FoolingError(f"--epsilon must be positive, got {self.epsilon}")
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise FoolingError(f"--objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        if self.rate is not None and self.rate not in RATES:
            raise FoolingError(f"--rate must be one of {', '.join(RATES)}, not {self.rate!r}")
        if self.step_size is not None:
            if self.step_size <= 0:
                raise FoolingError(f"--step-size must be positive, got {self.step_size}")
            if not self.perturbation and self.step_rule().rate == "progress":
                raise FoolingError("--step-size applies to --epsilon runs and to --rate normalised or adam")
        if self.from_run is not None:
            if self.perturbation or self.init != "mean":
                raise FoolingError("--from tunes evolved CPPNs; it cannot be combined with --init or --epsilon")
            pixel_only = [name for name in ("blur_radius", "norm_percentile", "contribution_percentile")
                          if getattr(self, name)]
            if pixel_only:
                raise FoolingError(f"--{pixel_only[0].replace('_', '-')} acts on pixels; with --from only --decay "
                                   "applies (to the CPPN weights)")
        if self.init not in INITS and not Path(self.init).is_file():
            raise FoolingError(f"--init must be mean, uniform or an image file; {self.init!r} is none of them")
        self.regularizers().validate()


def default_out(config: AscendConfig) -> Path:
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

    def __init__(self, config: AscendConfig, classifier: Optional[Classifier] = None) -> None:
        config.validate()
        self.classifier = classifier or load_classifier(config.model, resolve_device(config.device), config.crops)
        self.device = self.classifier.device
        k = self.classifier.num_classes
        self.genomes: Optional[dict[int, Genome]] = None
        self.style: Optional[Style] = None
        if config.from_run is not None:
            self.genomes, self.style = load_cppn_elites(config.from_run)
        default_classes = sorted(self.genomes) if self.genomes is not None else range(k)
        self.classes = list(config.classes) if config.classes else list(default_classes)
        bad = [c for c in self.classes if not 0 <= c < k]
        if bad:
            raise FoolingError(f"class {bad[0]} does not exist: {config.model} has classes 0-{k - 1}")
        c, h, w = ascent_shape(self.classifier)
        if self.style is not None:
            missing = [cl for cl in self.classes if cl not in self.genomes]
            if missing:
                raise FoolingError(f"--from {config.from_run} has no elite for class {missing[0]} "
                                   f"({self.classifier.labels[missing[0]]})")
            if self.style.channels != c:
                raise FoolingError(f"--from {config.from_run} holds {self.style.colour} CPPNs ({self.style.channels} "
                                   f"channel(s)), but {config.model} takes {c}")
            h, w = self.style.size
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
        self.results: list[AscentResult] = []
        self.step_seconds = np.zeros(config.steps + 1)

    # --- one batch of classes -------------------------------------------------------------------
    def _start_images(self, targets: np.ndarray) -> torch.Tensor:
        if self.photo is not None:
            return self.photo.expand(len(targets), -1, -1, -1)
        return torch.cat([
            initial_images(self.classifier, 1, self.config.init,
                           torch.Generator().manual_seed(class_seed(self.config.seed, int(k))), self.shape)
            for k in targets
        ])

    def _run_batch(self, targets: np.ndarray, on_step) -> AscentResult:
        cfg = self.config
        stop_at = cfg.stop_at or None
        if cfg.perturbation:
            return perturb(self.classifier, self.photo, targets, cfg.epsilon, cfg.norm, cfg.attack, cfg.steps,
                           cfg.step_size, stop_at, on_step)
        if self.genomes is not None:
            param = CppnWeights([self.genomes[int(k)] for k in targets], self.style, self.device,
                                decay=cfg.regularizers().decay, size=self.shape[1:])
        else:
            param = PixelImages(self._start_images(targets).to(self.device), classifier_centre(self.classifier),
                                cfg.regularizers())
        return ascend(self.classifier, targets, param, cfg.steps, cfg.step_rule(), stop_at, on_step)

    # --- the run --------------------------------------------------------------------------------
    def run(self, progress: bool = True) -> dict[str, Any]:
        """Run every batch of classes, writing elites as batches finish; returns summary.json's contents."""
        cfg = self.config
        self.rundir.create(self.config_record())
        self.rundir.log(f"start: {' '.join(sys.argv)}")
        started = time.perf_counter()
        batches = [np.asarray(self.classes[i:i + cfg.batch_size]) for i in range(0, len(self.classes), cfg.batch_size)]
        try:
            for b, targets in enumerate(batches):
                last = [time.perf_counter()]

                def on_step(step: int, confidence: np.ndarray) -> None:
                    now = time.perf_counter()
                    self.step_seconds[step] += now - last[0]
                    last[0] = now
                    if progress:
                        done = b * cfg.batch_size
                        print(f"\rclasses {done + 1}-{done + len(targets)} of {len(self.classes)} | step {step}/"
                              f"{cfg.steps} | median {np.median(confidence):.4f} best {confidence.max():.5f} | "
                              f"{now - started:,.0f} s", end="", file=sys.stderr, flush=True)

                result = self._run_batch(targets, on_step)
                self.results.append(result)
                self._write_elites(result)
                self.rundir.write_summary(self.summary(time.perf_counter() - started))
        except KeyboardInterrupt:
            self.rundir.log(f"interrupted after {sum(len(r.targets) for r in self.results)} classes")
            raise
        finally:
            if progress:
                print(file=sys.stderr)
        elapsed = time.perf_counter() - started
        self.rundir.append_metrics(self.metrics_rows())
        self._write_milestones()
        summary = self.summary(elapsed)
        self.rundir.write_summary(summary)
        self.rundir.log(f"finished {len(self.classes)} classes in {elapsed:.1f} s")
        return summary

    def config_record(self) -> dict[str, Any]:
        """config.json: every setting plus versions, device and the image shape."""
        return {**dataclasses.asdict(self.config), "run": {
            "command": "ascend", "device": str(self.device), "image_shape": list(self.shape),
            "step_rule": dataclasses.asdict(self.config.step_rule()),
            "regularizers": dataclasses.asdict(self.config.regularizers()),
            "num_classes": self.classifier.num_classes,
            "versions": {"fooling": __version__, "torch": torch.__version__, "numpy": np.__version__,
                         "python": sys.version.split()[0]},
        }}

    # --- outputs ----------------------------------------------------------------------------------
    def _write_elites(self, result: AscentResult) -> None:
        labels = self.classifier.labels
        genomes = None
        if self.style is not None and result.states is not None:
            genomes = [genome_to_json(result.states[i], self.style) for i in range(len(result.targets))]
        self.rundir.write_elites([result.images[i] for i in range(len(result.targets))],  # <index>_<label>.png
                                 [int(k) for k in result.targets], [labels[k] for k in result.targets],
                                 [float(c) for c in result.confidence], genomes, replace_all=False)

    def _class_records(self) -> list[dict[str, Any]]:
        labels = self.classifier.labels
        records = []
        for result in self.results:
            for i, k in enumerate(result.targets):
                milestones = result.milestones.record(i)
                entry: dict[str, Any] = {
                    "index": int(k), "label": labels[k], "confidence": float(result.confidence[i]),
                    "start_confidence": float(result.trace[0, i]),
                    "generation_found": int(result.best_step[i]), "top1": milestones["top1"],
                    "passed": {str(t): milestones[str(t)] for t in THRESHOLDS},
                }
                if "linf" in result.extra:
                    entry["linf"] = float(result.extra["linf"][i])
                    entry["l2"] = float(result.extra["l2"][i])
                records.append(entry)
        return records

    def _trace(self) -> np.ndarray:
        """(steps + 1, classes so far): best confidence so far per class after each step, carried forward."""
        steps = self.config.steps
        columns = []
        for result in self.results:
            trace = np.full((steps + 1, len(result.targets)), np.nan)
            trace[: len(result.trace)] = result.trace
            trace[len(result.trace):] = result.trace[-1]
            columns.append(trace)
        return np.concatenate(columns, axis=1)

    def metrics_rows(self) -> list[dict[str, Any]]:
        """One metrics.csv row per step (the 'generation' column), over all classes."""
        trace = self._trace()
        ran = np.concatenate([np.full(len(r.targets), r.steps_run) for r in self.results])
        rows, evaluations = [], 0
        for step in range(int(ran.max()) + 1):
            evaluations += int((ran >= step).sum())
            median, best = median_and_max(trace[step])
            rows.append({"generation": step, "evaluations": evaluations, "coverage": 1.0,
                         "median_confidence": round(median, 8), "max_confidence": round(best, 8),
                         "elapsed_s": round(float(self.step_seconds[: step + 1].sum()), 3)})
        return rows

    def _write_milestones(self) -> None:
        with open(self.rundir.path / "milestones.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["index", "label", "start_confidence", "confidence", "best_step", "top1",
                             *map(str, THRESHOLDS)])
            for r in self._class_records():
                writer.writerow([r["index"], r["label"], f"{r['start_confidence']:.6f}", f"{r['confidence']:.6f}",
                                 r["generation_found"], r["top1"],
                                 *(r["passed"][str(t)] for t in THRESHOLDS)])

    def summary(self, elapsed: float) -> dict[str, Any]:
        """summary.json: evolve's schema plus per-class milestones (and change sizes for perturbations)."""
        records = self._class_records()
        confidence = np.array([r["confidence"] for r in records]) if records else np.zeros(1)
        evaluations = sum(r.evaluations for r in self.results)
        cfg = self.config
        return {
            "generation": max((r.steps_run for r in self.results), default=0), "steps": cfg.steps,
            "evaluations": evaluations, "elapsed_s": round(elapsed, 3),
            "evals_per_s": round(evaluations / elapsed, 1) if elapsed > 0 else None,
            "model": cfg.model, "models": [cfg.model], "encoding": "cppn" if self.style else "pixels",
            "strategy": cfg.attack if cfg.perturbation else "ascent",
            "preset": cfg.preset, "seed": cfg.seed, "from_run": cfg.from_run,
            "coverage": len(records) / len(self.classes),
            "median_confidence": float(np.median(confidence)), "max_confidence": float(confidence.max()),
            "classes": records,
        }
