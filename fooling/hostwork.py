"""Which of its two code paths the hot loop takes for a device: host work or device kernels.

On the CPU every tensor is already in host memory, so the loop does its small bookkeeping there: it finds
positions with numpy, draws random numbers only for the genes that change, copies big rows one by one and keeps
the archive's books on numpy views. On a GPU the same steps stay on the device: dense draws, masked selections
and indexed kernels, with no host synchronisation. Both paths make the same choices from the same numbers (the
archive, the ranks, the row copies) or draw from the same distributions (the variation operators).

:data:`HOST_DEVICES` is the one place that says which devices take the host path. The tests empty it to run the
device path, what CUDA runs, on the CPU (``tests/test_hostwork.py``).
"""

from __future__ import annotations

import torch

HOST_DEVICES: tuple[str, ...] = ("cpu",)  # device types whose loop does its bookkeeping on the host


def on_host(device: torch.device | str) -> bool:
    """True where the loop's bookkeeping for tensors on ``device`` runs on the host (the CPU)."""
    return torch.device(device).type in HOST_DEVICES
