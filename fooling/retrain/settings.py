"""Every setting of a ``fool retrain`` run, in one dataclass (saved as retrain.json)."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from ..config import ENCODINGS, PRESETS
from ..errors import FoolingError

HEAD_ROWS = ("fooling", "all")


@dataclass
class RetrainSettings:
    """One retraining experiment: K iterations of evolve -> add a fooling class -> retrain.

    Network 0 is ``model``; network i (i >= 1) has n + 1 outputs and is trained on the real
    images plus the fooling images evolved against networks 0..i-1.
    """

    # what
    model: str = "mnist-lenet"
    iterations: int = 5
    name: Optional[str] = None  # networks are saved as <name>-r<i>; None: <model>-<encoding>
    classes: Optional[list[int]] = None  # classes to evolve for (None: all n real classes)

    # evolution, per iteration
    encoding: str = "direct"
    preset: str = "default"
    generations: int = 200
    population: int = 200
    runs_per_iteration: int = 2  # independent runs (seeds) per iteration
    snapshot_every: int = 10  # every N generations, each class's elite (if new) joins the pool
    min_confidence: float = 0.0  # pool only elites at least this confident
    image_size: Optional[int] = None  # evolved image side (None: evolve's default)
    seed: int = 0
    device: str = "auto"

    # the fooling class in training
    fooling_images: Optional[int] = None  # fooling-class size per training (None: mean real class size)

    # training (MNIST: a fresh LeNet per iteration; ImageNet: the head only)
    epochs: Optional[int] = None  # None: 12 for LeNet, 30 for an ImageNet head
    lr: Optional[float] = None  # None: 1e-3
    batch_size: int = 64
    train_seed: Optional[int] = None  # None: the seed the base LeNet was trained with (mnist-lenet: 0)

    # data
    mnist_dir: Optional[str] = None  # full MNIST IDX files (None: the embedded 5k digits)
    imagenet_dir: Optional[str] = None  # ImageFolder of real images (needed for ImageNet models)
    held_out: float = 0.2  # ImageNet folder: share of each class's images held out for measuring
    head_rows: str = "fooling"  # ImageNet head: train only the new fooling row, or all 1001 rows

    out: Optional[str] = None

    def validate(self) -> None:
        """Raise :class:`FoolingError` for settings no run can use."""
        if self.encoding not in ENCODINGS:
            raise FoolingError(f"unknown encoding {self.encoding!r}; choose from {', '.join(ENCODINGS)}")
        if self.preset not in PRESETS:
            raise FoolingError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        for key in ("iterations", "generations", "population", "runs_per_iteration", "snapshot_every",
                    "batch_size"):
            if getattr(self, key) <= 0:
                raise FoolingError(f"--{key.replace('_', '-')} must be positive, got {getattr(self, key)}")
        if self.runs_per_iteration > 100 or self.iterations > 99:
            raise FoolingError("at most 99 iterations of at most 100 runs each (their seeds must not collide)")
        for key in ("fooling_images", "epochs", "image_size"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise FoolingError(f"--{key.replace('_', '-')} must be positive, got {value}")
        if self.lr is not None and self.lr <= 0:
            raise FoolingError(f"--lr must be positive, got {self.lr}")
        if not 0.0 <= self.min_confidence < 1.0:
            raise FoolingError(f"--min-confidence must lie in [0, 1), got {self.min_confidence}")
        if not 0.0 < self.held_out < 1.0:
            raise FoolingError(f"--held-out must lie strictly between 0 and 1, got {self.held_out}")
        if self.head_rows not in HEAD_ROWS:
            raise FoolingError(f"--head-rows must be one of {', '.join(HEAD_ROWS)}, not {self.head_rows!r}")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise FoolingError(f"--name {self.name!r} is not a usable model name (letters, digits, . _ -)")

    @property
    def prefix(self) -> str:
        """Stem of the saved networks' names."""
        return self.name or f"{self.model.replace(':', '-')}-{self.encoding}"

    def network_name(self, i: int) -> str:
        """Name of network ``i`` (0: the base model)."""
        return self.model if i == 0 else f"{self.prefix}-r{i}"

    def run_seed(self, iteration: int, run: int) -> int:
        """The evolve seed of run ``run`` of ``iteration``: distinct for every run of the experiment."""
        return self.seed * 10_000 + iteration * 100 + run

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RetrainSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise FoolingError(f"retrain.json has unknown settings: {', '.join(sorted(unknown))}")
        return cls(**data)
