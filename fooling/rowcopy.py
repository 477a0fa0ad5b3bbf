"""Gathers and scatters of whole rows of 2-D tensors (genome banks, snes-elites means): ``dst[i] = src[j]``.

On the CPU, torch's ``index_select`` / ``index_copy_`` move big rows several times slower than a plain copy
of each row (64 rows of 196,608 float32: 11-16 ms against 4.4 ms on two cores, `scripts/bench_imagenet_phases.py`
measures the loop), so a CPU copy of a few big rows goes row by row: one ``copy_`` (a memcpy) per row, the
indices read on the host, where they already are. Elsewhere (CUDA) it is one indexed kernel and no host sync.
"""

from __future__ import annotations

from typing import Optional

import torch

from .hostwork import on_host

ROW_LOOP_MAX = 256  # the CPU copies at most this many rows one by one (more: one indexed copy)
ROW_LOOP_MIN_VALUES = 1 << 14  # ... and only rows of at least this many values (smaller: one indexed copy)


def _one_by_one(like: torch.Tensor, rows: int) -> bool:
    return on_host(like.device) and 0 < rows <= ROW_LOOP_MAX and like.shape[1] >= ROW_LOOP_MIN_VALUES


def gather_rows(src: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(len(index), G) a fresh copy of rows ``index`` of ``src`` (R, G), contiguous."""
    if not _one_by_one(src, len(index)):
        return src.index_select(0, index)
    out = torch.empty((len(index), src.shape[1]), dtype=src.dtype, device=src.device)
    for i, j in enumerate(index.tolist()):
        out[i].copy_(src[j])
    return out


def scatter_rows_(dst: torch.Tensor, index: torch.Tensor, src: torch.Tensor,
                  src_index: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``dst[index[i]] = src[src_index[i]]`` (``src[i]`` without ``src_index``) in place; returns ``dst`` (R, G).

    ``index`` must not repeat a row (as for ``index_copy_``); ``src`` is cast to ``dst``'s dtype.
    """
    if not _one_by_one(dst, len(index)):
        rows = src if src_index is None else src.index_select(0, src_index)
        return dst.index_copy_(0, index, rows.to(dst.dtype))
    sources = range(len(index)) if src_index is None else src_index.tolist()
    for i, j in zip(index.tolist(), sources):
        dst[i].copy_(src[j])
    return dst
