"""CPPN-weight parameterisation for gradient ascent: tune the connection weights of evolved
topologies, keeping every node, connection and function as evolution left it.

Evolution finds a CPPN's structure and rough weights; gradient ascent then refines the
weights, which the image depends on smoothly (sin, tanh, Gaussians and clips of weighted
sums). The batch's genomes are compiled into one program once (:mod:`...encodings.cppn.compile`)
and drawn differentiably each step from a padded weight table (B, Emax). Weights stay in
the genome's range [-WEIGHT_RANGE, WEIGHT_RANGE], so the tuned genomes are ordinary,
valid CPPNs that ``fool render`` redraws at any size.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from ...encodings.cppn.genome import WEIGHT_RANGE, Genome
from ...encodings.cppn.compile import compile_population
from ...encodings.cppn.execute import run_program_differentiable
from ...encodings.cppn.style import Style, coordinates
from .parameterizations import update


class CppnWeights:
    """Parameters: the weights of B fixed CPPN topologies, (B, Emax) float32, zero-padded past each
    genome's connection count. Renders to (B, C, H, W) at ``size`` (default: the style's)."""

    def __init__(self, genomes: Sequence[Genome], style: Style, device: torch.device | str,
                 decay: float = 0.0, size: Optional[tuple[int, int]] = None) -> None:
        if not genomes:
            raise ValueError("CPPN-weight ascent needs at least one genome")
        self.style = style
        self.size = tuple(size or style.size)
        self.decay = decay
        self.device = torch.device(device)
        self.coords = coordinates(style, self.size)
        self.genomes = list(genomes)
        counts = np.array([g.num_connections for g in self.genomes], dtype=np.int64)
        table = np.zeros((len(self.genomes), int(counts.max(initial=0))), dtype=np.float32)
        for i, g in enumerate(self.genomes):
            table[i, :len(g.weights)] = g.weights
        self.w = torch.from_numpy(table).to(self.device)
        self._compile()

    def _compile(self) -> None:
        """The drawing program and the mask of real (unpadded) weights of the current genomes."""
        counts = torch.tensor([g.num_connections for g in self.genomes], device=self.device)
        self.program = compile_population(self.genomes)
        self.mask = torch.arange(self.w.shape[1], device=self.device) < counts[:, None]  # (B, Emax)

    def parameters(self) -> torch.Tensor:
        return self.w

    def sizes(self) -> torch.Tensor:
        """(B,) each genome's number of weights (the unpadded length of its row)."""
        return self.mask.sum(1)

    def render(self, params: torch.Tensor) -> torch.Tensor:
        """(B, Emax) weights -> images (B, C, H, W) in [0, 1], differentiably."""
        images = run_program_differentiable(self.program, self.coords, params[self.mask], self.style.colour)
        return images.view(len(self.genomes), self.style.channels, *self.size)

    def project(self, params: torch.Tensor, grad: torch.Tensor, step: int) -> None:
        """w <- clip(params·(1 - decay)) to the genome weight range; padding stays 0."""
        self.w = (params * (1.0 - self.decay)).clamp_(-WEIGHT_RANGE, WEIGHT_RANGE) * self.mask

    def update(self, grad: torch.Tensor, lr: torch.Tensor, step: int) -> None:
        """w <- clip((w + lr·grad)(1 - decay)) to the genome weight range; padding stays 0."""
        update(self, grad, lr, step)

    def keep(self, rows: torch.Tensor) -> None:
        self.w = self.w[rows]
        self.genomes = [self.genomes[i] for i in rows.tolist()]
        self._compile()

    def state(self, rows: torch.Tensor, params: torch.Tensor) -> list[Genome]:
        """The genomes ``rows`` (indices into the current batch) carrying the weights ``params`` (B, Emax)."""
        table = params.detach().double().cpu().numpy()
        kept = []
        for r in rows.tolist():
            g = self.genomes[r].copy()
            g.weights = table[r, :g.num_connections]  # in range: update() clamps, float32 -> float64 is exact
            kept.append(g)
        return kept
