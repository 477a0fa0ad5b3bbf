"""The numbers ``fool plot`` draws, read from a run directory (tested against the files, not the pixels).

- :func:`class_curves`: each class's best confidence at every generation (classes.csv filled forward; for a run
  without classes.csv, the generations of summary.json's ``passed`` milestones and final elites).
- :func:`threshold_counts`: how many classes are at or past 99%, 99.9%, 99.99% after each generation.
- :func:`throughput`: evaluations/s between consecutive metrics.csv rows, against elapsed seconds.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import FoolingError
from ..paths import not_a_run_directory
from ..limits import MAX_GENERATION
from ..rundir.names import CLASSES_CSV, METRICS_CSV
from ..rundir.reader import read_json_object

PLOT_POINTS = 4096  # a run of more generations is drawn at this many of them, evenly spread (a figure is narrower)
THRESHOLDS = (0.99, 0.999, 0.9999)


@dataclass(frozen=True)
class RunSeries:
    """One run's plotted numbers.

    generations: (G,) 0..last generation (past :data:`PLOT_POINTS` of them, that many spread evenly, the last one
    included); confidence: (G, K) each class's best confidence after each generation
    (NaN before the class had an elite); indices / labels: the K classes; counts: {threshold: (G,) int};
    elapsed_s, evals_per_s: (R,) the throughput between consecutive metrics rows; exact: False where the curves
    are rebuilt from summary.json (a run made before classes.csv); iterates: "generation", or "step" for an ascent.
    """

    name: str
    path: Path
    generations: np.ndarray
    confidence: np.ndarray
    indices: list[int]
    labels: list[str]
    counts: dict[float, np.ndarray]
    elapsed_s: np.ndarray
    evals_per_s: np.ndarray
    exact: bool = True
    iterates: str = "generation"  # what ``generations`` counts: "step" for a gradient ascent (fool ascend)


def _complete_text(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        text = f.read()
    return text if text.endswith("\n") else text[:text.rfind("\n") + 1]  # a live run's last line may be cut short


def read_class_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """classes.csv's complete rows: {generation, index (int), label (str), confidence (float)}; [] if none."""
    path = Path(run_dir) / CLASSES_CSV
    if not path.is_file():
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(_complete_text(path), newline="")):
        try:
            rows.append({"generation": int(row["generation"]), "index": int(row["index"]), "label": row["label"],
                         "confidence": float(row["confidence"])})
        except (KeyError, TypeError, ValueError):
            continue
    return rows


def read_metrics_rows(run_dir: str | Path) -> list[dict[str, float]]:
    """metrics.csv's complete rows with finite numbers (generation, evaluations, elapsed_s, ...); [] if none."""
    path = Path(run_dir) / METRICS_CSV
    if not path.is_file():
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(_complete_text(path), newline="")):
        try:
            values = {k: float(v) for k, v in row.items() if k is not None and v not in (None, "")}
        except ValueError:
            continue
        rows.append({k: v for k, v in values.items() if math.isfinite(v)})  # nan, inf: a damaged row's cell
    return [r for r in rows if "generation" in r]


def class_curves(run_dir: str | Path, last: Optional[int] = None) -> tuple[np.ndarray, np.ndarray, list[int],
                                                                             list[str], bool]:
    """(generations (G,), confidence (G, K), indices, labels, exact): each class's best confidence after each
    generation 0..``last`` (default: the last generation any file of the run knows; in a longer run a sample of
    :data:`PLOT_POINTS` of them). From classes.csv, filled forward; without it, from summary.json (each
    threshold's first generation and the final elite: exact=False)."""
    run_dir = Path(run_dir)
    rows = read_class_rows(run_dir)
    summary = read_json_object(run_dir / "summary.json") or {}
    classes = [c for c in summary.get("classes", []) if isinstance(c, dict) and isinstance(c.get("index"), int)]
    exact = bool(rows)
    if not rows:  # rebuild steps from the milestones and the final elite
        for c in classes:
            steps = [(g, t) for t, g in (c.get("passed") or {}).items() if isinstance(g, int)]
            if isinstance(c.get("generation_found"), int) and isinstance(c.get("confidence"), (int, float)):
                steps.append((c["generation_found"], c["confidence"]))
            for g, conf in steps:
                rows.append({"generation": g, "index": c["index"], "label": str(c.get("label", c["index"])),
                             "confidence": float(conf)})
        rows.sort(key=lambda r: (r["generation"], r["index"], r["confidence"]))
    labels: dict[int, str] = {c["index"]: str(c.get("label", c["index"])) for c in classes}
    for r in rows:
        labels.setdefault(r["index"], r["label"])
    indices = sorted(labels)
    if last is None:
        known = [r["generation"] for r in rows]
        if isinstance(summary.get("generation"), int):
            known.append(summary["generation"])
        known += [int(m["generation"]) for m in read_metrics_rows(run_dir)]
        last = max(known, default=-1)
    if last > MAX_GENERATION:
        raise FoolingError(f"{run_dir}: its files name generation {last:,}, further than any run gets (is "
                           "classes.csv, metrics.csv or summary.json damaged?)")
    if last < PLOT_POINTS:
        generations = np.arange(last + 1)
    else:  # a sample, first and last included: each point still holds the best confidence up to it
        generations = np.unique(np.linspace(0, last, PLOT_POINTS).round().astype(np.int64))
    column = {k: i for i, k in enumerate(indices)}
    confidence = np.full((len(generations), len(indices)), np.nan)
    inside = [r for r in rows if 0 <= r["generation"] <= last]
    if inside:
        at = np.searchsorted(generations, [r["generation"] for r in inside])  # the first point at or after it
        np.fmax.at(confidence, (at, [column[r["index"]] for r in inside]), [r["confidence"] for r in inside])
    confidence = np.fmax.accumulate(confidence, axis=0)  # a class holds its confidence until it rises
    return generations, confidence, indices, [labels[k] for k in indices], exact


def threshold_counts(confidence: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> dict[float, np.ndarray]:
    """{threshold: (G,) the number of classes at or past it after each generation}, from (G, K) confidence."""
    filled = np.nan_to_num(confidence, nan=0.0)
    return {t: (filled >= t).sum(axis=1) for t in thresholds}


def throughput(metrics: Sequence[dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(elapsed_s (R,), evals_per_s (R,)): evaluations per second between consecutive metrics rows (the first
    row against the start), at each row's elapsed time; rows without time passing are skipped."""
    elapsed, rates = [], []
    prev_e, prev_t = 0.0, 0.0
    for m in metrics:
        if "evaluations" not in m or "elapsed_s" not in m:
            continue
        e, t = m["evaluations"], m["elapsed_s"]
        if t > prev_t and e >= prev_e:
            elapsed.append(t)
            rates.append((e - prev_e) / (t - prev_t))
            prev_e, prev_t = e, t
    return np.array(elapsed, dtype=float), np.array(rates, dtype=float)


def smoothed_throughput(series: "RunSeries", points: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(elapsed_s, evals_per_s) over windows of consecutive metrics rows (about ``points`` of them): the
    evaluations of a window over its seconds, at the window's end."""
    t, rate = series.elapsed_s, series.evals_per_s
    if not len(t):
        return t, rate
    dt = np.diff(np.concatenate([[0.0], t]))
    evals = rate * dt
    w = max(1, len(t) // points)
    ends = np.arange(w - 1, len(t), w)
    if ends[-1] != len(t) - 1:
        ends = np.append(ends, len(t) - 1)
    starts = np.concatenate([[0], ends[:-1] + 1])
    sums_e = np.array([evals[a:b + 1].sum() for a, b in zip(starts, ends)])
    sums_t = np.array([dt[a:b + 1].sum() for a, b in zip(starts, ends)])
    return t[ends], sums_e / sums_t


def run_series(run_dir: str | Path, name: Optional[str] = None) -> RunSeries:
    """Everything ``fool plot`` draws for one run directory (a :class:`FoolingError` if it is not one)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise not_a_run_directory(run_dir)
    if not (path / "config.json").is_file() and not (path / "summary.json").is_file():
        raise FoolingError(f"{run_dir} is not a run directory (no config.json)")
    generations, confidence, indices, labels, exact = class_curves(path)
    elapsed, rates = throughput(read_metrics_rows(path))
    run = (read_json_object(path / "config.json") or {}).get("run")
    iterates = "step" if isinstance(run, dict) and run.get("command") == "ascend" else "generation"
    return RunSeries(name or path.name, path, generations, confidence, indices, labels,
                     threshold_counts(confidence), elapsed, rates, exact, iterates)
