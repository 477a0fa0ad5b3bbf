"""Checkpoints: numpy arrays + JSON, checksummed, written atomically, loaded without unpickling.

Layout: ``checkpoint/arrays-<generation>.npz`` first, then ``checkpoint/state.json``
replaced atomically; older arrays files are removed after. A crash at any moment
leaves the previous state.json pointing at a complete arrays file.

state.json is ``{"format": 2, "sha256": H, "body": {...}}``: H is the SHA-256 of the
body's canonical JSON (sorted keys, no spaces), and the body names the arrays file
and holds its SHA-256, so a flipped bit anywhere is refused instead of loaded as a
different state. The arrays file must be a plain ``arrays-NNNNNNN.npz`` inside the
checkpoint folder. Every problem is one :class:`FoolingError` line.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import FoolingError
from . import atomic

STATE = "state.json"
FORMAT = 2
ARRAYS_NAME = re.compile(r"^arrays-(\d{7})\.npz$")


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that checksums are taken over (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(folder: Path, generation: int, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
    """Write the arrays and the JSON state for ``generation``; older arrays files are removed after.

    values: JSON-able (no NaN or infinity); stored in state.json's body next to generation and arrays.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = f"arrays-{generation:07d}.npz"
    atomic.write(folder / name, lambda f: np.savez(f, **arrays), durable=True)
    body = {**values, "generation": generation, "arrays": name, "arrays_sha256": sha256_file(folder / name)}
    text = canonical_json(body)
    state = {"format": FORMAT, "sha256": hashlib.sha256(text.encode()).hexdigest(), "body": json.loads(text)}
    atomic.write(folder / STATE, json.dumps(state, sort_keys=True), durable=True)
    remove_superseded(folder, name)


def remove_superseded(folder: Path, keep: str | None) -> None:
    """Delete arrays files other than ``keep`` (what a crash before their removal left; None: all of them)."""
    for old in sorted(Path(folder).glob("arrays-*.npz")):
        if old.name != keep:
            atomic.remove(old)


def _corrupt(folder: Path, why: str) -> FoolingError:
    return FoolingError(f"corrupt checkpoint in {folder}: {why}")


def _read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE
    try:
        state = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise _corrupt(folder, f"{STATE} is not valid JSON ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise _corrupt(folder, f"{STATE} holds a {type(state).__name__}, not an object")
    if "body" in state or "sha256" in state or "format" in state:
        if state.get("format") != FORMAT or set(state) != {"format", "sha256", "body"}:
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
        return body
    # a checkpoint written before checksums: same fields, at the top level, and no checksum to check
    if "arrays" not in state or "generation" not in state:
        raise _corrupt(folder, f"{STATE} has an unknown layout")
    return {**state, "legacy": True}


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
    values = _read_state(folder)
    _check_body(folder, values, fields)
    arrays_path = folder / values["arrays"]
    if arrays_path.is_symlink() or not arrays_path.is_file():
        raise _corrupt(folder, f"{values['arrays']} is missing (or not a plain file)")
    if "arrays_sha256" in values and sha256_file(arrays_path) != values["arrays_sha256"]:
        raise _corrupt(folder, f"{values['arrays']} does not match the SHA-256 in {STATE} (damaged or replaced)")
    try:
        data = np.load(arrays_path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with data:
            arrays = {key: data[key] for key in data.files}
    except Exception as err:  # any failure to read the archive is a damaged checkpoint, never a traceback
        message = " ".join(str(err).split())[:200]
        raise _corrupt(folder, f"{values['arrays']}: {type(err).__name__}: {message}") from None
    return arrays, values
