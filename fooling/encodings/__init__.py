"""Encodings: genome batch -> image batch (N, C, H, W) in [0, 1]."""

from __future__ import annotations

from typing import Optional

import torch

from ..settings.evolve import EvolveSettings
from ..errors import FoolingError
from .base import Encoding
from .direct import DirectEncoding


def make_encoding(config: EvolveSettings, image_shape: tuple[int, int, int],
                  device: Optional[torch.device] = None) -> Encoding:
    """The encoding a resolved config asks for, drawing images of ``image_shape`` (C, H, W); direct genomes
    live on ``device`` (the run's; default CPU)."""
    if config.encoding == "direct":
        return DirectEncoding(
            image_shape,
            colour=config.colour,
            mutation=config.mutation,
            mutation_rate=config.mutation_rate,
            mutation_eta=config.mutation_eta,
            rate_halving_every=config.rate_halving_every,
            crossover_rate=config.crossover_rate,
            crossover_eta=config.crossover_eta,
            device=device if device is not None else "cpu",
            compile=config.compile,
        )
    if config.encoding == "cppn":
        from .cppn import CPPNEncoding

        return CPPNEncoding.from_config(config, image_shape)
    raise FoolingError(f"unknown encoding {config.encoding!r}")


__all__ = ["DirectEncoding", "Encoding", "make_encoding"]
