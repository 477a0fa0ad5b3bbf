"""Where the project keeps trained weights: the user cache, overridable by $FOOLING_CACHE."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Return (and create) the cache folder: ``$FOOLING_CACHE``, else ``$XDG_CACHE_HOME/fooling``."""
    root = os.environ.get("FOOLING_CACHE")
    if root:
        path = Path(root).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "fooling"
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Folder of trained networks (``<name>.pt`` state dicts + ``<name>.json`` metadata)."""
    path = cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
