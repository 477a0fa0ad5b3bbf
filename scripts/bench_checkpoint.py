"""Checkpoint cost of an ImageNet direct run: format 3 (content-addressed row blocks) against format 2 (one npz).

Builds the state a run with the snes-elites strategy checkpoints (elites 1000 x 196,608 float32, means
1000 x 196,608 and step sizes 1000 x 49,152, plus small arrays: about 1.8 GB), times its first checkpoint,
changes ``--changed`` random rows of each big array (about what a few generations change) and times the
next checkpoint, then one more with nothing changed, then the load. ``--mode new`` hands the checkpoint plain
arrays (every row hashed at every checkpoint); ``cached`` hands it the big arrays as
:class:`~fooling.rowdigests.Rows` with digest caches, as a run does (only rows changed since the last checkpoint
are read and hashed); ``legacy`` times the format-2 writer (one fsynced npz, then read back for its SHA-256), as
fooling did before. ``all`` (default) runs each in turn on the same state, in a temp folder on local disk, removed
after. Needs twice the state's memory (3.6 GB: the state, and the state loaded back).

``--squares 2`` makes the elites' and means' rows as snes-elites makes them (each value repeated over 2 x 2 pixels)
and ``cached`` hands them over as images, as a run does: the checkpoint then stores them at a quarter of their bytes
(format 5, :mod:`fooling.rundir.coarse`). The default, 1, is noise (what MAP-Elites' per-gene mutation makes).

    python scripts/bench_checkpoint.py [--mode all|new|cached|legacy] [--changed 300] [--rows 1000] [--squares 1]
                                       [--dir /tmp]

Prints figures per mode and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fooling.paths import sha256_file  # noqa: E402
from fooling.rowdigests import RowDigests, Rows  # noqa: E402
from fooling.rundir import atomic  # noqa: E402
from fooling.rundir import checkpoint as ckpt  # noqa: E402

BIG = ("archive.elites", "strategy.mean", "strategy.sigma")
IMAGES = ("archive.elites", "strategy.mean")  # rows that are images at full size
MODES = ("new", "cached", "legacy")


def image_of(genes: int) -> tuple[int, int, int]:
    """(3, side, side): the colour image a row of ``genes`` values is."""
    side = int(round((genes / 3) ** 0.5))
    if 3 * side * side != genes:
        raise SystemExit(f"bench_checkpoint.py: --genes {genes} is not a square colour image (3 x side x side)")
    return 3, side, side


def squares(rng: np.random.Generator, rows: int, genes: int, size: int) -> np.ndarray:
    """(rows, genes) float32: colour images whose values repeat over ``size`` x ``size`` pixels (1: noise)."""
    c, h, w = image_of(genes) if size > 1 else (1, 1, genes)
    if h % size or w % size:
        raise SystemExit(f"bench_checkpoint.py: --squares {size} does not divide a {h} x {w} image")
    small = rng.random((rows, c, h // size, w // size), dtype=np.float32)
    return np.repeat(np.repeat(small, size, 2), size, 3).reshape(rows, genes) if size > 1 else small.reshape(rows, -1)


def build_state(rows: int, genes: int, sigma_genes: int, seed: int, size: int = 1) -> dict[str, np.ndarray]:
    """The arrays of an ImageNet direct snes-elites checkpoint (random values of the real shapes and dtypes; the
    elites and means in ``size`` x ``size`` squares)."""
    rng = np.random.default_rng(seed)
    return {
        "archive.elites": squares(rng, rows, genes, size),
        "archive.fitness": rng.random(rows), "archive.generation_found": rng.integers(0, 100, rows),
        "archive.cell_elite": np.arange(rows), "strategy.mean": squares(rng, rows, genes, size),
        "strategy.sigma": rng.random((rows, sigma_genes), dtype=np.float32),
        "strategy.generator": rng.integers(0, 255, 5056, dtype=np.uint8), "strategy.stall": np.zeros(rows, np.int64),
    }


def change_rows(arrays: dict[str, np.ndarray], changed: int, seed: int, caches: dict[str, RowDigests],
                size: int = 1) -> None:
    """Give ``changed`` random rows of each big array new values, in place (forgetting their cached digests); the
    elites' and means' in ``size`` x ``size`` squares."""
    rng = np.random.default_rng(seed)
    for key in BIG:
        rows = rng.choice(arrays[key].shape[0], min(changed, arrays[key].shape[0]), replace=False)
        arrays[key][rows] = squares(rng, len(rows), arrays[key].shape[1], size if key in IMAGES else 1)
        caches[key].forget(rows)


def as_rows(arrays: dict[str, np.ndarray], caches: dict[str, RowDigests], size: int = 1) -> dict:
    """The state as a run hands it over: the big arrays as Rows of (CPU) tensors sharing their memory (the
    elites and means as images when they are in squares)."""
    return {k: Rows(torch.from_numpy(v), caches[k], image=image_of(v.shape[1]) if size > 1 and k in IMAGES else None)
            if k in caches else v for k, v in arrays.items()}


def legacy_save(folder: Path, generation: int, arrays: dict[str, np.ndarray], values: dict) -> None:
    """Format 2, as fooling wrote it before: every array in one fsynced npz, read back for its SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"arrays-{generation:07d}.npz"
    atomic.write(folder / name, lambda f: np.savez(f, **arrays), durable=True)
    body = {**values, "generation": generation, "arrays": name, "arrays_sha256": sha256_file(folder / name)}
    text = ckpt.canonical_json(body)
    state = {"format": 2, "sha256": hashlib.sha256(text.encode()).hexdigest(), "body": json.loads(text)}
    atomic.write(folder / ckpt.STATE, json.dumps(state, sort_keys=True), durable=True)
    ckpt.remove_superseded(folder, name)


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def bench(mode: str, arrays: dict[str, np.ndarray], args: argparse.Namespace, root: Path) -> dict:
    folder = root / mode / "checkpoint"
    save = legacy_save if mode == "legacy" else ckpt.save_checkpoint
    caches = {k: RowDigests(len(arrays[k])) for k in BIG}
    state = as_rows(arrays, caches, args.squares) if mode == "cached" else arrays
    row: dict = {"mode": mode}
    started = time.perf_counter()
    counts = save(folder, 10, state, {"evaluations": 1})
    row["first_s"] = round(time.perf_counter() - started, 3)
    row["first_disk_mb"] = round(disk_bytes(folder) / 1e6, 1)
    # in place: the state moves on (no second copy); new values for each mode, so each writes what changed
    change_rows(arrays, args.changed, args.seed + 1 + MODES.index(mode), caches, args.squares)
    before = {p.relative_to(folder) for p in folder.rglob("*")}
    started = time.perf_counter()
    counts = save(folder, 20, state, {"evaluations": 2})
    row["next_s"] = round(time.perf_counter() - started, 3)
    row["next_written_mb"] = round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and (
        p.relative_to(folder) not in before or p.name == ckpt.STATE)) / 1e6, 1)  # files the checkpoint made
    row["disk_mb"] = round(disk_bytes(folder) / 1e6, 1)
    if counts:
        row.update(counts)
    started = time.perf_counter()
    same = save(folder, 30, state, {"evaluations": 3})  # nothing changed since the last checkpoint
    row["same_s"] = round(time.perf_counter() - started, 3)
    if same:
        row["same_blocks_hashed"] = same["blocks_hashed"]
    started = time.perf_counter()
    loaded, _ = ckpt.load_checkpoint(folder)
    row["load_s"] = round(time.perf_counter() - started, 3)
    assert all(np.array_equal(loaded[k], arrays[k]) for k in arrays), "checkpoint did not round-trip"
    del loaded
    shutil.rmtree(folder.parent)
    print(f"{mode:>6}: first checkpoint {row['first_s']:.2f} s ({row['first_disk_mb']:.0f} MB on disk), "
          f"next after {args.changed} changed rows of each big array {row['next_s']:.2f} s "
          f"({row['next_written_mb']:.0f} MB written"
          + (f", {counts['blocks_written']} of {counts['blocks']} blocks)" if counts else ")")
          + f", then unchanged {row['same_s']:.2f} s, load {row['load_s']:.2f} s")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("all", *MODES), default="all")
    ap.add_argument("--rows", type=int, default=1000, help="classes (rows of each big array)")
    ap.add_argument("--genes", type=int, default=3 * 256 * 256, help="genes of an elite (256 px RGB)")
    ap.add_argument("--sigma-genes", type=int, default=3 * 128 * 128, help="genes of a step-size row")
    ap.add_argument("--changed", type=int, default=300, help="rows of each big array changed between checkpoints")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--squares", type=int, default=1,
                    help="elites and means in N x N squares, as snes-elites makes them (2); 1: noise")
    ap.add_argument("--dir", default=None, help="where the temp folder goes (default: the system's temp dir)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_checkpoint_", dir=args.dir))
    try:
        arrays = build_state(args.rows, args.genes, args.sigma_genes, args.seed, args.squares)
        size = sum(a.nbytes for a in arrays.values())
        print(f"state: {size / 1e6:.0f} MB ({', '.join(f'{k} {a.shape}' for k, a in arrays.items() if k in BIG)}); "
              f"blocks: arrays >= {ckpt.BIG_BYTES >> 20} MB, about {ckpt.BLOCK_BYTES >> 20} MB a block; {root}")
        modes = MODES if args.mode == "all" else (args.mode,)
        rows = [bench(mode, arrays, args, root) for mode in modes]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {"bench": "checkpoint", "state_mb": round(size / 1e6, 1), "rows": args.rows, "genes": args.genes,
              "sigma_genes": args.sigma_genes, "changed": args.changed, "squares": args.squares,
              **{f"{r['mode']}_{k}": v for r in rows for k, v in r.items() if k != "mode"}}
    if len(rows) == 3:
        result["next_speedup"] = round(rows[2]["next_s"] / rows[0]["next_s"], 2)  # format 3 against format 2
        result["cached_next_speedup"] = round(rows[0]["next_s"] / rows[1]["next_s"], 2)  # the caches against none
    print(json.dumps(result))


if __name__ == "__main__":
    main()
