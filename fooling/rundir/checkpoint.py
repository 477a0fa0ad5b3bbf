"""Checkpoints: numpy arrays + JSON, checksummed, written atomically, loaded without unpickling.

Layout (format 5), all inside ``checkpoint/``:

- ``blocks/<digest>.bin``: the big arrays (``ndim >= 2`` and at least :data:`BIG_BYTES`), cut into blocks
  of whole rows (about :data:`BLOCK_BYTES`, one row when a row is bigger), each the raw C-order bytes of its
  rows, named by their BLAKE3 digest (256 bits, hex; format 3 named them by their SHA-256). A block already on
  disk is not written again, so rows unchanged since the last checkpoint cost nothing to save even when they
  moved to another place in their array. BLAKE3 hashes 5 GB/s a core here against SHA-256's 1.4 (with the CPU's
  SHA extensions), and a busy ImageNet checkpoint hashes hundreds of MB. An array whose rows are images (handed
  over as :class:`~fooling.rowdigests.Rows` with ``image``) stores a row whose pixels repeat in f x f squares at
  every f-th pixel (:mod:`.coarse`; format 5): snes-elites' rows are 2 x 2 squares, a quarter of the bytes;
- ``arrays-<generation>.npz``: the other arrays;
- ``state.json``: ``{"format": 5, "sha256": H, "body": {...}}``. H is the SHA-256 of the body's canonical
  JSON (sorted keys, no spaces); the body holds the values, the npz's name and SHA-256, and under
  ``"blocks"`` each big array's dtype, shape, rows per block and ordered block hashes (and, where some row is
  stored coarser, its ``"image"`` (C, H, W) and each block's ``"factors"``).

A checkpoint writes its new blocks (each to a temporary file, past the page cache where it can
(:mod:`.direct_io`), fsynced, renamed; the folder fsynced once), then the npz (hashed as it is written), then
replaces state.json atomically; only then are older npz files and blocks that state.json no longer names removed.
:func:`save_checkpoint` does it in one call; :func:`prepare_checkpoint` reads the state (copying what it will
write, within a limit) and its ``commit()`` writes it, so a run may go on while another thread commits.

Owners of big arrays hand them over as :class:`~fooling.rowdigests.Rows` with a per-row digest cache that
they clear at every write of a row. For an array stored one row a block, a row whose digest is cached and
whose block is on disk (one ``lstat``) is neither read nor hashed: a checkpoint of a late, slowly changing
run reads only the rows written since the last one (on a GPU only those leave the device). Digests are
cached only after the state.json naming their blocks is durable, so a failed save leaves no cache claiming
a block that was never written, and only for rows not written since they were read; the files are the same as
from plain arrays (but for coarsened image rows, which only Rows can say are images). ``FOOLING_VERIFY_DIGESTS=1``
rehashes the trusted rows and raises on a stale digest (which would name an old block that loads fine).

A crash at any moment leaves the previous or the new state.json with everything it names complete. Loading
checks every checksum (a block's bytes against its name), so a flipped bit anywhere is refused instead of
loaded as a different state. File names are checked (``arrays-NNNNNNN.npz``, 64 hex digits ``.bin`` in
``blocks/``, plain files, no symlinks). Format-4 checkpoints (no coarse rows), format-3 ones (SHA-256 block names),
format-2 ones (everything in the npz) and older unchecksummed ones still load; the next checkpoint of a resumed run
is format 5. Every problem is one :class:`FoolingError` line.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Optional, Union

import numpy as np
from blake3 import blake3

from ..errors import FoolingError
from ..paths import sha256_file
from ..rowdigests import Rows, verifying
from . import atomic
from .coarse import Image, coarse_bytes, coarsen, refine_into, valid_factor
from .direct_io import write_synced

STATE = "state.json"
FORMAT = 5
# formats that load: 2 kept every array in the npz, 3 named blocks by their SHA-256, 4 stored no row coarser
FORMATS = (2, 3, 4, 5)
ARRAYS_NAME = re.compile(r"^arrays-(\d{7})\.npz$")
BLOCKS = "blocks"
BLOCK_NAME = re.compile(r"^([0-9a-f]{64})\.bin$")
HASH = re.compile(r"^[0-9a-f]{64}$")
BIG_BYTES = 8 << 20  # arrays with ndim >= 2 from this size on are stored as content-addressed blocks
BLOCK_BYTES = 1 << 18  # rows per block: as many whole rows as fit in this (at least one); 256 kB: one row
# each of the snes-elites step sizes of a 256 px ImageNet run (196 kB), which change a few rows at a time
_HASH_THREADS = max(1, min(8, os.cpu_count() or 1))  # hashlib releases the GIL: blocks hash in parallel
_WRITE_THREADS = 4  # blocks written and fsynced (or removed) at once


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that checksums are taken over (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


class _HashingWriter:
    """A write-only, unseekable binary stream that hashes what it passes on (np.savez then never seeks back)."""

    def __init__(self, f: io.BufferedWriter) -> None:
        self.f, self.digest, self.written = f, hashlib.sha256(), 0

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.written += view.nbytes
        self.f.write(view)
        return view.nbytes

    def read(self, n: int = -1) -> bytes:  # np.savez takes objects with ``read`` for files
        raise io.UnsupportedOperation("write-only stream")

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        self.f.flush()


def is_big(array: Union[np.ndarray, Rows], big_bytes: int) -> bool:
    """Whether ``array`` goes to content-addressed blocks rather than the npz."""
    return array.ndim >= 2 and array.nbytes >= big_bytes and array.dtype.kind in "biufc" and array.shape[0] > 0


def _rows_per_block(shape: tuple[int, ...], itemsize: int, block_bytes: int) -> int:
    row = itemsize * math.prod(shape[1:])
    return max(1, block_bytes // row) if row else shape[0]


def _split(array: np.ndarray, block_bytes: int) -> tuple[dict[str, Any], list[memoryview]]:
    """(manifest entry without hashes, byte views of the blocks) of a big array; no copy if C-contiguous."""
    array = np.ascontiguousarray(array)
    rows = _rows_per_block(array.shape, array.dtype.itemsize, block_bytes)
    views = [memoryview(array[i:i + rows]).cast("B") for i in range(0, array.shape[0], rows)]
    return {"dtype": array.dtype.str, "shape": list(array.shape), "rows": rows}, views


def block_digest(view: memoryview) -> str:
    """A block's name from format 4 on: its bytes' BLAKE3 digest in hex (releases the GIL: blocks hash in threads)."""
    return blake3(view if view.format == "B" else view.cast("B")).hexdigest()


def _block_hash(state_format: int) -> Callable[[memoryview], str]:
    """How blocks of a checkpoint of ``state_format`` are named: BLAKE3 from format 4, SHA-256 before."""
    return block_digest if state_format >= 4 else (lambda view: hashlib.sha256(view).hexdigest())


def _write_tmp(tmp: Path, view: memoryview) -> None:
    write_synced(tmp, view)  # past the page cache where it can (fooling.rundir.direct_io says why)


def _blocks_folder(folder: Path) -> Path:
    """``folder``/blocks, made if missing; a one-line error if it is not a plain folder."""
    blocks = folder / BLOCKS
    if blocks.is_symlink() or (blocks.exists() and not blocks.is_dir()):
        raise FoolingError(f"{blocks} is not a plain folder; a checkpoint cannot be written there")
    if not blocks.is_dir():
        blocks.mkdir()
        atomic.sync_folder(folder)
    return blocks


def _present(path: Union[Path, str], size: int) -> bool:
    """Whether ``path`` is a plain file (not a symlink) of ``size`` bytes: a block already stored."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size


class ImageRow(NamedTuple):
    """A row of an image array to store: its bytes and its image (C, H, W); stored coarser where it can be."""

    view: memoryview
    image: Image


Item = Union[str, memoryview, ImageRow]  # a block to store: its cached name (on disk), its bytes, or an image row


def cached_name(digest: str, factor: int) -> str:
    """What a row's digest cache keeps for a stored block: its digest, and ``/factor`` for a coarsened image row."""
    return digest if factor == 1 else f"{digest}/{factor}"


def _parse_name(name: str) -> tuple[str, int]:
    """(digest, factor) of a :func:`cached_name`."""
    digest, _, factor = name.partition("/")
    return digest, int(factor) if factor else 1


def _stored(item: Union[memoryview, ImageRow]) -> tuple[memoryview, str]:
    """(the bytes a block stores, its cached name): an image row coarsened where it can be (a hashing thread's job)."""
    if isinstance(item, ImageRow):
        view, factor = coarsen(item.view, item.image)
        return view, cached_name(block_digest(view), factor)
    return item, block_digest(item)


def _store_blocks(blocks: Path, items: list[Item]) -> tuple[list[str], int, int]:
    """(cached name of each block, blocks written, blocks hashed): store the blocks not already on disk.

    items: each block's bytes (an image row's, coarsened where it can be), or its cached name when that is known
    and the block is on disk (neither read nor hashed). Blocks are coarsened and hashed in parallel; each new one
    goes to a temporary file, fsynced (several at once, while the next are hashed: fsync waits on the disk, not the
    CPU); then all are renamed in order and the folder is fsynced once.
    """
    names: list[str] = []
    new: list[tuple[Path, Path]] = []
    pending: set[Path] = set()
    views = [item for item in items if not isinstance(item, str)]
    try:
        with ThreadPoolExecutor(_HASH_THREADS) as hasher, ThreadPoolExecutor(_WRITE_THREADS) as writer:
            jobs, seen = [], set()
            stored = hasher.map(_stored, views)
            for item in items:
                if isinstance(item, str):
                    names.append(item)
                    continue
                view, name = next(stored)
                names.append(name)
                digest = _parse_name(name)[0]
                path = blocks / f"{digest}.bin"
                if digest in seen or _present(path, view.nbytes):
                    continue  # content-addressed: already there (its bytes are checked when loaded)
                seen.add(digest)
                tmp = atomic.tmp_path(path)
                atomic.fault_point(f"write {path}")
                pending.add(tmp)
                new.append((path, tmp))
                jobs.append(writer.submit(_write_tmp, tmp, view))
            for job in jobs:
                job.result()
        for path, tmp in new:
            atomic.fault_point(f"replace {path}")
            os.replace(tmp, path)
            pending.discard(tmp)
    finally:  # on an error (a crash kills the process instead: then a resume removes them)
        for tmp in pending:
            tmp.unlink(missing_ok=True)
    if new:
        atomic.sync_folder(blocks)
    return names, len(new), len(views)


def _row_blocks(blocks: Path, key: str, rows: Rows) -> tuple[list[Union[str, None]], list[int]]:
    """(items for :func:`_store_blocks` with None where a row must be read, positions to read and hash) of a
    :class:`Rows` stored one row a block.

    A row whose digest is cached and whose block is on disk is neither read nor hashed; the others are read
    later (only they leave the device). With ``$FOOLING_VERIFY_DIGESTS=1`` the trusted rows are stored again in
    memory (coarsened as they would be), and a cached name that differs raises (it would have named an old block).
    """
    size = rows.nbytes // max(1, rows.shape[0])
    items: list[Union[str, None]] = []
    trusted, fetch = [], []
    prefix = os.path.join(blocks, "")  # str paths: a quarter of the time of a Path per row (thousands of rows)
    for i, name in enumerate(rows.known()):
        if name is not None:
            digest, factor = _parse_name(name)
            stored = coarse_bytes(size, factor)
            if (factor == 1 or rows.image is not None) and _present(f"{prefix}{digest}.bin", stored):
                items.append(name)
                trusted.append(i)
                continue
        items.append(None)
        fetch.append(i)
    if trusted and verifying():
        for i, view in zip(trusted, rows.host_rows(trusted)):
            if _stored(view if rows.image is None else ImageRow(view, rows.image))[1] != items[i]:
                raise RuntimeError(f"checkpoint: row {i} of {key!r} changed since its digest was cached (a write "
                                   "that did not forget it): the checkpoint would have named an old block")
    return items, fetch


class PreparedCheckpoint:
    """A checkpoint's contents as of one generation, ready to be written by :meth:`commit`.

    Made by :func:`prepare_checkpoint`. ``detached``: it holds copies of everything it writes, so the owners of
    the arrays may go on changing them while :meth:`commit` runs in another thread; otherwise it reads their
    rows as they are when it commits. After a commit, :meth:`remember` (in the owners' thread) caches the
    digests it computed, except for rows written since it was prepared. images: the arrays whose rows are images
    (C, H, W), by key.
    """

    def __init__(self, folder: Path, generation: int, values: dict[str, Any], manifest: dict[str, dict[str, Any]],
                 items: list[Item], small: dict[str, np.ndarray], cached: list[tuple[Rows, list[int], int, int]],
                 detached: bool, images: Optional[dict[str, Image]] = None) -> None:
        self.folder, self.generation, self.values = folder, generation, values
        self.manifest, self.items, self.small, self.cached = manifest, items, small, cached
        self.detached = detached
        self.images = images or {}
        self.counts: dict[str, int] | None = None  # set by commit()
        self._names: list[str] = []

    def commit(self) -> dict[str, int]:
        """Write the new blocks, the npz and state.json, then remove what it superseded; returns the counts
        (see :func:`save_checkpoint`). Touches nothing but its own copies (when detached) and the folder."""
        folder = self.folder
        items = self.items
        blocks = folder / BLOCKS
        names, written, hashed = _store_blocks(blocks, items) if self.manifest else ([], 0, 0)
        manifest = {key: dict(entry) for key, entry in self.manifest.items()}
        rest = names
        for key, entry in manifest.items():
            stored, rest = [_parse_name(n) for n in rest[:entry["blocks"]]], rest[entry["blocks"]:]
            entry["blocks"] = [digest for digest, _ in stored]
            if any(factor > 1 for _, factor in stored):  # some image row stored coarser: say how to refine it
                entry["image"], entry["factors"] = list(self.images[key]), [factor for _, factor in stored]
        name = f"arrays-{self.generation:07d}.npz"
        hashing: list[_HashingWriter] = []

        def write_npz(f: io.BufferedWriter) -> None:
            hashing.append(_HashingWriter(f))
            np.savez(hashing[-1], **self.small)

        atomic.write(folder / name, write_npz, durable=True)
        body = {**self.values, "generation": self.generation, "arrays": name,
                "arrays_sha256": hashing[-1].digest.hexdigest(), "blocks": manifest}
        text = canonical_json(body)
        state = {"format": FORMAT, "sha256": hashlib.sha256(text.encode()).hexdigest(), "body": json.loads(text)}
        atomic.write(folder / STATE, json.dumps(state, sort_keys=True), durable=True)
        self._names = names
        remove_superseded(folder, body)
        self.counts = {"blocks": len({h for entry in manifest.values() for h in entry["blocks"]}),
                       "blocks_written": written, "blocks_hashed": hashed,
                       "blocks_cached": sum(isinstance(item, str) for item in items)}
        return self.counts

    def remember(self) -> None:
        """After :meth:`commit`: the owners cache the digests computed for rows they have not written since
        (only now that a durable state names their blocks may they trust them). Call in the owners' thread."""
        if self.counts is None:
            raise RuntimeError("remember() before a successful commit()")
        for rows, fetched, first, clock in self.cached:
            rows.remember(fetched, [self._names[first + i] for i in fetched], since=clock)
        self.cached = []


def prepare_checkpoint(
    folder: Path, generation: int, arrays: Mapping[str, Union[np.ndarray, Rows]], values: dict[str, Any],
    big_bytes: int | None = None, block_bytes: int | None = None, detach_bytes: int = 0,
) -> PreparedCheckpoint:
    """What :func:`save_checkpoint` would write for ``generation``, read now; written by its ``commit()``.

    The rows it must read (those without a cached digest or whose block is missing) and every other array are
    copied when they come to at most ``detach_bytes`` (then ``detached``: the caller may go on changing the
    arrays while another thread commits it); above that, or with 0, nothing big is copied and the commit reads
    the arrays as they are then (commit it before changing them). ``values`` is copied either way.
    """
    big_bytes = BIG_BYTES if big_bytes is None else big_bytes
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values = json.loads(canonical_json(values))  # a copy, and a NaN is refused now rather than in the commit
    manifest: dict[str, dict[str, Any]] = {}
    small: dict[str, np.ndarray] = {}
    planned: list[tuple[str, Any, Union[list[Union[str, None]], None], list[int]]] = []
    blocks: Path | None = None
    copy_bytes = 0
    for key, value in arrays.items():
        if isinstance(value, Rows) and is_big(value, big_bytes) \
                and _rows_per_block(value.shape, value.dtype.itemsize, block_bytes) == 1:
            blocks = blocks or _blocks_folder(folder)
            parts, fetch = _row_blocks(blocks, key, value)
            planned.append((key, value, parts, fetch))
            copy_bytes += len(fetch) * (value.nbytes // max(1, value.shape[0]))
            continue
        value = np.asarray(value)
        if is_big(value, big_bytes):
            blocks = blocks or _blocks_folder(folder)
            planned.append((key, value, None, []))
        else:
            small[key] = value
        copy_bytes += value.nbytes
    detached = 0 < detach_bytes and copy_bytes <= detach_bytes
    if detached:
        small = {key: np.array(value, copy=True) for key, value in small.items()}
    items: list[Item] = []
    cached: list[tuple[Rows, list[int], int, int]] = []
    images: dict[str, Image] = {}
    for key, value, parts, fetch in planned:
        if parts is None:
            manifest[key], views = _split(np.array(value, copy=True) if detached else value, block_bytes)
        else:
            manifest[key] = {"dtype": value.dtype.str, "shape": list(value.shape), "rows": 1}
            clock = value.clock()
            image = value.image
            for i, view in zip(fetch, value.copied_rows(fetch) if detached else value.host_rows(fetch)):
                parts[i] = view if image is None else ImageRow(view, image)
            if image is not None:
                images[key] = image
            views = parts
            cached.append((value, fetch, len(items), clock))
        manifest[key]["blocks"] = len(views)
        items += views
    return PreparedCheckpoint(folder, generation, values, manifest, items, small, cached, detached, images)


def save_checkpoint(
    folder: Path, generation: int, arrays: Mapping[str, Union[np.ndarray, Rows]], values: dict[str, Any],
    big_bytes: int | None = None, block_bytes: int | None = None,
) -> dict[str, int]:
    """Write the arrays and the JSON state for ``generation``; what the new state no longer needs is removed after.

    arrays: ndarrays, or :class:`~fooling.rowdigests.Rows` of an owner's tensor: a big one whose rows are one
    block each is read only where a row's digest is not cached or its block is not on disk, and the digests
    computed are cached once state.json is durable; other Rows are materialised. The files are the same either way.
    values: JSON-able (no NaN or infinity); stored in state.json's body next to generation and arrays.
    big_bytes, block_bytes: which arrays go to blocks, and how big their blocks are (default: :data:`BIG_BYTES`,
    :data:`BLOCK_BYTES`). Returns counts: ``blocks`` (distinct blocks the new state names), ``blocks_written``,
    ``blocks_hashed`` (blocks whose bytes were read and hashed; not counting ``$FOOLING_VERIFY_DIGESTS`` checks)
    and ``blocks_cached`` (rows named by their cached digest, neither read nor hashed).
    :func:`prepare_checkpoint` and its ``commit()`` in two steps, with nothing copied.
    """
    prepared = prepare_checkpoint(folder, generation, arrays, values, big_bytes, block_bytes)
    counts = prepared.commit()
    prepared.remember()
    return counts


def remove_superseded(folder: Path, keep: Union[Mapping[str, Any], str, None]) -> None:
    """Delete what the checkpoint ``keep`` (its state body, as :func:`load_checkpoint` returns it) does not need.

    That is other arrays-*.npz files, blocks it does not name, and temporary files a killed writer left in
    blocks/ (call only while holding the run's lock). None: all of them (no checkpoint). A str: the name of
    the arrays file to keep; blocks are then left alone.
    """
    folder = Path(folder)
    name = keep if isinstance(keep, str) or keep is None else keep.get("arrays")
    for old in sorted(folder.glob("arrays-*.npz")):
        if old.name != name:
            atomic.remove(old)
    blocks = folder / BLOCKS
    if isinstance(keep, str) or blocks.is_symlink() or not blocks.is_dir():
        return
    needed: set[str] = set()
    if keep is not None and isinstance(keep.get("blocks"), dict):
        for entry in keep["blocks"].values():
            if isinstance(entry, dict) and isinstance(entry.get("blocks"), list):
                needed.update(h for h in entry["blocks"] if isinstance(h, str))
    with ThreadPoolExecutor(_WRITE_THREADS) as pool:  # unlinking big files waits on the file system
        jobs = []
        for name in sorted(os.listdir(blocks)):  # names, not Paths: a third of the time for 3,000 blocks
            match = BLOCK_NAME.match(name)
            if not ((match and match[1] not in needed) or atomic.TMP_NAME.match(name)):
                continue  # named by the state kept, or not ours
            path = blocks / name
            if not path.is_dir():
                atomic.fault_point(f"remove {path}")
                jobs.append(pool.submit(path.unlink, missing_ok=True))
        for job in jobs:
            job.result()


def _corrupt(folder: Path, why: str) -> FoolingError:
    return FoolingError(f"corrupt checkpoint in {folder}: {why}")


def _read_state(folder: Path) -> tuple[dict[str, Any], int]:
    """(body, format) of state.json; format 0 for a checkpoint written before checksums."""
    path = folder / STATE
    try:
        state = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise _corrupt(folder, f"{STATE} is not valid JSON ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise _corrupt(folder, f"{STATE} holds a {type(state).__name__}, not an object")
    if "body" in state or "sha256" in state or "format" in state:
        if state.get("format") not in FORMATS or isinstance(state.get("format"), bool) \
                or set(state) != {"format", "sha256", "body"}:
            raise _corrupt(folder, f"{STATE} has an unknown layout")
        body = state["body"]
        if not isinstance(body, dict) or not isinstance(state["sha256"], str):
            raise _corrupt(folder, f"{STATE} has an unknown layout")
        try:
            digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
        except ValueError:
            digest = ""
        if digest != state["sha256"]:
            raise _corrupt(folder, f"{STATE} does not match its checksum (damaged or edited)")
        if state["format"] >= 3 and "blocks" not in body:
            raise _corrupt(folder, f"{STATE} field 'blocks' is missing")
        return body, state["format"]
    # a checkpoint written before checksums: same fields, at the top level, and no checksum to check
    if "arrays" not in state or "generation" not in state:
        raise _corrupt(folder, f"{STATE} has an unknown layout")
    return {**state, "legacy": True}, 0


_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", dict: "an object", list: "a list"}


def _check_body(folder: Path, body: dict[str, Any], fields: Mapping[str, tuple[type, ...]]) -> None:
    def need(key: str, kinds: tuple[type, ...], what: str) -> Any:
        value = body.get(key)
        if key not in body or isinstance(value, bool) or not isinstance(value, kinds):
            raise _corrupt(folder, f"{STATE} field {key!r} is missing or not {what}")
        return value

    generation = need("generation", (int,), "an integer")
    if generation < 0:
        raise _corrupt(folder, f"{STATE} has a negative generation")
    name = need("arrays", (str,), "a file name")
    match = ARRAYS_NAME.match(name)
    if match is None:
        raise _corrupt(folder, f"{STATE} names {name!r}; only arrays-NNNNNNN.npz inside checkpoint/ is allowed")
    if int(match[1]) != generation:
        raise _corrupt(folder, f"{STATE} is for generation {generation} but names {name}")
    for key, kinds in fields.items():
        value = need(key, kinds, " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds))
        if isinstance(value, (int, float)) and (not math.isfinite(value) or value < 0):
            raise _corrupt(folder, f"{STATE} field {key!r} is {value}")
    if "metrics" in body and not (isinstance(body["metrics"], list)
                                  and all(isinstance(r, dict) for r in body["metrics"])):
        raise _corrupt(folder, f"{STATE} field 'metrics' is not a list of rows")
    if not body.get("legacy"):
        need("arrays_sha256", (str,), "a SHA-256")
    if "blocks" in body:
        blocks = need("blocks", (dict,), "an object")
        for key, entry in blocks.items():
            _check_entry(folder, key, entry)


def _check_entry(folder: Path, key: str, entry: Any
                 ) -> tuple[np.dtype, tuple[int, ...], int, Optional[tuple[Image, list[int]]]]:
    """(dtype, shape, rows per block, (image, each block's factor) where some row is stored coarser) of a big
    array's manifest entry, or a one-line error."""
    bad = _corrupt(folder, f"{STATE} has a malformed block list for {key!r}")
    plain = {"dtype", "shape", "rows", "blocks"}
    if not isinstance(entry, dict) or set(entry) not in (plain, plain | {"image", "factors"}):
        raise bad
    shape, rows, hashes = entry["shape"], entry["rows"], entry["blocks"]
    if not (isinstance(shape, list) and len(shape) >= 2 and _counts(shape) and isinstance(rows, int)
            and not isinstance(rows, bool) and rows > 0 and isinstance(hashes, list)
            and isinstance(entry["dtype"], str)):
        raise bad
    try:
        dtype = np.dtype(entry["dtype"])
    except (TypeError, ValueError):
        raise bad from None
    if dtype.kind not in "biufc" or dtype.str != entry["dtype"]:
        raise _corrupt(folder, f"{STATE} gives {key!r} the dtype {entry['dtype']!r}; only plain numbers are allowed")
    if len(hashes) != -(-shape[0] // rows) or not all(isinstance(h, str) and HASH.match(h) for h in hashes):
        raise _corrupt(folder, f"{STATE} names blocks for {key!r} that are not {-(-shape[0] // rows)} "
                               f"64-hex-digit names in checkpoint/{BLOCKS}/")
    if "image" not in entry:
        return dtype, tuple(shape), rows, None
    image, factors = entry["image"], entry["factors"]
    if not (isinstance(image, list) and len(image) == 3 and _counts(image) and math.prod(image) == math.prod(shape[1:])
            and rows == 1 and isinstance(factors, list) and len(factors) == len(hashes) and _counts(factors)
            and all(valid_factor(tuple(image), f) for f in factors) and dtype.itemsize in (1, 2, 4, 8)):
        raise _corrupt(folder, f"{STATE} gives {key!r} coarse rows that do not fit its shape {shape}")
    return dtype, tuple(shape), rows, (tuple(image), factors)


def _counts(values: list) -> bool:
    """Whether every item of ``values`` is an int >= 0 (not a bool)."""
    return all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in values)


def _load_blocks(folder: Path, key: str, entry: dict[str, Any], state_format: int) -> np.ndarray:
    """The big array ``key`` from its blocks, each checked against its name (the digest ``state_format`` names by);
    coarse rows refined to full size."""
    dtype, shape, rows, coarse = _check_entry(folder, key, entry)
    image, factors = coarse if coarse is not None else (None, [1] * len(entry["blocks"]))
    blocks = folder / BLOCKS
    if blocks.is_symlink() or not blocks.is_dir():
        raise _corrupt(folder, f"{BLOCKS}/ is missing (or not a plain folder)")
    row_bytes = dtype.itemsize * math.prod(shape[1:])
    paths = []
    for i, digest in enumerate(entry["blocks"]):
        path = blocks / f"{digest}.bin"
        size = coarse_bytes(row_bytes * (min(shape[0], (i + 1) * rows) - i * rows), factors[i])
        if path.is_symlink() or not path.is_file():
            raise _corrupt(folder, f"{BLOCKS}/{path.name} (of {key}) is missing (or not a plain file)")
        if path.stat().st_size != size:
            raise _corrupt(folder, f"{BLOCKS}/{path.name} (of {key}) has {path.stat().st_size} bytes, not {size}")
        paths.append(path)
    digest = _block_hash(state_format)
    out = np.empty(shape, dtype)
    flat = memoryview(out.reshape(shape[0], -1)).cast("B") if out.size else memoryview(bytearray())

    def read(i: int) -> bool:
        view = flat[i * rows * row_bytes:min(shape[0], (i + 1) * rows) * row_bytes]
        if factors[i] > 1:  # a coarse image row (one a block): read, checked, then refined into its place
            view = memoryview(bytearray(coarse_bytes(row_bytes, factors[i])))
        with open(paths[i], "rb") as f:
            got = f.readinto(view)
        if got != view.nbytes or digest(view) != entry["blocks"][i]:
            return False
        if factors[i] > 1:
            refine_into(view, image, factors[i], out.reshape(shape[0], -1)[i])
        return True

    with ThreadPoolExecutor(_HASH_THREADS) as pool:
        for i, good in enumerate(pool.map(read, range(len(paths)))):
            if not good:
                raise _corrupt(folder, f"{BLOCKS}/{paths[i].name} (of {key}) does not match its name (damaged)")
    return out


def load_checkpoint(
    folder: Path, fields: Mapping[str, tuple[type, ...]] = {},
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, values) of the latest checkpoint; a one-line :class:`FoolingError` if missing or corrupt.

    fields: values that must be present with one of these types (numbers: finite and not negative).
    values has ``legacy: True`` for a checkpoint written before checksums (nothing to verify it against).
    """
    folder = Path(folder)
    path = folder / STATE
    if not path.is_file():
        raise FoolingError(f"no checkpoint in {folder} (missing {STATE})")
    values, state_format = _read_state(folder)
    _check_body(folder, values, fields)
    arrays_path = folder / values["arrays"]
    if arrays_path.is_symlink() or not arrays_path.is_file():
        raise _corrupt(folder, f"{values['arrays']} is missing (or not a plain file)")
    if "arrays_sha256" in values and sha256_file(arrays_path) != values["arrays_sha256"]:
        raise _corrupt(folder, f"{values['arrays']} does not match the SHA-256 in {STATE} (damaged or replaced)")
    try:
        with open(arrays_path, "rb") as f:  # ours to close: np.load leaves a file it opened open when unzipping fails
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with data:
                arrays = {key: data[key] for key in data.files}
    except Exception as err:  # any failure to read the archive is a damaged checkpoint, never a traceback
        message = " ".join(str(err).split())[:200]
        raise _corrupt(folder, f"{values['arrays']}: {type(err).__name__}: {message}") from None
    for key, entry in values.get("blocks", {}).items():
        if key in arrays:
            raise _corrupt(folder, f"{key!r} is both in {values['arrays']} and in {BLOCKS}/")
        arrays[key] = _load_blocks(folder, key, entry, state_format)
    return arrays, values
