"""Checkpoints: numpy arrays + JSON, written atomically, loaded without unpickling.

Layout: ``checkpoint/arrays-<generation>.npz`` first, then ``checkpoint/state.json``
(which names that arrays file) replaced atomically. A crash at any moment leaves
the previous state.json pointing at a complete arrays file.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FoolingError

STATE = "state.json"


def save_checkpoint(folder: Path, generation: int, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
    """Write the arrays and the JSON state for ``generation``; older arrays files are removed after."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"arrays-{generation:07d}.npz"
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)
    state_tmp = folder / f".{STATE}.tmp"
    with open(state_tmp, "w") as f:
        json.dump({**values, "generation": generation, "arrays": name}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(state_tmp, folder / STATE)
    for old in folder.glob("arrays-*.npz"):
        if old.name != name:
            old.unlink()


def load_checkpoint(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, values) of the latest checkpoint; a :class:`FoolingError` if missing or corrupt."""
    path = folder / STATE
    if not path.is_file():
        raise FoolingError(f"no checkpoint in {folder} (missing {STATE})")
    try:
        values = json.loads(path.read_text())
        arrays_path = folder / values["arrays"]
        with np.load(arrays_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, KeyError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise FoolingError(f"corrupt checkpoint in {folder}: {type(err).__name__}: {err}") from None
    return arrays, values
