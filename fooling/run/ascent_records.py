"""What a ``fool ascend`` run reports per class: summary.json's class records, metrics.csv's rows
and milestones.csv, built from the batches' :class:`~..search.gradient.AscentResult`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..archive import THRESHOLDS
from ..search.gradient import AscentResult
from ..rundir.writer import median_and_max
from .summary import class_record

MILESTONE_COLUMNS = ["index", "label", "start_confidence", "confidence", "best_step", "top1", *map(str, THRESHOLDS)]


def class_records(results: Sequence[AscentResult], labels: Sequence[str]) -> list[dict[str, Any]]:
    """One summary.json record per class of ``results``: confidence, start confidence, step found, milestones
    (and the change sizes "linf", "l2" of perturbations)."""
    records = []
    for result in results:
        for i, k in enumerate(result.targets):
            entry = class_record(int(k), labels[k], float(result.confidence[i]), int(result.best_step[i]),
                                 result.milestones.passed_record(i), start_confidence=float(result.trace[0, i]),
                                 top1=result.milestones.record(i)["top1"])
            if "linf" in result.extra:
                entry["linf"] = float(result.extra["linf"][i])
                entry["l2"] = float(result.extra["l2"][i])
            records.append(entry)
    return records


def confidence_trace(results: Sequence[AscentResult], steps: int) -> np.ndarray:
    """(steps + 1, classes): best confidence so far per class after each step, carried forward."""
    columns = []
    for result in results:
        trace = np.full((steps + 1, len(result.targets)), np.nan)
        trace[: len(result.trace)] = result.trace
        trace[len(result.trace):] = result.trace[-1]
        columns.append(trace)
    return np.concatenate(columns, axis=1)


def metrics_rows(results: Sequence[AscentResult], steps: int, step_seconds: np.ndarray) -> list[dict[str, Any]]:
    """One metrics.csv row per step (the 'generation' column), over all classes of ``results``;
    step_seconds: (steps + 1,) seconds spent on each step over all batches."""
    if not results:
        return []
    trace = confidence_trace(results, steps)
    ran = np.concatenate([np.full(len(r.targets), r.steps_run) for r in results])
    rows, evaluations = [], 0
    for step in range(int(ran.max()) + 1):
        evaluations += int((ran >= step).sum())
        median, best = median_and_max(trace[step])
        rows.append({"generation": step, "evaluations": evaluations, "coverage": 1.0,
                     "median_confidence": round(median, 8), "max_confidence": round(best, 8),
                     "elapsed_s": round(float(step_seconds[: step + 1].sum()), 3)})
    return rows


def class_rows(results: Sequence[AscentResult], labels: Sequence[str]) -> list[tuple[int, int, str, float]]:
    """classes.csv's rows for an ascent, ``fool evolve``'s format with steps for generations: each class's best
    confidence at step 0 and at every step it rose (result.trace (S, k) holds the best so far)."""
    rows = []
    for result in results:
        trace = np.asarray(result.trace, dtype=float)
        rose = np.ones(trace.shape, dtype=bool)
        rose[1:] = trace[1:] > trace[:-1]
        for step, i in zip(*np.nonzero(rose & np.isfinite(trace))):  # step by step, classes in order
            k = int(result.targets[i])
            rows.append((int(step), k, str(labels[k]), float(trace[step, i])))
    return sorted(rows, key=lambda r: (r[0], r[1]))


def write_milestones(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """milestones.csv: per class the first step at which it was top-1 and passed each threshold."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MILESTONE_COLUMNS)
        for r in records:
            writer.writerow([r["index"], r["label"], f"{r['start_confidence']:.6f}", f"{r['confidence']:.6f}",
                             r["generation_found"], r["top1"], *(r["passed"][str(t)] for t in THRESHOLDS)])
