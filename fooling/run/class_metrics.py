"""RUN_DIR/classes.csv: each class's best confidence over the generations, for plots (``fool plot``).

Long format, one row each time a class's elite improved (the archive only ever replaces an elite by a
strictly fitter one, so between its rows a class's confidence holds)::

    generation,index,label,confidence
    0,0,0,0.41234567
    0,1,1,0.2987...
    3,1,1,0.5123...

A dense table (every class at every generation) would be 1000 rows a generation for ImageNet; the changes
alone give the same curves (:func:`fooling.plots.series.class_curves` fills them forward).

Crash safety without a place in the checkpoint: generation g's rows are exactly the cells whose
``generation_found`` is g, with their current fitness, so the rows of the checkpointed generation can always
be rebuilt from the checkpoint's archive. The hook appends generation g's rows after the generation (and after
its checkpoint, as hooks run after :class:`~fooling.run.hooks.Checkpoints`); rows of earlier generations were
appended before generation g began. On the start of every ``run()`` call (so on a resume) the file is put
back to the checkpoint: rows after the last finished generation (work the resume redoes) and a line cut short
by a crash are dropped, and that generation's rows are rewritten from the archive. So a crash at any write
resumes to the file an uninterrupted run writes, byte for byte.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..rundir import atomic
from ..rundir.names import CLASSES_CSV
from .hooks import GenerationRecord, Hook

if TYPE_CHECKING:
    from .evolve import EvolutionRun

CLASSES_FIELDS = ("generation", "index", "label", "confidence")


def _text(rows: list[tuple[int, int, str, float]], header: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CLASSES_FIELDS)
    writer.writerows((g, k, label, repr(float(c))) for g, k, label, c in rows)
    return out.getvalue()


def write_classes_csv(path: Path, rows: list[tuple[int, int, str, float]]) -> None:
    """Replace classes.csv at ``path`` with ``rows`` (generation, index, label, confidence), atomically: a run
    that knows its whole history at once (an ascent) writes it whole."""
    atomic.write(path, _text([], header=True) + _text(rows))


def class_heads(run: "EvolutionRun") -> list[str]:
    """Each cell's "index,label," as classes.csv writes it (the label quoted where CSV needs it)."""
    out = io.StringIO()
    writer, heads = csv.writer(out, lineterminator=""), []
    for k, label in zip(run.archive.classes, run.archive.labels):
        out.seek(0)
        out.truncate()
        writer.writerow((int(k), str(label), ""))
        heads.append(out.getvalue())
    return heads


def generation_text(run: "EvolutionRun", generation: int, heads: list[str]) -> str:
    """classes.csv's lines for the classes whose elite was found in ``generation`` (``heads``: of
    :func:`class_heads`): what :func:`_text` makes of their rows, without a csv writer's per-field work (an
    ImageNet generation early in a run improves most of its 1,000 classes)."""
    archive = run.archive
    cells = np.flatnonzero((archive.generation_found == generation) & np.isfinite(archive.fitness))
    at = f"{generation},"
    return "".join([f"{at}{heads[c]}{value!r}\r\n" for c, value in
                    zip(cells.tolist(), archive.fitness[cells].astype(np.float64).tolist())])


def _complete_lines(text: str) -> list[str]:
    """The lines of ``text`` that end with a newline (a crash may have cut the last one short)."""
    lines = text.splitlines(keepends=True)
    return [line for line in lines if line.endswith("\n")]


def _row_generation(line: str) -> Optional[int]:
    head = line.split(",", 1)[0]
    return int(head) if head.isdigit() else None


class ClassMetrics(Hook):
    """Writes RUN_DIR/classes.csv (see the module docstring). One of the run's built-in hooks."""

    def __init__(self) -> None:
        self.path: Optional[Path] = None
        self.heads: list[str] = []  # each cell's "index,label," (class_heads)

    def on_start(self, run: "EvolutionRun") -> None:
        self.path = run.rundir.path / CLASSES_CSV
        self.heads = class_heads(run)
        done = run.strategy.generation - 1  # the last finished (checkpointed, on a resume) generation
        header = _text([], header=True)
        try:
            old = None
            if self.path.is_file():
                with open(self.path, encoding="utf-8", errors="replace", newline="") as f:
                    old = f.read()
        except OSError:
            old = None
        if old is None and done >= 0:
            # a run made before classes.csv existed: its history is each class's last improvement
            archive = run.archive
            cells = np.flatnonzero(np.isfinite(archive.fitness))
            rows = sorted(((int(archive.generation_found[c]), int(archive.classes[c]), str(archive.labels[c]),
                            float(archive.fitness[c])) for c in cells), key=lambda r: r[0])
            run.log.warning("%s was missing: started it from each class's current elite", CLASSES_CSV)
            atomic.write(self.path, header + _text(rows))
            return
        kept = [header]
        for line in _complete_lines(old or "")[1:]:
            generation = _row_generation(line)
            if generation is not None and generation < done:
                kept.append(line)
        new = "".join(kept) + (generation_text(run, done, self.heads) if done >= 0 else "")
        if new != old:
            atomic.write(self.path, new)

    def after_generation(self, run: "EvolutionRun", record: GenerationRecord) -> None:
        text = generation_text(run, record.generation, self.heads)
        if text and self.path is not None:
            atomic.append(self.path, text)

