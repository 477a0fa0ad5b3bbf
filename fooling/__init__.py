"""fooling: evolve images that deep classifiers label with near certainty.

A reproduction of Nguyen, Yosinski & Clune (CVPR 2015), "Deep Neural Networks are
Easily Fooled", built on one batched pipeline: strategy.ask() -> genomes ->
encoding.decode() -> images -> objective (classifiers) -> fitness -> strategy.tell().

The Python API (see README, "Python API"): :func:`evolve`, :func:`sweep`, :func:`ascend`, :func:`resume`, :func:`read_run`,
:class:`RunResult` and the settings classes :class:`EvolveSettings`, :class:`AscendSettings`,
:class:`RetrainSettings`. They load on first use: ``import fooling`` imports no torch.
"""

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "evolve": "fooling.api", "ascend": "fooling.api", "resume": "fooling.api", "read_run": "fooling.api",
    "sweep": "fooling.api",
    "RunResult": "fooling.api",
    "EvolveSettings": "fooling.settings.evolve", "AscendSettings": "fooling.settings.ascend",
    "RetrainSettings": "fooling.settings.retrain",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fooling' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
