"""Assemble a self-contained gallery folder: copies of the runs' files, contact sheets, the page.

Layout of ``OUT``::

    index.html
    runs/<slug>/elites/…png|json   copies of each run's elites (and summary.json, config.json, metrics.csv)
    runs/<slug>/snapshots/<generation>/…png   where the run kept snapshots
    runs/<slug>/contact_sheet.png
    runs/<slug>/plot.png           the run's progress (``fool plot``'s figure)
    transfer/<slug>/…              copies of `fool transfer` reports given with --transfer

The gallery never deletes or overwrites anything it did not make. It is built in a temporary
folder (inside OUT when OUT exists, else next to it: the same file system) and moved into place.
``OUT/.fooling-gallery`` (JSON) lists what it made; a later build replaces exactly those entries.
A folder that holds anything else (run directories, a README) is refused unless ``force``, and
even then only the gallery's own entries are added or replaced beside it; an entry the gallery
would make but did not (a ``runs/`` of the user's) is refused always. A run or transfer folder
given as input may not lie inside what a build replaces, and OUT may not be or lie in a run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..rundir import Elite, RunElites, read_run, read_snapshots
from ..analysis.transfer_report import FILES as TRANSFER_FILES
from ..errors import FoolingError
from ..imaging import read_image
from ..outputs import enclosing_run
from .contact_sheet import contact_sheet
from .page import Card, RunView, Step, TransferView, render_page

RUN_FILES = ("summary.json", "config.json", "metrics.csv", "classes.csv")
MARKER = ".fooling-gallery"  # in OUT: what the gallery made there (JSON), so a rebuild replaces only that
ENTRIES = ("index.html", "runs", "transfer")  # everything a gallery makes in OUT (besides MARKER)
SHEET_MAX = 64  # classes on a contact sheet: the most confident ones (ImageNet has 1000)


MAX_SLUG = 120  # characters of a run's folder in the gallery (a file system takes 255 bytes a name)


def _short(slug: str) -> str:
    """``slug`` if short enough, else its start and a digest of the whole (distinct slugs stay distinct)."""
    if len(slug) <= MAX_SLUG:
        return slug
    import hashlib

    return f"{slug[:MAX_SLUG - 9]}-{hashlib.sha256(slug.encode()).hexdigest()[:8]}"


def unique_slugs(paths: Sequence[Path]) -> list[str]:
    """Short unique names: the last path part, or as many trailing parts as it takes ('direct-mnist-lenet_s0')."""
    parts = [Path(p).resolve().parts for p in paths]
    depth = 1
    while True:
        slugs = ["-".join(p[-depth:]) for p in parts]
        if len(set(slugs)) == len(slugs) or depth >= max(len(p) for p in parts):
            break
        depth += 1
    slugs = [_short(slug) for slug in slugs]
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
    for e in run.elites:  # every PNG decodes (a broken one: one line naming it), only the shown ones are kept
        if e not in shown:
            read_image(e.png).close()
    images = [read_image(e.png) for e in shown]
    title = f"{run.source}, {run.encoding}" + (f", seed {run.seed}" if run.seed is not None else "") + (
        f", {run.iterates} {run.generation}" if run.generation is not None else "") + (
        f" (the {SHEET_MAX} most confident of {len(run.elites)} classes)" if len(run.elites) > SHEET_MAX else "")
    sheet = contact_sheet(images, [e.label for e in shown], [e.confidence for e in shown], title)
    sheet.save(folder / "contact_sheet.png", optimize=True)
    plot = _plot(run, folder / "plot.png")
    return RunView(
        slug=slug, path=str(run.path), source=run.source, encoding=run.encoding, seed=run.seed,
        generation=run.generation, evaluations=run.evaluations, cards=cards,
        contact_sheet=(folder / "contact_sheet.png").relative_to(out).as_posix(), files=files,
        pixelated=max(images[0].size) <= 64, progression=progression, iterates=run.iterates,
        plot=plot.relative_to(out).as_posix() if plot is not None else None,
    )


def _plot(run: RunElites, path: Path) -> Path:
    """``fool plot``'s figure of ``run``, saved as ``path``."""
    from ..plots.figure import plot_runs

    plot_runs([run.path], path, title=f"{run.source}, {run.encoding}")
    return path


def read_transfer(folder: str | Path) -> tuple[dict, dict[str, bytes]]:
    """A `fool transfer` output folder: its transfer.json and the bytes of every report file."""
    folder = Path(folder)
    missing = [name for name in TRANSFER_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise FoolingError(f"{folder} is not a `fool transfer` output folder (missing {', '.join(missing)})")
    data = {name: (folder / name).read_bytes() for name in TRANSFER_FILES.values()}
    try:
        return json.loads(data[TRANSFER_FILES["json"]]), data
    except (ValueError, RecursionError):
        raise FoolingError(f"{folder / TRANSFER_FILES['json']} is not valid JSON") from None


def build_transfer(report: dict, files: dict[str, bytes], slug: str, out: Path) -> TransferView:
    """Copy one transfer report into ``out/transfer/<slug>/``."""
    folder = out / "transfer" / slug
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    rel = {name: (folder / name).relative_to(out).as_posix() for name in files}
    links = {name: rel[name] for name in files if name != TRANSFER_FILES["heatmap"]}
    pairs = report.get("pairs") if isinstance(report, dict) else None
    return TransferView(slug=slug, heatmap=rel[TRANSFER_FILES["heatmap"]], files=links,
                        pairs=[p for p in pairs if isinstance(p, dict)] if isinstance(pairs, list) else [])


def _made_here(out: Path) -> list[str]:
    """The entries of ``out`` that an earlier gallery build recorded as its own (only names in ENTRIES)."""
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
        made = data.get("entries", []) if isinstance(data, dict) else []
    except (OSError, ValueError, RecursionError):
        return []
    return [name for name in ENTRIES if name in made]


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_out(out: Path, inputs: Sequence[Path], force: bool = False, runs: Sequence[Path] = ()) -> list[str]:
    """Check that a gallery may be built into ``out``; returns the entries of an earlier build to replace.

    A one-line :class:`FoolingError` (before any work) if ``out`` is a file, is or lies inside a
    run directory (one of ``runs`` or any folder with config.json), holds content the gallery did not make (unless ``force``), holds
    a foreign entry named like one the gallery makes, or if an input lies inside what is replaced.
    """
    if out.exists() and not out.is_dir():
        raise FoolingError(f"--out {out} is a file, not a folder")
    run = enclosing_run(out)
    if run is not None:
        raise FoolingError(f"--out {out} is inside the run directory {run}; pick a folder outside runs")
    for path in runs:
        if _inside(out, path):
            raise FoolingError(f"--out {out} is inside the run directory {path}; pick a folder outside runs")
    if not out.is_dir():
        return []
    made = _made_here(out)
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name != MARKER and p.name not in made and not p.name.startswith(".fooling-gallery-"))
    clash = [name for name in foreign if name in ENTRIES]
    if clash:
        raise FoolingError(f"--out {out} already holds {', '.join(clash)}, which the gallery did not make "
                           "(it is never replaced, even with --force); pick another --out folder")
    if foreign and not force:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise FoolingError(f"--out {out} holds files the gallery did not make ({shown}); pick an empty or new "
                           "folder, or add --force to add the gallery beside them (nothing of theirs is touched)")
    for path in inputs:
        for name in made:
            if _inside(path, out / name):
                raise FoolingError(f"{path} lies inside {out / name}, which this build would replace; "
                                   "copy it elsewhere or pick another --out folder")
    return made


def _install(tmp: Path, out: Path, replace: Sequence[str]) -> None:
    """Move the built gallery from ``tmp`` into ``out``, replacing only ``replace`` (an earlier build's entries)."""
    if not out.exists():
        os.replace(tmp, out)
        return
    trash = Path(tempfile.mkdtemp(prefix=".fooling-gallery-old-", dir=out))
    try:
        for name in replace:
            if os.path.lexists(out / name):
                os.replace(out / name, trash / name)
        for name in (*ENTRIES, MARKER):
            if os.path.lexists(tmp / name):
                os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def build_gallery(run_dirs: Sequence[str | Path], out: str | Path, transfer_dirs: Sequence[str | Path] = (),
                  title: str = "Fooling images", force: bool = False,
                  progress: Optional[Callable[[str], None]] = None) -> Path:
    """Write the gallery for ``run_dirs`` (and transfer reports) into ``out``; returns the page's path.

    Nothing the gallery did not make is deleted or overwritten (see the module docstring);
    ``force`` allows adding the gallery to a folder that holds other files. ``progress`` is
    called with each run's path once it is copied.
    """
    if not run_dirs:
        raise FoolingError("give at least one run directory")
    out = Path(out)
    runs = [read_run(p) for p in run_dirs]  # every input is checked before anything is written
    transfers = [read_transfer(p) for p in transfer_dirs]
    replace = check_out(out, [Path(p) for p in (*run_dirs, *transfer_dirs)], force, [Path(p) for p in run_dirs])
    if out.exists():
        tmp = Path(tempfile.mkdtemp(prefix=".fooling-gallery-new-", dir=out))
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.fooling-gallery-new-", dir=out.parent))
    try:
        views = []
        for run, slug in zip(runs, unique_slugs([r.path for r in runs])):
            views.append(build_run(run, slug, tmp))
            if progress is not None:
                progress(str(run.path))
        transfer_views = [build_transfer(report, files, slug, tmp)
                          for (report, files), slug in zip(transfers, unique_slugs([Path(p) for p in transfer_dirs]))
                          ] if transfers else []
        (tmp / "index.html").write_text(render_page(title, views, transfer_views), encoding="utf-8")
        made = [name for name in ENTRIES if (tmp / name).exists()]
        (tmp / MARKER).write_text(json.dumps({"made_by": "fool gallery", "entries": made}) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a gallery is meant to be shared
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _install(tmp, out, replace)
    return out / "index.html"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
