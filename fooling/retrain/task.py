"""What the retrain loop asks of a data set: measure a network, train the next one.

Two implementations: :class:`~fooling.retrain.mnist.MnistTask` (a fresh LeNet with
n + 1 outputs per iteration) and :class:`~fooling.retrain.imagenet.ImageNetTask`
(the pretrained network with its classifier head widened to n + 1 outputs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..classifiers.weights import load_meta, load_state_dict, save_model
from ..errors import FoolingError
from ..paths import models_dir
from ..progress import Progress
from .pool import Pool
from ..settings.retrain import RetrainSettings

FOOLING_LABEL = "fooling"


def held_out_metrics(pred: np.ndarray, labels: np.ndarray, num_real: int) -> dict[str, Any]:
    """Top-1 accuracy on real held-out images and the share of them put in the fooling class (index n).

    pred, labels: (N,) class indices; a prediction of the fooling class counts as wrong.
    """
    return {"held_out_accuracy": float((pred == labels).mean()),
            "held_out_fooling_share": float((pred == num_real).mean())}


class RetrainTask(ABC):
    """One data set's part of the loop; network 0 is the base model, network i >= 1 has n + 1 outputs."""

    progress = False  # show training progress on stderr (RetrainRun sets it)

    def __init__(self, settings: RetrainSettings, folder: Path) -> None:
        self.settings = settings
        self.folder = folder  # the retrain directory

    def training_progress(self, total: int, unit: str = "epoch") -> Progress:
        """A progress display over ``total`` training epochs (or iterations) (silent unless :attr:`progress`)."""
        return Progress(total, 0, enabled=self.progress, unit=unit)

    @property
    @abstractmethod
    def labels(self) -> list[str]:
        """The base model's n class names."""

    def caveat(self) -> Optional[str]:
        """Why network 0's row may not compare with the retrained networks' (None: it does)."""
        return None

    @property
    def num_real(self) -> int:
        return len(self.labels)

    @abstractmethod
    def fooling_class_size(self) -> int:
        """How many fooling images each training gets: ``--fooling-images``, else the mean real class size."""

    @abstractmethod
    def measure(self, i: int) -> dict[str, Any]:
        """held_out_accuracy and held_out_fooling_share (None for network 0) of network i."""

    @abstractmethod
    def train(self, i: int, pools: Sequence[Pool]) -> dict[str, Any]:
        """Train network i on the real data plus fooling images from ``pools`` (one per earlier iteration),
        save and register it; returns its metadata."""

    # --- saving: a copy in the retrain directory, the registered one in the models folder --------
    def save(self, i: int, state: dict, meta: dict[str, Any]) -> None:
        """Write network i to ``<retrain dir>/networks`` and register it in the models folder."""
        name = self.settings.network_name(i)
        save_model(self.folder / "networks", name, state, meta)
        save_model(models_dir(), name, state, meta)

    def ensure_registered(self, i: int) -> bool:
        """Re-register a trained network i from the retrain directory if the models folder lacks it.

        Returns False if the retrain directory has no finished network i.
        """
        name = self.settings.network_name(i)
        kept = self.folder / "networks"
        meta = load_meta(kept, name)
        if meta is None or not (kept / f"{name}.pt").is_file():
            return False
        if not (models_dir() / f"{name}.pt").is_file() or load_meta(models_dir(), name) != meta:
            save_model(models_dir(), name, load_state_dict(kept / f"{name}.pt"), meta)
        return True

    def check_names_free(self) -> None:
        """Refuse to overwrite networks in the models folder that another retrain run (or a user) saved."""
        mine = str(self.folder.resolve())
        for i in range(1, self.settings.iterations + 1):
            name = self.settings.network_name(i)
            meta = load_meta(models_dir(), name)
            if (models_dir() / f"{name}.pt").is_file() and (meta or {}).get("retrain", {}).get("dir") != mine:
                raise FoolingError(f"a model named {name} exists already in {models_dir()}; "
                                   f"choose another --name for this experiment")

    def meta(self, i: int, extra: dict[str, Any]) -> dict[str, Any]:
        """Metadata shared by every retrained network: classes, labels and provenance."""
        return {
            "num_classes": self.num_real + 1, "labels": [*self.labels, FOOLING_LABEL],
            "description": f"{self.settings.model} retrained with a fooling class, iteration {i} "
                           f"({self.settings.encoding} encoding)",
            "retrain": {"dir": str(self.folder.resolve()), "iteration": i, "base": self.settings.model},
            **extra,
        }
