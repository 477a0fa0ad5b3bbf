"""The run directory a user gets: config.json, summary.json, metrics.csv, elites/, checkpoint/, log.txt.

Every command that produces images (``fool evolve``, ``fool ascend``,
``fool retrain``) writes through this class, so transfer, gallery and retrain
read one format.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..errors import FoolingError
from ..imaging import png_bytes

METRICS_FIELDS = ["generation", "evaluations", "coverage", "median_confidence", "max_confidence", "elapsed_s"]


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def safe_label(label: str) -> str:
    """A class label made safe for a file name: 'king penguin' -> 'king_penguin'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "class"


def unused_path(stem: str, parent: str | Path = "runs") -> Path:
    """``parent/stem``, or ``parent/stem-2``, ``-3``, … if taken: default run directories never collide."""
    path, n = Path(parent) / stem, 1
    while path.exists():
        n += 1
        path = Path(parent) / f"{stem}-{n}"
    return path


def elite_stem(index: int, label: str, confidence: float) -> str:
    """``<index>_<label>_<confidence>``, e.g. ``7_7_0.99996``."""
    return f"{index}_{safe_label(label)}_{confidence:.5f}"


ELITE_STEM = re.compile(r"^(?P<index>\d+)_(?P<label>.*)_(?P<confidence>\d+(?:\.\d+)?)$")  # what elite_stem makes


def elite_class(path: Path) -> Optional[int]:
    """The class index of an elite file (``7_7_0.99996.png`` -> 7), None for other files."""
    match = ELITE_STEM.match(path.stem)
    return int(match["index"]) if match else None


class RunDirectory:
    """One run's folder on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.elites = self.path / "elites"
        self.checkpoint = self.path / "checkpoint"
        self.snapshots = self.path / "snapshots"  # snapshots/<generation>/: elites as they were then
        self.config_path = self.path / "config.json"
        self.summary_path = self.path / "summary.json"
        self.metrics_path = self.path / "metrics.csv"
        self.log_path = self.path / "log.txt"

    # --- creating and opening -----------------------------------------------------------
    def create(self, config: dict[str, Any]) -> None:
        """Start a new run here; refuses a folder that already holds anything."""
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            what = "a run" if self.config_path.exists() else "other files"
            raise FoolingError(f"{self.path} already holds {what}; pick another --out or --resume it")
        self.elites.mkdir(parents=True, exist_ok=True)
        self.write_config(config)
        with open(self.metrics_path, "w", newline="") as f:
            csv.writer(f).writerow(METRICS_FIELDS)

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise FoolingError(f"{self.path} is not a run directory (no config.json)")
        try:
            return json.loads(self.config_path.read_text())
        except ValueError:
            raise FoolingError(f"{self.config_path} is not valid JSON") from None

    def write_config(self, config: dict[str, Any]) -> None:
        _atomic_text(self.config_path, json.dumps(config, indent=2, sort_keys=True))

    def read_summary(self) -> dict[str, Any]:
        if not self.summary_path.is_file():
            raise FoolingError(f"{self.path} has no summary.json (is the run finished or checkpointed?)")
        return json.loads(self.summary_path.read_text())

    # --- during the run -----------------------------------------------------------------
    def log(self, message: str) -> None:
        with open(self.log_path, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def append_metrics(self, rows: Sequence[dict[str, Any]]) -> None:
        with open(self.metrics_path, "a", newline="") as f:
            writer = csv.DictWriter(f, METRICS_FIELDS)
            writer.writerows(rows)

    def truncate_metrics(self, generation: int) -> None:
        """Drop rows after ``generation`` (work done after the checkpoint a resume starts from)."""
        if not self.metrics_path.is_file():
            return
        with open(self.metrics_path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["generation"]) <= generation]
        tmp = self.metrics_path.with_name(".metrics.csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, METRICS_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.metrics_path)

    def write_elites(
        self,
        images: Sequence[torch.Tensor | np.ndarray],
        classes: Sequence[int],
        labels: Sequence[str],
        confidences: Sequence[float],
        genome_json: Optional[Sequence[Optional[dict[str, Any]]]] = None,
        folder: Optional[Path] = None,
        replace_all: bool = True,
    ) -> list[str]:
        """Write one PNG (and optional genome .json) per class into elites/ (or ``folder``); returns the stems.

        images: one per class, (C, H, W) float in [0, 1] or (H, W, C) uint8 (the same object for classes that
        share an image); classes, labels, confidences: likewise.
        replace_all: True empties the folder's PNG/JSON files first; False replaces only the files of
        ``classes`` (a class's files are ``<index>_*``) and leaves every other class's files as they are.
        """
        folder = folder or self.elites
        folder.mkdir(parents=True, exist_ok=True)
        updating = {int(k) for k in classes}
        for old in folder.iterdir():
            if old.suffix in (".png", ".json") and (replace_all or elite_class(old) in updating):
                old.unlink()
        stems = []
        encoded: dict[int, bytes] = {}  # one image shared by several classes (one elite) is encoded once
        for i, (k, label, conf) in enumerate(zip(classes, labels, confidences)):
            stem = elite_stem(int(k), label, float(conf))
            if id(images[i]) not in encoded:
                encoded[id(images[i])] = png_bytes(images[i])
            (folder / f"{stem}.png").write_bytes(encoded[id(images[i])])
            if genome_json is not None and genome_json[i] is not None:
                (folder / f"{stem}.json").write_text(json.dumps(genome_json[i]))
            stems.append(stem)
        return stems

    def write_summary(self, summary: dict[str, Any]) -> None:
        _atomic_text(self.summary_path, json.dumps(summary, indent=2))


def median_and_max(fitness: np.ndarray) -> tuple[float, float]:
    """Median and max confidence over cells, empty cells counting as 0."""
    filled = np.where(np.isfinite(fitness), fitness, 0.0)
    return float(np.median(filled)), float(filled.max())
