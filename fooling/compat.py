"""Importing torchvision where its compiled ops cannot load.

PyPI's Linux torchvision wheels are CUDA builds; next to a CPU-only torch their
``_C`` extension fails to load and ``import torchvision`` then dies while
registering fake kernels for ``torchvision::nms`` / ``qnms``. We use no compiled
torchvision op (only models, weights metadata and datasets), so when that
happens we declare the two operator schemas ourselves and import again.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None  # keeps the declared schemas alive


def import_torchvision() -> ModuleType:
    """Return the ``torchvision`` module, working around a missing ``_C`` extension."""
    global _library
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    if _library is None:
        _library = torch.library.Library("torchvision", "FRAGMENT")
        for op, schema in _SCHEMAS.items():
            try:
                _library.define(schema)
            except RuntimeError:
                pass  # already declared (the extension did load after all)
    return importlib.import_module("torchvision")
