"""Writing a :class:`TransferResult`: CSV, JSON, a Markdown table and a heatmap PNG."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

from .draw import format_confidence
from .heatmap import draw_heatmap
from .transfer import PairSummary, TransferResult

FILES = {"pairs_csv": "transfer.csv", "classes_csv": "transfer_classes.csv", "json": "transfer.json",
         "markdown": "transfer.md", "heatmap": "transfer_heatmap.png"}
PAIR_FIELDS = ["source", "encoding", "target", "target_is_source", "runs", "images", "median", "mean",
               "above_50", "above_99", "top1_agreement", "source_median", "archive_median",
               "survival_mean", "survival_min", "survival_99"]
CLASS_FIELDS = ["run", "source", "encoding", "target", "target_is_source", "index", "label", "archive_confidence",
                "source_confidence", "confidence", "top1", "top1_label", "agrees",
                "survival_mean", "survival_min", "survival_99"]


def _percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def row_label(pair: PairSummary) -> str:
    """A heatmap / table row: 'mnist-lenet, direct'."""
    return f"{pair.source}, {pair.encoding}"


def matrix(result: TransferResult) -> tuple[list[str], list[list[PairSummary | None]]]:
    """Row labels and the (source, encoding) × target grid of pairs (None where a pair has no data)."""
    rows = list(dict.fromkeys(row_label(p) for p in result.pairs))
    grid: list[list[PairSummary | None]] = [[None] * len(result.targets) for _ in rows]
    for p in result.pairs:
        grid[rows.index(row_label(p))][result.targets.index(p.target)] = p
    return rows, grid


def _cell(text: object) -> str:
    """A name as a Markdown table cell: a '|' in a model name or label would split the cell."""
    return str(text).replace("|", "\\|")


def markdown(result: TransferResult) -> str:
    """The Markdown report: a median matrix, the full pair table and per-class medians."""
    rows, grid = matrix(result)
    targets = [_cell(t) for t in result.targets]
    lines = [
        "# Transfer of fooling images",
        "",
        f"{len(result.runs)} runs, {sum(len(r.elites) for r in result.runs)} elite images, "
        f"scored from their 8-bit PNGs by {', '.join(result.targets)}. Each number is the confidence the target "
        "network gives to the class the image was evolved for. *source re-scored*: the network(s) the image was "
        "evolved against, scoring the PNG (for reference; the archive's own value was computed on the float image).",
        "",
        "## Median confidence (source × target; **bold**: the source network itself)",
        "",
        "| source, encoding | " + " | ".join(targets) + " |",
        "|---|" + "---:|" * len(result.targets),
    ]
    for label, cells in zip(rows, grid):
        values = ["–" if p is None else (f"**{format_confidence(p.median)}**" if p.target_is_source
                                         else format_confidence(p.median)) for p in cells]
        lines.append(f"| {_cell(label)} | " + " | ".join(values) + " |")
    lines += [
        "",
        "## Every pair",
        "",
        "| source | encoding | target | runs | images | median | mean | ≥ 50% | ≥ 99% | top-1 agrees "
        "| source re-scored (median) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in result.pairs:
        lines.append(
            f"| {_cell(p.source)} | {p.encoding} | {_cell(p.target)}{' (self)' if p.target_is_source else ''} | {p.runs} "
            f"| {p.images} | {format_confidence(p.median)} | {format_confidence(p.mean)} | {_percent(p.above_50)} "
            f"| {_percent(p.above_99)} | {_percent(p.top1_agreement)} | {format_confidence(p.source_median)} |")
    if any(p.survival_mean is not None for p in result.pairs):
        lines += ["", "## Survival under random transforms", "",
                  "The target's confidence for the class under K random transforms of each image "
                  "(`--transforms`, `--samples`): mean over images of the mean, median of the minimum, and the "
                  "mean share of transforms still >= 99%.", "",
                  "| source | encoding | target | images | mean | min (median) | still ≥ 99% |",
                  "|---|---|---|---:|---:|---:|---:|"]
        for p in result.pairs:
            if p.survival_mean is not None:
                lines.append(f"| {_cell(p.source)} | {p.encoding} | {_cell(p.target)} | {p.images} | "
                             f"{format_confidence(p.survival_mean)} | {format_confidence(p.survival_min)} | "
                             f"{_percent(p.survival_99)} |")
    labels = list(dict.fromkeys(label for p in result.pairs for label in p.per_class))
    if 0 < len(labels) <= 20:
        lines += ["", "## Median confidence per class (over runs)", "",
                  "| source | encoding | target | " + " | ".join(map(_cell, labels)) + " |",
                  "|---|---|---|" + "---:|" * len(labels)]
        for p in result.pairs:
            cells = [format_confidence(p.per_class[k]) if k in p.per_class else "–" for k in labels]
            lines.append(f"| {_cell(p.source)} | {p.encoding} | {_cell(p.target)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def heatmap(result: TransferResult):
    """The source × target heatmap of median confidence, with '≥99%' and top-1 agreement in each cell."""
    rows, grid = matrix(result)
    values = [[math.nan if p is None else p.median for p in cells] for cells in grid]
    notes = [["" if p is None else f">=99%: {_percent(p.above_99)}   top-1: {_percent(p.top1_agreement)}"
              for p in cells] for cells in grid]
    outlined = [[p is not None and p.target_is_source for p in cells] for cells in grid]
    return draw_heatmap(values, rows, result.targets, "Median confidence of the target network for the source's class",
                        notes=notes, outlined=outlined, row_axis="evolved against, encoding", col_axis="scored by",
                        outline_note="the network the images were evolved against")


def write_report(result: TransferResult, out: str | Path) -> dict[str, Path]:
    """Write every file of :data:`FILES` into ``out`` (created if needed); returns their paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {key: folder / name for key, name in FILES.items()}
    with open(paths["pairs_csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, PAIR_FIELDS)
        writer.writeheader()
        for p in result.pairs:
            writer.writerow({k: getattr(p, k) for k in PAIR_FIELDS})
    with open(paths["classes_csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, CLASS_FIELDS)
        writer.writeheader()
        for s in result.scores:
            writer.writerow({**{k: getattr(s, k) for k in CLASS_FIELDS if k != "agrees"}, "agrees": s.agrees})
    paths["json"].write_text(json.dumps({
        "targets": result.targets,
        "runs": [{"path": str(r.path), "source": r.source, "models": r.models, "combine": r.combine,
                  "encoding": r.encoding, "seed": r.seed, "generation": r.generation} for r in result.runs],
        "pairs": [dataclasses.asdict(p) for p in result.pairs],
        "scores": [{**dataclasses.asdict(s), "agrees": s.agrees} for s in result.scores],
    }, indent=1))
    paths["markdown"].write_text(markdown(result))
    heatmap(result).save(paths["heatmap"])
    return paths
