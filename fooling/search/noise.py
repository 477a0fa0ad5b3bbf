"""Standard normal noise for seeded blocks of children (snes-elites' emitters), drawn as the device draws fastest.

- CPU: block j from a Generator seeded with ``seeds[j]`` (mt19937, as the other plans' blocks): any piece of a
  generation draws exactly its own blocks, with no work for the others.
- CUDA: every block of the generation in one draw, from a Generator seeded with the generation's first block
  seed. A draw per block is a kernel launch and a Generator each, and with 200 emitters a generation (1000
  ImageNet classes at population 400) that host work rivals the forward pass; a piece (a Ray actor's share)
  draws the whole generation and keeps its blocks, which a GPU does in microseconds.

Either way a block's noise depends only on the plan, never on how many pieces it was cut into.
"""

from __future__ import annotations

from typing import Sequence

import torch

ONE_DRAW_DEVICES = ("cuda",)  # device types whose generation's noise is one draw


def one_draw(device: torch.device) -> bool:
    """Whether the noise of a generation is drawn at once on ``device`` (see the module docstring)."""
    return torch.device(device).type in ONE_DRAW_DEVICES


def block_noise(seeds: Sequence[int], shape: tuple[int, ...], device: torch.device, first: int = 0,
                total: int | None = None, draw_seed: int | None = None) -> torch.Tensor:
    """(k, *shape) float32 standard normal noise of blocks ``first .. first + k - 1`` of a generation.

    seeds (k,): the blocks' seeds (per-block draws); total and draw_seed: the generation's number of blocks and
    first block seed (one draw; by default this is the whole generation: first 0, total k, seeds[0]).
    """
    device = torch.device(device)
    k = len(seeds)
    if k == 0:
        return torch.empty((0, *shape), device=device)
    if one_draw(device):
        total = k if total is None else total
        seed = int(seeds[0]) if draw_seed is None else int(draw_seed)
        generator = torch.Generator(device=device).manual_seed(seed)
        return torch.randn((total, *shape), generator=generator, device=device)[first:first + k]
    out = torch.empty((k, *shape), device=device)
    for j, seed in enumerate(seeds):
        torch.randn(shape, generator=torch.Generator(device=device).manual_seed(int(seed)), out=out[j])
    return out
