"""A run directory's elites as a user has them: the PNGs (and genomes) in elites/ and snapshots/.

File names are ``<index>_<label>.png`` (stable for the whole run, see :mod:`fooling.rundir.names`), with the
confidence in summary.json and in the PNG's text metadata; runs made before names were stable used
``<index>_<label>_<confidence>.png``, and both are read. summary.json adds the full label, generation
found and per-model scores. A live run is read consistently: one summary.json is read once, and the files it
names (replaced atomically by the writer, never deleted first) are the elites.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from PIL import Image

from ..errors import FoolingError
from ..paths import not_a_run_directory
from ..imaging import load_image
from .names import elite_stem, parse_elite_stem
from .writer import RunDirectory


@dataclass(frozen=True)
class Elite:
    """One class's elite image: where its files are and what the run recorded about it."""

    index: int
    label: str
    confidence: float  # the archive's confidence (computed on the float image, not the 8-bit PNG)
    png: Path
    genome: Optional[Path] = None
    generation_found: Optional[int] = None
    scores: dict[str, float] = field(default_factory=dict)  # each ensemble member's confidence


@dataclass(frozen=True)
class RunElites:
    """A finished (or checkpointed) run: its source model(s), encoding and elites."""

    path: Path
    models: list[str]
    combine: str
    encoding: str
    num_classes: int
    generation: Optional[int]
    evaluations: Optional[int]
    seed: Optional[int]
    elites: list[Elite]
    strategy: str = "map-elites"  # map-elites | ga (fool evolve), ascent | pgd | fgsm (fool ascend)

    @property
    def iterates(self) -> str:
        """What one of ``generation`` counts: 'step' for gradient runs (``fool ascend``), else 'generation'."""
        return "step" if self.strategy in ("ascent", "pgd", "fgsm") else "generation"

    @property
    def source(self) -> str:
        """The network(s) the run fooled: 'mnist-lenet' or 'mnist-lenet+mnist-lenet-b (min)'."""
        if len(self.models) == 1:
            return self.models[0]
        return f"{'+'.join(self.models)} ({self.combine})"


def read_json_object(path: Path) -> Optional[dict[str, Any]]:
    """The JSON object in ``path`` (summary.json, config.json), or None when it is missing, unreadable, not JSON
    or not an object: for listings that must go on past a damaged run."""
    import json

    if not path.is_file():  # missing, a folder, or a FIFO (reading one would wait for a writer forever)
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def png_confidence(png: Path) -> Optional[float]:
    """The confidence a run wrote into an elite PNG's text metadata (key ``confidence``), None if absent."""
    try:
        with Image.open(png) as image:
            value = image.text.get("confidence")  # type: ignore[attr-defined]
        return float(value) if value is not None else None
    except (OSError, ValueError, AttributeError):
        return None


def _elite(png: Path, index: int, label: str, confidence: Optional[float], entry: dict[str, Any]) -> Elite:
    genome = png.with_suffix(".json")
    if entry.get("confidence") is not None:
        confidence = float(entry["confidence"])
    elif confidence is None:
        confidence = png_confidence(png)
    return Elite(
        index=index, label=str(entry.get("label", label)),
        confidence=float("nan") if confidence is None else confidence, png=png,
        genome=genome if genome.is_file() else None, generation_found=entry.get("generation_found"),
        scores=dict(entry.get("scores") or {}),
    )


def read_elite_folder(folder: Path, summary_classes: Sequence[dict[str, Any]] = ()) -> list[Elite]:
    """The elites in one folder (elites/ or a snapshot), sorted by class index.

    With ``summary_classes`` (summary.json's "classes"), exactly the files they name: each filled class's
    ``<index>_<label>.png``, or an older run's ``<index>_<label>_<confidence>.png``. Without, every elite
    PNG in the folder (the confidence from the name or the PNG's metadata).
    """
    if not folder.is_dir():
        return []
    elites = []
    if summary_classes:
        older: dict[int, Path] = {}
        for entry in summary_classes:
            if entry.get("confidence") is None:
                continue
            index, label = int(entry["index"]), str(entry.get("label", ""))
            png = folder / f"{elite_stem(index, label)}.png"
            if not png.is_file():  # a run made before names were stable, or a label edited since
                if not older:
                    for path in sorted(folder.glob("*.png")):
                        parsed = parse_elite_stem(path.stem)
                        if parsed is not None:
                            older.setdefault(parsed[0], path)
                if index not in older:
                    continue
                png = older[index]
            elites.append(_elite(png, index, label, None, entry))
        return sorted(elites, key=lambda e: e.index)
    for png in sorted(folder.glob("*.png")):
        parsed = parse_elite_stem(png.stem)
        if parsed is not None:
            elites.append(_elite(png, parsed[0], parsed[1], parsed[2], {}))
    return sorted(elites, key=lambda e: e.index)


def _number(value: Any) -> bool:
    """A JSON number that is a float too (an integer literal beyond floats' range, 1e400 written out, is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        (isinstance(value, float) or abs(value) <= sys.float_info.max)


def _class_entry(entry: Any) -> bool:
    """A summary.json "classes" entry as the writer makes it: an integer index, a number (or null) confidence,
    a {model: number} scores object if any."""
    if not isinstance(entry, dict) or not isinstance(entry.get("index"), int) or isinstance(entry["index"], bool):
        return False
    scores = entry.get("scores") or {}
    return (entry.get("confidence") is None or _number(entry["confidence"])) and isinstance(scores, dict) \
        and all(_number(v) for v in scores.values())


def _checked_summary(summary: dict[str, Any], config: dict[str, Any], rundir: RunDirectory) -> None:
    """A one-line :class:`FoolingError` naming the file if a hand edit left summary.json or config.json with
    values of the wrong kind (they would fail deep inside a command)."""
    classes, models = summary.get("classes", []), summary.get("models")
    if not isinstance(classes, list) or not all(_class_entry(c) for c in classes):
        raise FoolingError(f"{rundir.summary_path}: \"classes\" must be a list of objects, each with an integer "
                           "\"index\" and a number (or null) \"confidence\"")
    if models is not None and not (isinstance(models, list) and all(isinstance(m, str) for m in models)):
        raise FoolingError(f"{rundir.summary_path}: \"models\" must be a list of model names")
    run = config.get("run") or {}
    num_classes = run.get("num_classes") if isinstance(run, dict) else None
    if not isinstance(run, dict) or not (num_classes is None or _number(num_classes) and num_classes == int(
            num_classes) > 0):
        raise FoolingError(f"{rundir.config_path}: \"run\" must be an object whose \"num_classes\" is a positive "
                           "integer")


def _registry_classes(model: str, rundir: RunDirectory) -> int:
    """The class count of a registry model, for a run whose config.json does not record it. A model file, timm: or
    python: model named by a run directory is never loaded: that would run code the user did not name."""
    from ..classifiers import get_spec
    from ..classifiers.sources import is_source

    if is_source(model):
        raise FoolingError(f"{rundir.config_path} does not record the number of classes (\"run\": {{\"num_classes\": "
                           f"N}}) and {model} is not a built-in model: reading a run never loads a model file or code")
    return get_spec(model).num_classes


def read_run(path: str | Path) -> RunElites:
    """Read a run directory; a :class:`FoolingError` if it is not one or has no elite PNGs."""
    rundir = RunDirectory(path)
    if not rundir.path.is_dir():
        raise not_a_run_directory(rundir.path)
    config = rundir.read_config()
    summary = rundir.read_summary()
    _checked_summary(summary, config, rundir)
    models = list(summary.get("models") or [summary.get("model") or config.get("model")])
    if not models or not isinstance(models[0], str):
        raise FoolingError(f"{rundir.path} does not name the model it was run against")
    elites = read_elite_folder(rundir.elites, summary.get("classes", ()))
    if not elites:
        raise FoolingError(f"{rundir.path} has no elite images in {rundir.elites}")
    num_classes = (config.get("run") or {}).get("num_classes")
    if num_classes is None:
        num_classes = _registry_classes(models[0], rundir)
    return RunElites(
        path=rundir.path, models=models, combine=str(config.get("combine", "mean")),
        encoding=str(summary.get("encoding") or config.get("encoding") or "?"), num_classes=int(num_classes),
        generation=summary.get("generation"), evaluations=summary.get("evaluations"), seed=summary.get("seed"),
        elites=elites, strategy=str(summary.get("strategy") or config.get("strategy") or "map-elites"),
    )


def read_snapshots(path: str | Path) -> dict[int, list[Elite]]:
    """``RUN_DIR/snapshots/<generation>/`` elite folders, by generation (empty if the run kept none)."""
    root = Path(path) / "snapshots"
    found = {}
    for folder in root.iterdir() if root.is_dir() else []:
        if folder.is_dir() and folder.name.isdigit():
            elites = read_elite_folder(folder)
            if elites:
                found[int(folder.name)] = elites
    return dict(sorted(found.items()))


def load_images(elites: Sequence[Elite]) -> torch.Tensor:
    """The elites' PNGs as one batch (N, C, H, W) in [0, 1]; grey PNGs give C = 1, others C = 3."""
    with Image.open(elites[0].png) as first:
        channels = 1 if first.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
    images = [load_image(e.png, channels) for e in elites]
    if len({tuple(im.shape) for im in images}) != 1:
        raise FoolingError(f"the elite images in {elites[0].png.parent} differ in size")
    return torch.cat(images)
