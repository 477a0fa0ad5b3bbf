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
