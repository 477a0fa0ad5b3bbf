"""Model registry: a name -> one loader each.

Static models register a :class:`ModelSpec`; families such as ``torchvision:NAME``
or the networks ``fool retrain`` saves register a *resolver* that turns a name
into a spec on demand (and lists the names it knows).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import torch

from ..errors import FoolingError
from .base import Classifier


@dataclass(frozen=True)
class ModelSpec:
    """One named classifier.

    load(device, crops) builds the :class:`Classifier`; ready() tells whether it can
    be used right now without training or downloading; note says what using it
    would take otherwise; problem() says what is broken in its files (None: nothing).
    """

    name: str
    dataset: str  # "mnist" or "imagenet"
    input: str  # e.g. "1x28x28 grey"
    num_classes: int
    description: str
    load: Callable[[torch.device, int], Classifier]
    ready: Callable[[], bool] = field(default=lambda: True)
    note: str = ""
    problem: Callable[[], Optional[str]] = field(default=lambda: None)  # what is wrong with its files, if anything
    weights_path: Optional[str] = None  # the file its weights come from (fingerprint.py hashes it), if one
    differentiable: bool = True  # False: no gradients (an ONNX model in onnxruntime): no fool ascend / attacks


_SPECS: dict[str, ModelSpec] = {}
_RESOLVERS: list[tuple[Callable[[str], Optional[ModelSpec]], Callable[[], Iterable[ModelSpec]]]] = []


def register(spec: ModelSpec) -> ModelSpec:
    """Add a named model (a later registration of the same name replaces it)."""
    _SPECS[spec.name] = spec
    return spec


def register_resolver(
    resolve: Callable[[str], Optional[ModelSpec]], listing: Callable[[], Iterable[ModelSpec]] = lambda: ()
) -> None:
    """Add a family of models: ``resolve(name)`` returns a spec or None; ``listing()`` names the known ones."""
    _RESOLVERS.append((resolve, listing))


def _load_builtin() -> None:
    # Importing these modules registers their models (and the resolver for retrained ImageNet heads).
    from . import mnist  # noqa: F401  (first: `fool models` lists MNIST before ImageNet)
    from . import imagenet  # noqa: F401
    from . import retrained  # noqa: F401


def static_names() -> set[str]:
    """The names registered one by one (built-in models), not through a resolver."""
    _load_builtin()
    return set(_SPECS)


def list_models() -> list[ModelSpec]:
    """Every model the registry knows, static ones first."""
    _load_builtin()
    specs = dict(_SPECS)
    for _, listing in _RESOLVERS:
        for spec in listing():
            specs.setdefault(spec.name, spec)
    return list(specs.values())


def check_model_name(name: str) -> None:
    """Refuse names that could reach outside the models folder (path separators, NUL) or are empty."""
    separators = {"/", "\\", os.sep, os.altsep} - {None}
    if not isinstance(name, str) or not name.strip():
        raise FoolingError("a model name cannot be empty; `fool models` lists them")
    if any(sep in name for sep in separators) or "\0" in name or name in (".", ".."):
        raise FoolingError(f"model name {name!r} is not a name but a path: a model file must end in .pt "
                           f"(TorchScript) or .onnx; model names cannot contain path separators; `fool models` "
                           f"lists them")


def get_spec(name: str) -> ModelSpec:
    """The spec for ``name``; a :class:`FoolingError` naming close matches if unknown.

    Besides registry names: a TorchScript (.pt) or ONNX (.onnx) file, ``timm:NAME``,
    ``python:package.module:function`` and ``module:NAME`` (see :mod:`fooling.classifiers.sources`)."""
    from . import sources

    if isinstance(name, str) and name in _SPECS:
        return _SPECS[name]  # module:NAME, registered by sources.from_module
    if isinstance(name, str) and sources.is_source(name):
        return sources.source_spec(name)
    check_model_name(name)
    _load_builtin()
    if name in _SPECS:
        return _SPECS[name]
    for resolve, _ in _RESOLVERS:
        spec = resolve(name)
        if spec is not None:
            return spec
    known = [s.name for s in list_models()]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise FoolingError(f"unknown model {name!r}{hint}; `fool models` lists them")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU; 'cuda' without a GPU is a :class:`FoolingError`.

    The result names what a tensor made there reports as its ``.device``: ``cpu``, or ``cuda:N`` with the index
    (``cuda`` alone is the current CUDA device). ``torch.device("cuda") != torch.device("cuda:0")``, so code that
    asks whether a tensor is already on the run's device would otherwise always answer no on a GPU."""
    if isinstance(device, torch.device):
        resolved: Optional[torch.device] = device
    elif device == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError):
            resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise FoolingError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if resolved.type == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise FoolingError(f"--device {device} asked for, but no CUDA device is available")
    if resolved.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    if resolved.index >= torch.cuda.device_count():
        raise FoolingError(f"--device {device} asked for, but this machine has CUDA devices "
                           f"0-{torch.cuda.device_count() - 1}")
    return resolved


def load_classifier(name: str, device: str | torch.device = "auto", crops: int = 1) -> Classifier:
    """Build the named classifier on ``device`` (see :func:`resolve_device`)."""
    spec = get_spec(name)
    return spec.load(resolve_device(device), crops)
