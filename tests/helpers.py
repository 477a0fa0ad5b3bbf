"""Helpers shared by several test modules (importable as ``helpers``: setup.cfg puts tests/ on the path)."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterable, Iterator, Optional

import numpy as np
import torch

from fooling.encodings.cppn import CPPNEncoding, Genome, Style
from fooling.encodings.cppn.functions import apply_numpy
from fooling.encodings.cppn.genome import NUM_INPUTS
from fooling.encodings.cppn.style import colour_map, coordinates


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
    from pathlib import Path

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
