"""Classifiers: a registry of named networks behind one wrapper (:class:`Classifier`)."""

from .base import PRECISIONS, Classifier, Preprocess, ten_crop
from .registry import (
    ModelSpec,
    get_spec,
    list_models,
    load_classifier,
    register,
    register_resolver,
    resolve_device,
)
from .sources import canonical_name, from_module

__all__ = [
    "PRECISIONS",
    "Classifier",
    "ModelSpec",
    "Preprocess",
    "canonical_name",
    "from_module",
    "get_spec",
    "list_models",
    "load_classifier",
    "register",
    "register_resolver",
    "resolve_device",
    "ten_crop",
]
