"""Shared fixtures: a private model cache, a quickly trained LeNet, and a tiny oracle classifier."""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a loaded 2-core machine spinning stalls every op.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Every checkpoint of the test session rehashes the rows whose cached digests it trusts (fooling.rowdigests):
# each checkpoint and resume test also checks that every write of a cached array forgot its rows.
os.environ.setdefault("FOOLING_VERIFY_DIGESTS", "1")
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fooling.classifiers import Classifier, ModelSpec, Preprocess, register

torch.set_num_threads(2)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` skip on machines without a CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def fooling_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point $FOOLING_CACHE at a temporary folder for the whole session (tests never touch ~/.cache)."""
    path = tmp_path_factory.mktemp("fooling-cache")
    old = os.environ.get("FOOLING_CACHE")
    os.environ["FOOLING_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("FOOLING_CACHE", None)
    else:
        os.environ["FOOLING_CACHE"] = old


@pytest.fixture
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The device of a test parametrized over helpers.DEVICES with ``indirect=True``: "cpu-device-path" gives
    "cpu" with the CPU running the device path (what CUDA runs; fooling.hostwork)."""
    from helpers import take_the_device_path

    if request.param == "cpu-device-path":
        take_the_device_path(monkeypatch)
        return "cpu"
    return request.param


FIXTURE_ITERATIONS = 300  # a few seconds; sure enough of itself that 25 generations reach 99 %


@pytest.fixture(scope="session")
def mnist_lenet(fooling_cache: Path) -> str:
    """Train `mnist-lenet` briefly (the paper's Caffe recipe, cut to 300 iterations: a few seconds)
    into the test cache; returns its name.

    The registry then loads it like the real one (a cache entry's recipe is checked, not its
    length), so tests exercise the real loading code.
    """
    from fooling.classifiers.lenet import caffe_recipe
    from fooling.classifiers.mnist import train_lenet

    if not (fooling_cache / "models" / "mnist-lenet.pt").exists():
        train_lenet("mnist-lenet", caffe_recipe(0, iterations=FIXTURE_ITERATIONS), quiet=True)
    return "mnist-lenet"


class Oracle(nn.Module):
    """Class-k logit = 12 · (mean brightness of horizontal band k of the image) for 8×8 grey images.

    The best image for class k is band k white and the rest black, so a search that
    works must raise every class towards certainty.
    """

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bands = x.view(x.shape[0], self.num_classes, -1).mean(-1)
        return 12.0 * (bands - bands.mean(-1, keepdim=True))


ORACLE_INPUT = Preprocess(size=(8, 8), channels=1, mean=(0.0,), std=(1.0,))


def oracle_classifier(device: torch.device | str = "cpu", crops: int = 1) -> Classifier:
    return Classifier(Oracle(4), name="test-oracle", labels=["a", "b", "c", "d"], preprocess=ORACLE_INPUT,
                      device=device, crops=crops)


register(ModelSpec(name="test-oracle", dataset="test", input="1x8x8 grey", num_classes=4,
                   description="test oracle", load=lambda device, crops: oracle_classifier(device, crops)))


# The oracle scored 8 images per forward pass: a small population spans several chunks (tests/distributed).
register(ModelSpec(name="test-oracle-chunk8", dataset="test", input="1x8x8 grey", num_classes=4,
                   description="test oracle, 8 images a forward pass",
                   load=lambda device, crops: Classifier(Oracle(4), name="test-oracle-chunk8",
                                                         labels=["a", "b", "c", "d"], preprocess=ORACLE_INPUT,
                                                         device=device, crops=crops, chunk_size=8)))


@pytest.fixture
def oracle() -> Classifier:
    return oracle_classifier()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
