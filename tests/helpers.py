"""Helpers shared by several test modules (importable as ``helpers``: setup.cfg puts tests/ on the path)."""

from __future__ import annotations

import numpy as np

from fooling.encodings.cppn import CPPNEncoding, Genome


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
