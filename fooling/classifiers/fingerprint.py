"""Which weights a run used: a SHA-256 per model, recorded in config.json and checked on reuse.

``fool evolve`` records ``config.json["run"]["weights_sha256"] = {model name: hex digest}``;
``--resume`` (and readers such as ``fool transfer`` or ``fool ascend --from``) call
:func:`check_fingerprints` so a run never silently continues against different weights.

The digest is the SHA-256 of the weights file when the model's spec names one
(``ModelSpec.weights_path``, a path or a function returning one: the TorchScript or ONNX
file of a model file, a timm model's cached weights; see :mod:`fooling.classifiers.sources`), else of the
network's ``state_dict``: each entry's name, dtype, shape and raw bytes, in sorted
key order. Digests are cached per process.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch

from ..errors import FoolingError
from .base import Classifier
from .registry import get_spec, load_classifier

RECORD_KEY = "weights_sha256"  # where config.json's "run" section keeps the digests

_cache: dict[tuple, tuple[Any, str]] = {}  # key -> (the spec, kept alive so that its id is never reused; digest)
_log = logging.getLogger("fooling.run")


def state_dict_sha256(module: torch.nn.Module) -> str:
    """SHA-256 over a module's state_dict: names, dtypes, shapes and bytes, sorted by name."""
    digest = hashlib.sha256()
    state = module.state_dict()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_file(spec: Any) -> Optional[Path]:
    weights = getattr(spec, "weights_path", None)
    if callable(weights):
        weights = weights()
    return Path(weights) if weights and Path(weights).is_file() else None


def model_fingerprint(name: str, classifier: Optional[Classifier] = None) -> str:
    """The SHA-256 of model ``name``'s weights (``classifier``: the loaded model, saves loading it again)."""
    spec = get_spec(name)
    weights = _weights_file(spec)
    if weights is not None:
        stat = weights.stat()
        key: tuple = (name, id(spec), str(weights), stat.st_size, stat.st_mtime_ns)
        if key not in _cache:
            _cache[key] = (spec, file_sha256(weights))
        return _cache[key][1]
    key = (name, id(spec))
    if key not in _cache:
        net = (classifier or load_classifier(name, "cpu")).net
        _cache[key] = (spec, state_dict_sha256(net))
    return _cache[key][1]


def fingerprints(names: Sequence[str], classifiers: Sequence[Optional[Classifier]] = ()) -> dict[str, str]:
    """{name: SHA-256} for each model (``classifiers``: the loaded ones, in the same order, where at hand)."""
    loaded = list(classifiers) + [None] * (len(names) - len(classifiers))
    return {name: model_fingerprint(name, c) for name, c in zip(names, loaded)}


def clear_cache() -> None:
    """Forget the digests computed so far (tests that swap a model's weights in one process)."""
    _cache.clear()


def check_fingerprints(
    config_record: Mapping[str, Any],
    classifiers: Optional[Mapping[str, Classifier]] = None,
    logger: Optional[logging.Logger] = None,
) -> None:
    """Refuse (one-line :class:`FoolingError`) if a model's weights differ from those config.json recorded.

    config_record: a run's config.json. A run made before weights were recorded is accepted with a
    warning on ``logger`` (default: the ``fooling.run`` logger).
    """
    log = logger or _log
    run = config_record.get("run") if isinstance(config_record, Mapping) else None
    recorded = run.get(RECORD_KEY) if isinstance(run, Mapping) else None
    if not isinstance(recorded, Mapping) or not recorded:
        models = config_record.get("models") or [config_record.get("model")]
        log.warning("this run was made before model weights were fingerprinted; cannot check that "
                    f"{', '.join(map(str, models))} still has the weights it was run against")
        return
    for name, old in recorded.items():
        if not isinstance(old, str):
            raise FoolingError(f"config.json records a weights SHA-256 for {name} that is not a string")
        now = model_fingerprint(name, (classifiers or {}).get(name))
        if now != old:
            raise FoolingError(f"model {name} has changed since this run was made: weights SHA-256 "
                               f"{old[:12]} then, {now[:12]} now; use the original weights or start a new run")
