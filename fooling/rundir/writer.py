"""The run directory a user gets: config.json, summary.json, metrics.csv, elites/, checkpoint/, log.txt.

Every command that produces images (``fool evolve``, ``fool ascend``,
``fool retrain``) writes through this class, so transfer, gallery and retrain
read one format.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..errors import FoolingError
from ..imaging import png_bytes
from . import atomic
from .lock import LOCK_NAME
from .names import METRICS_CSV, elite_class, elite_stem

ELITE_PNG_LEVEL = 1  # zlib level of elites/: rewritten at every checkpoint (1000 ImageNet elites), so speed first
ENCODE_THREADS = max(1, min(4, os.cpu_count() or 1))  # zlib releases the GIL: elites encode in parallel

METRICS_FIELDS = ["generation", "evaluations", "coverage", "median_confidence", "max_confidence", "elapsed_s"]


def _atomic_text(path: Path, text: str) -> None:
    atomic.write(path, text)


def _metrics_text(rows: Sequence[dict[str, Any]], header: bool = False) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, METRICS_FIELDS, extrasaction="ignore", lineterminator="\r\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def png_with_text(png: bytes, key: str, value: str) -> bytes:
    """``png`` with a tEXt chunk ``key: value`` inserted after its header (PIL reads it as ``image.text[key]``)."""
    data = key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(b"tEXt")))
    end_of_header = 8 + 4 + 4 + 13 + 4  # signature, then the IHDR chunk: length, tag, 13 bytes, CRC
    return png[:end_of_header] + chunk + png[end_of_header:]


def unused_path(stem: str, parent: str | Path = "runs") -> Path:
    """``parent/stem``, or ``parent/stem-2``, ``-3``, … if taken: default run directories never collide."""
    path, n = Path(parent) / stem, 1
    while path.exists():
        n += 1
        path = Path(parent) / f"{stem}-{n}"
    return path


class RunDirectory:
    """One run's folder on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.elites = self.path / "elites"
        self.checkpoint = self.path / "checkpoint"
        self.snapshots = self.path / "snapshots"  # snapshots/<generation>/: elites as they were then
        self.config_path = self.path / "config.json"
        self.summary_path = self.path / "summary.json"
        self.metrics_path = self.path / METRICS_CSV
        self.log_path = self.path / "log.txt"

    # --- creating and opening -----------------------------------------------------------
    def holds_anything(self) -> bool:
        """True if the folder exists and holds something other than a lock file and temporary files a run
        killed before writing config.json left (or is not a folder)."""
        if not self.path.exists():
            return False
        return not self.path.is_dir() or any(p.name != LOCK_NAME and not atomic.TMP_NAME.match(p.name)
                                             for p in self.path.iterdir())

    def refuse_if_taken(self, resumable: bool = True) -> None:
        """The "already holds" :class:`FoolingError` if a new run cannot start here (resumable: whether the
        command has a --resume to suggest for a run found here; fool attack has none)."""
        if self.path.exists() and not self.path.is_dir():
            raise FoolingError(f"--out {self.path} is a file; a run needs a new (or empty) folder")
        if self.holds_anything():
            if self.config_path.exists():
                raise FoolingError(f"{self.path} already holds a run; pick another --out"
                                   + (" or --resume it" if resumable else ""))
            raise FoolingError(f"{self.path} already holds other files; pick another --out (a new or empty folder)")

    def create(self, config: dict[str, Any], resumable: bool = True) -> None:
        """Start a new run here; refuses a folder that already holds anything (a lone lock file aside)."""
        self.refuse_if_taken(resumable)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic.remove_stale_tmp(self.path)  # the caller holds the lock: no other writer is at work here
        self.write_config(config)
        atomic.write(self.metrics_path, _metrics_text([], header=True))
        self.elites.mkdir(exist_ok=True)

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise FoolingError(f"{self.path} is not a run directory (no config.json)")
        try:
            record = json.loads(self.config_path.read_text())
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise FoolingError(f"{self.config_path} is not valid JSON") from None
        if not isinstance(record, dict):
            raise FoolingError(f"{self.config_path} does not hold a JSON object")
        return record

    def write_config(self, config: dict[str, Any]) -> None:
        _atomic_text(self.config_path, json.dumps(config, indent=2, sort_keys=True))

    def read_summary(self) -> dict[str, Any]:
        if not self.summary_path.is_file():
            raise FoolingError(f"{self.path} has no summary.json (is the run finished or checkpointed?)")
        try:
            summary = json.loads(self.summary_path.read_text())
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise FoolingError(f"{self.summary_path} is not valid JSON") from None
        if not isinstance(summary, dict):
            raise FoolingError(f"{self.summary_path} does not hold a JSON object")
        return summary

    # --- during the run -----------------------------------------------------------------
    def log(self, message: str) -> None:
        """Append one timestamped line to log.txt (runs log through :mod:`logging`; this is for other writers)."""
        with open(self.log_path, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def append_metrics(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            atomic.append(self.metrics_path, _metrics_text(rows))

    def read_metrics(self) -> list[dict[str, str]]:
        """The complete rows of metrics.csv (a last line cut short by a crash is left out)."""
        if not self.metrics_path.is_file():
            return []
        text = self.metrics_path.read_text(errors="replace")
        if not text.endswith("\n"):
            text = text[:text.rfind("\n") + 1]
        rows = []
        for row in csv.DictReader(io.StringIO(text, newline="")):
            try:
                int(row["generation"])
            except (TypeError, ValueError, KeyError):
                continue
            rows.append(row)
        return rows

    def restore_metrics(self, keep_through: int, rows: Sequence[dict[str, Any]]) -> None:
        """metrics.csv as a checkpoint knows it: its rows up to ``keep_through``, then ``rows``.

        ``rows`` are the rows the checkpoint itself holds (those since the checkpoint before it), so rows a
        crash kept out of metrics.csv come back, and rows of work done after the checkpoint are dropped.
        """
        kept, last = [], -1
        for row in self.read_metrics():
            generation = int(row["generation"])
            if last < generation <= keep_through:
                kept.append(row)
                last = generation
        atomic.write(self.metrics_path, _metrics_text([*kept, *rows], header=True))

    def truncate_metrics(self, generation: int) -> None:
        """Drop rows after ``generation`` (work done after the checkpoint a resume starts from)."""
        if self.metrics_path.is_file():
            self.restore_metrics(generation, [])

    def remove_stale_files(self) -> None:
        """Temporary files a killed writer left behind (call only while holding the run's lock)."""
        for folder in (self.path, self.checkpoint, self.elites):
            atomic.remove_stale_tmp(folder)
        if self.snapshots.is_dir():
            for folder in self.snapshots.iterdir():
                atomic.remove_stale_tmp(folder)

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
        Each file is ``<index>_<label>.png`` (+ ``.json``), replaced atomically: a reader never finds a class's
        file missing or half written. The confidence is in the PNG's text metadata (key ``confidence``).
        Other elite files of the written classes (e.g. an older run's ``<index>_<label>_<conf>.png``) are
        removed after; replace_all=True also removes the elite files of every class not written.
        """
        folder = folder or self.elites
        folder.mkdir(parents=True, exist_ok=True)
        stems, written = [], set()
        encoded = _encode_distinct(images)  # one image shared by several classes (one elite) is encoded once
        for i, (k, label, conf) in enumerate(zip(classes, labels, confidences)):
            stem = elite_stem(int(k), label)
            atomic.write(folder / f"{stem}.png", png_with_text(encoded[id(images[i])], "confidence", repr(float(conf))))
            written.add(f"{stem}.png")
            if genome_json is not None and genome_json[i] is not None:
                atomic.write(folder / f"{stem}.json", json.dumps(genome_json[i]))
                written.add(f"{stem}.json")
            stems.append(stem)
        updating = {int(k) for k in classes}
        for old in sorted(folder.iterdir()):
            if old.suffix in (".png", ".json") and old.name not in written:
                k = elite_class(old)
                if k is not None and (replace_all or k in updating):
                    atomic.remove(old)
        return stems

    def write_summary(self, summary: dict[str, Any]) -> None:
        _atomic_text(self.summary_path, json.dumps(summary, indent=2))


def _encode_distinct(images: Sequence[torch.Tensor | np.ndarray]) -> dict[int, bytes]:
    """PNG bytes of each distinct object in ``images``, by ``id``; many are encoded in threads (a 256 px elite
    takes 1-2 ms, and a checkpoint early in an ImageNet run rewrites hundreds)."""
    distinct = list({id(image): image for image in images}.items())
    if len(distinct) < 2 * ENCODE_THREADS:
        return {key: png_bytes(image, level=ELITE_PNG_LEVEL) for key, image in distinct}
    with ThreadPoolExecutor(ENCODE_THREADS) as pool:
        data = pool.map(lambda image: png_bytes(image, level=ELITE_PNG_LEVEL), [image for _, image in distinct])
        return dict(zip([key for key, _ in distinct], data))


def median_and_max(fitness: np.ndarray) -> tuple[float, float]:
    """Median and max confidence over cells, empty cells counting as 0."""
    filled = np.where(np.isfinite(fitness), fitness, 0.0)
    return float(np.median(filled)), float(filled.max())
