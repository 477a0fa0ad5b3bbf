"""Helpers shared by several test modules (importable as ``helpers``: setup.cfg puts tests/ on the path)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np
import pytest
import torch

from fooling.encodings.cppn import CPPNEncoding, Genome, Style
from fooling.encodings.cppn.functions import apply_numpy
from fooling.encodings.cppn.genome import NUM_INPUTS
from fooling.encodings.cppn.style import colour_map, coordinates

# Devices for tests of code with a host path and a device path (fooling.hostwork), parametrized indirectly
# through conftest's ``device`` fixture: "cpu-device-path" runs the device path, what CUDA runs, on the CPU.
DEVICES = ["cpu", "cpu-device-path", pytest.param("cuda", marks=pytest.mark.cuda)]


def take_the_device_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until the test ends, the CPU runs the hot loop as CUDA does: no bookkeeping on the host, and a generation's
    noise in one draw (fooling.hostwork, fooling.search.noise)."""
    from fooling import hostwork
    from fooling.search import noise

    monkeypatch.setattr(hostwork, "HOST_DEVICES", ())
    monkeypatch.setattr(noise, "ONE_DRAW_DEVICES", ("cpu", "cuda"))


def mutated_cppns(enc: CPPNEncoding, n: int, generations: int, seed: int = 0) -> list[Genome]:
    """``n`` CPPNs of varied topology: random starts mutated ``generations`` times (some with unwired nodes)."""
    rng = np.random.default_rng(seed)
    genomes = enc.random(n, rng)
    for generation in range(generations):
        genomes = enc.mutate(genomes, rng, generation)
    return genomes


def objective(classifier):
    """The one-classifier :class:`~fooling.objective.Objective` over all of its classes."""
    from fooling.objective import Objective

    return Objective([classifier], range(classifier.num_classes))


def render_reference(genome: Genome, style: Style, size: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """One genome drawn node by node in float64 numpy: (C, H, W) float64 tensor. The test oracle of the
    batched renderer (:func:`fooling.encodings.cppn.render`)."""
    size = tuple(size or style.size)
    coords = coordinates(style, size)
    values = list(coords)
    functions = genome.functions
    for node in range(NUM_INPUTS, genome.num_nodes):
        total = np.zeros(coords.shape[1])
        for source, weight in zip(genome.sources[genome.targets == node], genome.weights[genome.targets == node]):
            total = total + weight * values[source]
        values.append(apply_numpy(int(functions[node - NUM_INPUTS]), total))
    outputs = torch.from_numpy(np.stack(values[genome.num_nodes - genome.num_outputs:]))
    return colour_map(outputs[None], style.colour)[0].view(style.channels, *size)


def checkpoint_arrays(run_dir, prefixes=("archive.",)) -> dict[str, np.ndarray]:
    """The arrays of RUN_DIR/checkpoint whose names start with one of ``prefixes`` (default: the archive)."""
    from fooling.rundir.checkpoint import load_checkpoint

    arrays, _ = load_checkpoint(Path(run_dir) / "checkpoint")
    return {k: v for k, v in arrays.items() if k.startswith(tuple(prefixes))}


def assert_same_archive(a, b, prefixes=("archive.",)) -> None:
    """Two runs' checkpointed archives (and whatever else ``prefixes`` name) are equal, array for array."""
    left, right = checkpoint_arrays(a, prefixes), checkpoint_arrays(b, prefixes)
    assert left.keys() == right.keys()
    for key in left:
        np.testing.assert_array_equal(left[key], right[key], err_msg=key)


@contextlib.contextmanager
def ray_with_paths(paths: Iterable[Any], **init: Any) -> Iterator[Any]:
    """A local Ray of 2 CPUs (fooling.distributed.ray_setup.connected) whose workers also import ``paths``
    (put first on PYTHONPATH, which the workers inherit, and restored after); yields the ray module."""
    from fooling.distributed.ray_setup import connected

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [*map(str, paths), old]))
    try:
        with connected("--workers", num_cpus=2, **init) as module:
            yield module
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


TIMING = ("elapsed_s", "evals_per_s")


def run_summary(path: Path) -> dict:
    """summary.json without its timing."""
    return {k: v for k, v in json.loads((path / "summary.json").read_text()).items() if k not in TIMING}


def read_png(path: Any) -> Any:
    """The PIL image at ``path`` (a file name or a file object), read whole and its file closed (``.text`` kept)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
    return image


def csv_rows(path: Path) -> list[dict]:
    """The rows of the CSV file ``path`` as dicts (the file closed after)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_metrics(path: Path) -> list[dict]:
    """metrics.csv's rows without elapsed_s."""
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv_rows(path / "metrics.csv")]


def assert_same_run(a: Path, b: Path) -> None:
    """elites/ byte for byte, summary.json but its timing, metrics.csv but elapsed_s, checkpoint arrays."""
    names = sorted(p.name for p in (a / "elites").iterdir())
    assert names == sorted(p.name for p in (b / "elites").iterdir()) and names
    for name in names:
        assert (a / "elites" / name).read_bytes() == (b / "elites" / name).read_bytes(), name
    assert run_summary(a) == run_summary(b)
    assert run_metrics(a) == run_metrics(b)
    assert_same_archive(a, b, prefixes=("",))
