"""Saving and loading network weights safely.

Weights are plain state dicts written with ``torch.save`` and read back with
``torch.load(weights_only=True)``, which refuses anything but tensors and
containers: a weights file cannot run code. Metadata sits beside it as JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import FoolingError, first_line
from ..paths import sha256_file


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_state_dict(path: str | Path, fix: str = "") -> dict[str, torch.Tensor]:
    """Read a state dict; anything that is not plain tensors is a :class:`FoolingError`.

    ``fix``, if given, is appended to the error: how the user can repair the file.
    """
    path = Path(path)
    hint = f"; {fix}" if fix else ""
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise FoolingError(f"weights file {path} is empty{hint}")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FoolingError:
        raise
    except FileNotFoundError:
        raise FoolingError(f"weights file {path} does not exist{hint}") from None
    except Exception as err:  # pickle.UnpicklingError and friends: unsafe or corrupt
        raise FoolingError(f"cannot load weights from {path}: {first_line(err)}{hint}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FoolingError(f"{path} does not hold a state dict of tensors{hint}")
    return state


def save_model(folder: Path, name: str, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``<name>.pt`` (weights) and ``<name>.json`` (metadata) atomically; returns the .pt path."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.pt"
    state = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    _atomic_write(weights, lambda p: torch.save(state, p))
    _atomic_write(folder / f"{name}.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
    return weights


def load_meta(folder: Path, name: str) -> dict[str, Any] | None:
    """The metadata saved with a model, or None if there is none (or it is unreadable, or not an object)."""
    path = folder / f"{name}.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return meta if isinstance(meta, dict) else None


def read_meta(folder: Path, name: str, fix: str = "") -> dict[str, Any] | None:
    """Like :func:`load_meta`, but a file that exists and cannot be read as a JSON object is a
    :class:`FoolingError` naming it (``fix``: how to repair it); None only when there is no file."""
    path = folder / f"{name}.json"
    hint = f"; {fix}" if fix else ""
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise FoolingError(f"cannot read model metadata {path}: {first_line(err)}{hint}") from None
    except (ValueError, RecursionError) as err:
        raise FoolingError(f"model metadata {path} is not valid JSON ({first_line(err)}){hint}") from None
    if not isinstance(meta, dict):
        raise FoolingError(f"model metadata {path} holds {type(meta).__name__}, not an object{hint}")
    return meta


def save_npz(path: Path, state_dict: dict[str, torch.Tensor]) -> str:
    """Write a state dict as an uncompressed numpy ``.npz`` (float32 stays float32, bit-exact); returns its SHA-256.

    An ``.npz`` read with ``allow_pickle=False`` holds plain arrays only: loading it cannot run code.
    """
    import numpy as np

    arrays = {k: v.detach().cpu().contiguous().numpy() for k, v in state_dict.items()}
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a temporary name
            np.savez(f, **arrays)

    _atomic_write(path, write)
    return sha256_file(path)


def load_npz(path: Path, sha256: str, fix: str = "") -> dict[str, torch.Tensor]:
    """Read a state dict saved by :func:`save_npz`, after checking the file's SHA-256 against ``sha256``.

    A missing file, a digest that differs, or anything but numeric arrays is a :class:`FoolingError`.
    """
    import numpy as np

    hint = f"; {fix}" if fix else ""
    try:
        actual = sha256_file(path)
    except OSError as err:
        raise FoolingError(f"cannot read weights {path}: {first_line(err)}{hint}") from None
    if actual != sha256:
        raise FoolingError(f"weights {path} have SHA-256 {actual[:12]}, expected {sha256[:12]}: the file is "
                           f"damaged or was replaced{hint}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            state = {key: torch.from_numpy(np.array(npz[key])) for key in npz.files}
    except Exception as err:  # not a zip, object arrays (refused without pickle), ...
        raise FoolingError(f"cannot load weights from {path}: {first_line(err)}{hint}") from None
    if not state or not all(t.dtype.is_floating_point for t in state.values()):
        raise FoolingError(f"{path} does not hold a state dict of float tensors{hint}")
    return state
