"""The model-source settings (``input``, ``mean``, ``std``, ``labels``), declared once for every command that loads
a classifier: how a model file (.pt TorchScript, .onnx), a timm: or a python: model takes its input. They can also
come from a JSON sidecar beside the file (net.json); see fooling/classifiers/sources.py."""

from __future__ import annotations

from typing import Any

from .fields import setting

MODEL_SOURCE = "model source"  # the settings group

_SETTINGS: dict[str, tuple[str, str]] = {  # name -> (help, metavar)
    "input": ("A model file's input, CxHxW (e.g. 3x224x224) [its sidecar JSON; an ONNX file's own].", "CxHxW"),
    "mean": ("A model file's per-channel mean, subtracted from pixels in [0, 1], e.g. 0.485,0.456,0.406 [0].",
             "M1,M2,M3"),
    "std": ("A model file's per-channel std, dividing after the mean, e.g. 0.229,0.224,0.225 [1].", "S1,S2,S3"),
    "labels": ("A model file's class names: a text file, one a line (or a JSON list) [numbered].", "FILE"),
}


def model_source(name: str) -> Any:
    """A new dataclass field for the model-source setting ``name`` (None by default), for a settings class body."""
    help_text, metavar = _SETTINGS[name]
    return setting(None, help_text, group=MODEL_SOURCE, metavar=metavar)
