"""Standard normal noise for seeded blocks of children (snes-elites' emitters), drawn as the device draws fastest.

- CPU: block j from a Generator seeded with ``seeds[j]`` (mt19937, as the other plans' blocks): any piece of a
  generation draws exactly its own blocks, with no work for the others, and blocks are drawn on several threads
  at once (:func:`fooling.hostwork.split`) where there are many.
- CUDA: every block of the generation in one draw, from a Generator seeded with the generation's first block
  seed. A draw per block is a kernel launch and a Generator each, and with 200 emitters a generation (1000
  ImageNet classes at population 400) that host work rivals the forward pass; a piece (a Ray actor's share)
  draws the whole generation and keeps its blocks, which a GPU does in microseconds.

Either way a block's noise depends only on the plan, never on how many pieces it was cut into.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from ..hostwork import split

ONE_DRAW_DEVICES = ("cuda",)  # device types whose generation's noise is one draw
# CPU blocks are drawn over threads in pieces of at least this many values (a normal draw takes about 4 ns: 64
# children at 256 px, 1.6 million draws, took 5.7 ms on one thread and 3.3-4.3 on two)
MIN_DRAWS_A_THREAD = 1 << 18


def one_draw(device: torch.device) -> bool:
    """Whether the noise of a generation is drawn at once on ``device`` (see the module docstring)."""
    return torch.device(device).type in ONE_DRAW_DEVICES


def stream_key(device: torch.device) -> str:
    """What decides the numbers a ``torch.Generator`` on ``device`` draws from a seed: the PyTorch version and the
    device type (mt19937 on the CPU, Philox on CUDA), and on CUDA the GPU's multiprocessor count and threads per
    multiprocessor (a big draw's kernel grid, and so which Philox subsequence each element comes from, is capped
    by them). Two processes whose keys are equal realise the same children from the same plan."""
    device = torch.device(device)
    key = f"torch {torch.__version__}, {device.type}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        key += f" {props.name}, {props.multi_processor_count} SMs x {props.max_threads_per_multi_processor} threads"
    return key


def block_noise(seeds: Sequence[int], shape: tuple[int, ...], device: torch.device, first: int = 0,
                total: Optional[int] = None, draw_seed: Optional[int] = None,
                out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(k, *shape) float32 standard normal noise of blocks ``first .. first + k - 1`` of a generation, written
    into ``out`` (k, *shape) if given (each ``out[j]`` contiguous) and returned.

    seeds (k,): the blocks' seeds (per-block draws: block j is ``torch.randn(shape)`` from a Generator seeded with
    ``seeds[j]``); total and draw_seed: the generation's number of blocks and first block seed (one draw; by
    default this is the whole generation: first 0, total k, seeds[0]).
    """
    device = torch.device(device)
    k = len(seeds)
    if out is None:
        out = torch.empty((k, *shape), device=device)
    if k == 0:
        return out
    if one_draw(device):
        generator = torch.Generator(device=device)
        generator.manual_seed(int(seeds[0]) if draw_seed is None else int(draw_seed))
        whole = torch.randn((k if total is None else total, *shape), generator=generator, device=device)
        return out.copy_(whole[first:first + k])
    blocks, block_seeds = out.unbind(0), np.asarray(seeds).tolist()

    def draw(start: int, stop: int) -> None:  # randn's draws, straight into blocks start .. stop - 1
        generator = torch.Generator(device=device)
        for j in range(start, stop):
            blocks[j].normal_(generator=generator.manual_seed(block_seeds[j]))

    split(draw, k, out.numel(), MIN_DRAWS_A_THREAD)  # each block from its own seed: any split, the same draws
    return out
