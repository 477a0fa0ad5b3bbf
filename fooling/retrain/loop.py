"""The retraining loop of the paper's defence experiment, resumable step by step.

Iteration 0 evolves fooling images against the base network (network 0). Iteration
i >= 1 trains network i (n + 1 outputs) on the real data plus the fooling images of
iterations 0..i-1 as class n + 1, measures it on held-out real images, and evolves
fooling images against it for the n real classes. Row i of the table describes
network i, so its fooling confidence is that of images evolved against network i.

Retrain directory::

    OUT/
      retrain.json             every setting (RetrainSettings)
      log.txt
      iter_<i>/run_<r>/        evolve run directories (resumable on their own)
      iter_<i>/pool_<r>.npz    the fooling images each run contributes
      iter_<i>/result.json     the finished iteration's table row
      networks/<name>.pt|json  network i (also registered in the models folder)
      table.csv, table.json, table.md, confidence.png
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..classifiers import get_spec
from ..classifiers.weights import load_meta
from ..errors import FoolingError
from ..paths import models_dir
from ..rundir import unused_path
from ..rundir.lock import RunLock
from .evolution import evolve_iteration, read_pool
from .report import write_report
from ..settings.retrain import SINCE, RetrainSettings
from .task import RetrainTask

SETTINGS_FILE = "retrain.json"


def default_out(settings: RetrainSettings) -> Path:
    """runs/retrain_<prefix>_s<seed>, with -2, -3, … appended if taken."""
    return unused_path(f"retrain_{settings.prefix}_s{settings.seed}")


def make_task(settings: RetrainSettings, folder: Path) -> RetrainTask:
    """The MNIST or ImageNet task for the base model; a :class:`FoolingError` for unusable bases."""
    spec = get_spec(settings.model)
    if (load_meta(models_dir(), spec.name) or {}).get("retrain"):
        raise FoolingError(f"{spec.name} already has a fooling class; start from the original network")
    if spec.dataset == "mnist":
        if spec.num_classes != 10:
            raise FoolingError(f"retraining starts from a 10-class MNIST network; {spec.name} has "
                               f"{spec.num_classes} classes")
        if settings.image_size not in (None, 28):
            raise FoolingError("--image-size is for ImageNet networks; MNIST fooling images are 28x28")
        from .mnist import MnistTask

        return MnistTask(settings, folder)
    if spec.dataset == "imagenet":
        from .imagenet import ImageNetTask

        return ImageNetTask(settings, folder)
    raise FoolingError(f"cannot retrain {spec.name}: unknown data set {spec.dataset!r}")


class RetrainRun:
    """A retrain experiment in its directory."""

    def __init__(self, settings: RetrainSettings, folder: Path, progress: bool = True) -> None:
        self.settings = settings
        self.folder = folder
        self.progress = progress
        self.task = make_task(settings, folder)
        self.task.progress = progress
        n = self.task.num_real
        self.classes = list(settings.classes) if settings.classes else list(range(n))
        bad = [k for k in self.classes if not 0 <= k < n]
        if bad:
            raise FoolingError(f"class {bad[0]} does not exist: {settings.model} has classes 0-{n - 1}")

    @classmethod
    def start(cls, settings: RetrainSettings, progress: bool = True) -> "RetrainRun":
        """Validate ``settings``, make the retrain directory and set up (nothing evolved or trained yet)."""
        settings.validate()
        out = Path(settings.out) if settings.out else default_out(settings)
        settings = dataclasses.replace(settings, out=str(out))
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FoolingError(f"{out} already holds files; pick another --out or continue it with --resume {out}")
        out.mkdir(parents=True, exist_ok=True)
        run = cls(settings, out, progress)
        run.task.check_names_free()
        (out / SETTINGS_FILE).write_text(settings.dumps())
        run.log(f"start: {' '.join(sys.argv)}")
        return run

    @classmethod
    def resume(cls, folder: str | Path, progress: bool = True) -> "RetrainRun":
        """Re-open a retrain directory; finished iterations are kept, the rest is (re)done."""
        folder = Path(folder)
        path = folder / SETTINGS_FILE
        if not path.is_file():
            raise FoolingError(f"{folder} is not a retrain directory (no {SETTINGS_FILE})")
        try:
            settings = RetrainSettings.from_json({**SINCE, **json.loads(path.read_text())})  # older: as they began
        except (ValueError, TypeError, RecursionError) as err:
            raise FoolingError(f"{path} is not a valid settings file: {err}") from None
        settings.validate()
        run = cls(settings, folder, progress)
        run.log("resume")
        return run

    def log(self, message: str) -> None:
        """Append to log.txt (and tell the user unless quiet)."""
        with open(self.folder / "log.txt", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        if self.progress:
            print(message, file=sys.stderr, flush=True)

    def iteration_dir(self, i: int) -> Path:
        return self.folder / f"iter_{i:02d}"

    # --- the loop --------------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Do every unfinished iteration; returns the table's rows (also written to disk after each).

        Holds the retrain directory's lock meanwhile: a second process on it gets one line naming this one."""
        lock = RunLock(self.folder).acquire()
        try:
            return self._run()
        finally:
            lock.release()

    def _run(self) -> list[dict[str, Any]]:
        rows = []
        caveat = self.task.caveat()
        if caveat:
            self.log(f"note: {caveat}")
        for i in range(self.settings.iterations + 1):
            result = self.iteration_dir(i) / "result.json"
            if result.is_file():
                rows.append(json.loads(result.read_text()))
                continue
            row = self.iteration(i)
            tmp = result.with_name(".result.json.tmp")
            tmp.write_text(json.dumps(row, indent=2))
            tmp.replace(result)
            rows.append(row)
            write_report(self.folder, rows, self.settings.to_json(), caveat=caveat)
            self.log(f"iteration {i} done: held-out accuracy {row['held_out_accuracy']:.2%}, median fooling "
                     f"confidence {row['median_confidence']:.4f}, {row['classes_9999']}/{len(self.classes)} "
                     f"classes >= 99.99%")
        write_report(self.folder, rows, self.settings.to_json(), caveat=caveat)
        return rows

    def iteration(self, i: int) -> dict[str, Any]:
        """Train network i (i >= 1), measure it, evolve against it; returns its table row."""
        s = self.settings
        name = s.network_name(i)
        trained: Optional[dict[str, Any]] = None
        if i > 0:
            if self.task.ensure_registered(i):
                trained = load_meta(self.folder / "networks", name)
            else:
                pools = [read_pool(self.iteration_dir(j), s.runs_per_iteration) for j in range(i)]
                self.log(f"iteration {i}: training {name} with {self.task.fooling_class_size():,} fooling images "
                         f"drawn from {sum(map(len, pools)):,}")
                trained = self.task.train(i, pools)
        metrics = self.task.measure(i)
        children = s.population or "the preset's population"
        self.log(f"iteration {i}: evolving against {name} ({s.runs_per_iteration} runs of {s.generations} "
                 f"generations x {children})")
        evolved = evolve_iteration(s, i, name, self.classes, self.iteration_dir(i), self.progress)
        best = evolved.best_per_class()
        confidence = {str(k): best.get(k, 0.0) for k in self.classes}  # by index: ImageNet repeats some names
        values = np.array(list(confidence.values()))
        return {
            "iteration": i, "network": name,
            "fooling_train_images": trained["fooling_images"] if trained else None,
            **metrics,
            "median_confidence": float(np.median(values)),
            "classes_99": int((values >= 0.99).sum()), "classes_9999": int((values >= 0.9999).sum()),
            "evolved_images": len(evolved.pool),
            "evaluations": int(sum(summary["evaluations"] for summary in evolved.summaries)),
            "confidence": confidence,
        }
