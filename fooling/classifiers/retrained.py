"""Retrained ImageNet networks as model names: a network saved by ``fool retrain`` (a base model with
its classifier head widened to n + 1 outputs, :mod:`fooling.retrain.head`) loads as ``--model NAME``.

A saved head is a state dict of an ``nn.Linear(F, n + 1)`` in the models folder plus JSON metadata
(``"arch": "imagenet-head"``, the base model and the head's module path). The resolver registered
here turns every such file into a :class:`~.registry.ModelSpec`; it lives with the classifiers (not
in ``retrain``) so that loading a model never imports the training code.
"""

from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch import nn

from ..errors import FoolingError
from ..paths import models_dir
from .base import Classifier
from .registry import ModelSpec, get_spec, load_classifier, register_resolver
from .weights import load_meta, load_state_dict

HEAD_ARCH = "imagenet-head"


def replace_module(net: nn.Module, path: str, module: nn.Module) -> None:
    """Put ``module`` at dotted ``path`` inside ``net``."""
    parent, _, leaf = path.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, leaf, module)


def _load_widened(name: str, meta: dict, device: torch.device, crops: int) -> Classifier:
    base = load_classifier(meta["base"], device, crops)
    state = load_state_dict(models_dir() / f"{name}.pt")
    out_features, in_features = state["weight"].shape
    head = nn.Linear(in_features, out_features)
    head.load_state_dict(state)
    replace_module(base.net, meta["head"], head)
    return Classifier(base.net, name=name, labels=meta["labels"], preprocess=base.spec, device=device, crops=crops)


def _head_spec(name: str) -> Optional[ModelSpec]:
    """A widened ImageNet network saved under ``name`` in the models folder, or None."""
    if not (models_dir() / f"{name}.pt").is_file():
        return None
    meta = load_meta(models_dir(), name)
    if not meta or meta.get("arch") != HEAD_ARCH:
        return None
    base = get_spec(meta["base"])
    return ModelSpec(
        name=name, dataset="imagenet", input=base.input, num_classes=int(meta["num_classes"]),
        description=meta.get("description") or f"{meta['base']} with a widened head",
        load=lambda device, crops: _load_widened(name, meta, device, crops), ready=base.ready, note=base.note,
    )


def _head_specs() -> Iterator[ModelSpec]:
    for path in sorted(models_dir().glob("*.pt")):
        try:
            spec = _head_spec(path.stem)
        except FoolingError:  # its base model is unknown in this installation
            continue
        if spec is not None:
            yield spec


register_resolver(_head_spec, _head_specs)
