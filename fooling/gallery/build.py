"""Assemble a self-contained gallery folder: copies of the runs' files, contact sheets, the page.

Layout of ``OUT``::

    index.html
    runs/<slug>/elites/…png|json   copies of each run's elites (and summary.json, config.json, metrics.csv)
    runs/<slug>/snapshots/<generation>/…png   where the run kept snapshots
    runs/<slug>/contact_sheet.png
    transfer/<slug>/…              copies of `fool transfer` reports given with --transfer

Only ``index.html``, ``runs/`` and ``transfer/`` are replaced; other files in OUT (a README) stay.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..analysis.elites import Elite, RunElites, read_run, read_snapshots
from ..analysis.transfer_report import FILES as TRANSFER_FILES
from ..errors import FoolingError
from .contact_sheet import contact_sheet
from .page import Card, RunView, Step, TransferView, render_page

RUN_FILES = ("summary.json", "config.json", "metrics.csv")
SHEET_MAX = 64  # classes on a contact sheet: the most confident ones (ImageNet has 1000)


def unique_slugs(paths: Sequence[Path]) -> list[str]:
    """Short unique names: the last path part, or as many trailing parts as it takes ('direct-mnist-lenet_s0')."""
    parts = [Path(p).resolve().parts for p in paths]
    depth = 1
    while True:
        slugs = ["-".join(p[-depth:]) for p in parts]
        if len(set(slugs)) == len(slugs) or depth >= max(len(p) for p in parts):
            break
        depth += 1
    seen: dict[str, int] = {}
    out = []
    for slug in slugs:  # the same folder given twice
        seen[slug] = seen.get(slug, 0) + 1
        out.append(slug if seen[slug] == 1 else f"{slug}-{seen[slug]}")
    return out


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _copy_elites(elites: Sequence[Elite], folder: Path, out: Path) -> list[tuple[Elite, str, str | None]]:
    """Copy PNGs (and genomes) into ``folder``; returns (elite, png, genome) with paths relative to ``out``."""
    copied = []
    for e in elites:
        _copy(e.png, folder / e.png.name)
        genome = None
        if e.genome is not None:
            _copy(e.genome, folder / e.genome.name)
            genome = (folder / e.genome.name).relative_to(out).as_posix()
        copied.append((e, (folder / e.png.name).relative_to(out).as_posix(), genome))
    return copied


def build_run(run: RunElites, slug: str, out: Path) -> RunView:
    """Copy one run into ``out/runs/<slug>/`` and draw its contact sheet."""
    folder = out / "runs" / slug
    cards = [Card(e.index, e.label, e.confidence, e.generation_found, png, genome, e.scores)
             for e, png, genome in _copy_elites(run.elites, folder / "elites", out)]
    files = {}
    for name in RUN_FILES:
        if (run.path / name).is_file():
            _copy(run.path / name, folder / name)
            files[name] = (folder / name).relative_to(out).as_posix()
    progression: dict[int, list[Step]] = {}
    snapshots = read_snapshots(run.path)
    for generation, elites in snapshots.items():
        for e, png, _ in _copy_elites(elites, folder / "snapshots" / str(generation), out):
            progression.setdefault(e.index, []).append(Step(generation, e.confidence, png))
    if snapshots and run.generation is not None and run.generation not in snapshots:  # end with the final elites
        for card in cards:
            progression.setdefault(card.index, []).append(Step(run.generation, card.confidence, card.png))
    shown = sorted(sorted(run.elites, key=lambda e: -e.confidence)[:SHEET_MAX], key=lambda e: e.index)
    images = [Image.open(e.png) for e in shown]
    title = f"{run.source}, {run.encoding}" + (f", seed {run.seed}" if run.seed is not None else "") + (
        f", {run.iterates} {run.generation}" if run.generation is not None else "") + (
        f" (the {SHEET_MAX} most confident of {len(run.elites)} classes)" if len(run.elites) > SHEET_MAX else "")
    sheet = contact_sheet(images, [e.label for e in shown], [e.confidence for e in shown], title)
    sheet.save(folder / "contact_sheet.png", optimize=True)
    return RunView(
        slug=slug, path=str(run.path), source=run.source, encoding=run.encoding, seed=run.seed,
        generation=run.generation, evaluations=run.evaluations, cards=cards,
        contact_sheet=(folder / "contact_sheet.png").relative_to(out).as_posix(), files=files,
        pixelated=max(images[0].size) <= 64, progression=progression, iterates=run.iterates,
    )


def read_transfer(folder: str | Path) -> tuple[dict, dict[str, bytes]]:
    """A `fool transfer` output folder: its transfer.json and the bytes of every report file."""
    folder = Path(folder)
    missing = [name for name in TRANSFER_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise FoolingError(f"{folder} is not a `fool transfer` output folder (missing {', '.join(missing)})")
    data = {name: (folder / name).read_bytes() for name in TRANSFER_FILES.values()}
    try:
        return json.loads(data[TRANSFER_FILES["json"]]), data
    except ValueError:
        raise FoolingError(f"{folder / TRANSFER_FILES['json']} is not valid JSON") from None


def build_transfer(report: dict, files: dict[str, bytes], slug: str, out: Path) -> TransferView:
    """Copy one transfer report into ``out/transfer/<slug>/``."""
    folder = out / "transfer" / slug
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    rel = {name: (folder / name).relative_to(out).as_posix() for name in files}
    links = {name: rel[name] for name in files if name != TRANSFER_FILES["heatmap"]}
    return TransferView(slug=slug, heatmap=rel[TRANSFER_FILES["heatmap"]], files=links, pairs=report["pairs"])


def build_gallery(run_dirs: Sequence[str | Path], out: str | Path, transfer_dirs: Sequence[str | Path] = (),
                  title: str = "Fooling images") -> Path:
    """Write the gallery for ``run_dirs`` (and transfer reports) into ``out``; returns the page's path."""
    if not run_dirs:
        raise FoolingError("give at least one run directory")
    runs = [read_run(p) for p in run_dirs]  # every input is checked before anything is written
    transfers = [read_transfer(p) for p in transfer_dirs]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FoolingError(f"--out {out} is a file, not a folder")
    for sub in ("runs", "transfer"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    views = [build_run(run, slug, out) for run, slug in zip(runs, unique_slugs([r.path for r in runs]))]
    transfer_views = [build_transfer(report, files, slug, out)
                      for (report, files), slug in zip(transfers, unique_slugs([Path(p) for p in transfer_dirs]))
                      ] if transfers else []
    page = out / "index.html"
    page.write_text(render_page(title, views, transfer_views), encoding="utf-8")
    return page
