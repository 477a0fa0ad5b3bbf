"""The retrain table (one row per iteration) as CSV, JSON and Markdown, and a plot drawn with PIL."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

from PIL import Image, ImageDraw, ImageFont

COLUMNS = [
    ("iteration", "iteration"),
    ("network", "network"),
    ("fooling_train_images", "fooling images trained on"),
    ("held_out_accuracy", "held-out accuracy"),
    ("held_out_fooling_share", "held-out real images called fooling"),
    ("median_confidence", "median fooling confidence"),
    ("classes_99", "classes >= 99%"),
    ("classes_9999", "classes >= 99.99%"),
    ("evolved_images", "fooling images pooled"),
    ("evaluations", "evaluations"),
]
PER_CLASS_IN_MARKDOWN = 10  # per-class columns appear in table.md for at most this many classes


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fmt(value: Any, key: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2%}" if key in ("held_out_accuracy", "held_out_fooling_share") else f"{value:.5f}"
    if isinstance(value, int) and key in ("evaluations", "fooling_train_images", "evolved_images"):
        return f"{value:,}"
    return str(value)


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """One row per iteration; per-class confidences as ``confidence_<label>`` columns."""
    labels = list(rows[0]["confidence"]) if rows else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([key for key, _ in COLUMNS] + [f"confidence_{label}" for label in labels])
    for row in rows:
        writer.writerow([("" if row[key] is None else row[key]) for key, _ in COLUMNS]
                        + [row["confidence"][label] for label in labels])
    return out.getvalue()


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table; per-class columns when there are few classes."""
    labels = list(rows[0]["confidence"]) if rows else []
    per_class = labels if len(labels) <= PER_CLASS_IN_MARKDOWN else []
    head = [title for _, title in COLUMNS] + [f"conf. {label}" for label in per_class]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [_fmt(row[key], key) for key, _ in COLUMNS] + [f"{row['confidence'][label]:.4f}" for label in per_class]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[dict[str, Any]], path: Path, title: str, size: tuple[int, int] = (720, 420)) -> None:
    """PNG: each class's best fooling confidence (grey dots) and their median (blue line) per iteration."""
    width, height = size
    left, right, top, bottom = 70, 20, 50, 50
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    last = max((row["iteration"] for row in rows), default=1) or 1

    def xy(iteration: float, confidence: float) -> tuple[float, float]:
        return (left + (width - left - right) * iteration / last,
                top + (height - top - bottom) * (1.0 - confidence))

    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x0, y = xy(0, tick)
        draw.line([(x0, y), (width - right, y)], fill=(225, 225, 225))
        draw.text((left - 45, y - 6), f"{tick:.2f}", fill="black", font=font)
    for row in rows:
        x, y = xy(row["iteration"], 0.0)
        draw.line([(x, y), (x, y + 5)], fill="black")
        draw.text((x - 3, y + 8), str(row["iteration"]), fill="black", font=font)
    draw.rectangle([xy(0, 1.0), xy(last, 0.0)], outline="black")
    for row in rows:
        for value in row["confidence"].values():
            x, y = xy(row["iteration"], value)
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(150, 150, 150))
    points = [xy(row["iteration"], row["median_confidence"]) for row in rows]
    if len(points) > 1:
        draw.line(points, fill=(30, 90, 200), width=3)
    for x, y in points:
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(30, 90, 200))
    draw.text((left, 8), title, fill="black", font=font)
    draw.text((left + (width - left - right) / 2 - 25, height - 22), "iteration", fill="black", font=font)
    draw.text((left, 24), "fooling confidence (blue: median over classes; grey: each class's best)", fill="black",
              font=font)
    tmp = path.with_name(f".{path.name}.tmp.png")
    image.save(tmp)
    os.replace(tmp, path)


def write_report(folder: Path, rows: Sequence[dict[str, Any]], settings: dict[str, Any],
                 title: Optional[str] = None, caveat: Optional[str] = None) -> None:
    """table.csv, table.json (rows + settings), table.md and confidence.png in ``folder``; ``caveat``: a note on
    what in the table does not compare (in table.json and under table.md's table)."""
    _atomic(folder / "table.csv", to_csv(rows))
    _atomic(folder / "table.json", json.dumps({"settings": settings, "rows": list(rows),
                                               **({"caveat": caveat} if caveat else {})}, indent=2))
    _atomic(folder / "table.md", to_markdown(rows) + (f"\nNote: {caveat}.\n" if caveat else ""))
    plot(rows, folder / "confidence.png",
         title or f"Fooling confidence after retraining: {settings['model']}, {settings['encoding']} encoding")
