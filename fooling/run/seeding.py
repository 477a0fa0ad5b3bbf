"""One seed for everything: numpy generators, Python's `random` (DEAP) and torch."""

from __future__ import annotations

import random

import numpy as np
import torch


def make_rngs(seed: int) -> tuple[np.random.Generator, random.Random]:
    """(numpy Generator for the strategy and operators, Python Random for DEAP's algorithms)."""
    strategy_seq, python_seq, torch_seq = np.random.SeedSequence(seed).spawn(3)
    torch.manual_seed(int(torch_seq.generate_state(1)[0]))
    return np.random.default_rng(strategy_seq), random.Random(int(python_seq.generate_state(1)[0]))


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """The run's torch Generator on ``device``, for genomes that live there (the 4th child of the seed's
    SeedSequence, so the others stay what :func:`make_rngs` makes). Same seed and device: same draws."""
    sequence = np.random.SeedSequence(seed).spawn(4)[3]
    value = int(sequence.generate_state(1, np.uint64)[0]) & (2**63 - 1)
    return torch.Generator(device=torch.device(device)).manual_seed(value)
