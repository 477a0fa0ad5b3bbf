"""File names in a run directory: the per-generation tables, and the elites' ``<index>_<label>.png`` (+ ``.json``),
stable for the whole run.

Runs made before names were stable used ``<index>_<label>_<confidence>.png``; :func:`parse_elite_stem`
reads both. The writer (:mod:`fooling.rundir.writer`) and the reader (:mod:`fooling.rundir.reader`) share these.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ..limits import MAX_LABEL_IN_NAME

METRICS_CSV = "metrics.csv"  # a row a generation (fooling.rundir.writer)
CLASSES_CSV = "classes.csv"  # a row each time a class's elite improved (fooling.run.class_metrics)


def safe_label(label: str) -> str:
    """A class label made safe for a file name: 'king penguin' -> 'king_penguin' (at most MAX_LABEL_IN_NAME chars)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")[:MAX_LABEL_IN_NAME].strip("_") or "class"


def elite_stem(index: int, label: str) -> str:
    """``<index>_<label>``, e.g. ``7_7`` or ``145_king_penguin``: a class's elite keeps its name all run long.

    The confidence lives in summary.json and in the PNG's text metadata (key ``confidence``).
    """
    return f"{index}_{safe_label(label)}"


# Both file name formats: ``<index>_<label>`` (now) and ``<index>_<label>_<confidence>`` (runs made before
# names were stable); a new-format name is first matched exactly against the label, see parse_elite_stem.
ELITE_STEM = re.compile(r"^(?P<index>\d+)_(?P<label>.+?)(?:_(?P<confidence>\d+\.\d+))?$")


def parse_elite_stem(stem: str, label: Optional[str] = None) -> Optional[tuple[int, str, Optional[float]]]:
    """(class index, label, confidence or None) of an elite file's stem, None for other files.

    ``label``: the class's label where known (summary.json); a stem equal to ``elite_stem(index, label)`` is
    then the new format even if the label itself ends like a confidence.
    """
    match = ELITE_STEM.match(stem)
    if match is None:
        return None
    index = int(match["index"])
    if label is not None and stem == elite_stem(index, label):
        return index, label, None
    confidence = match["confidence"]
    return index, match["label"], float(confidence) if confidence is not None else None


def elite_class(path: Path) -> Optional[int]:
    """The class index of an elite file (``7_7.png`` or an old run's ``7_7_0.99996.png`` -> 7), None for others."""
    parsed = parse_elite_stem(path.stem)
    return parsed[0] if parsed else None
