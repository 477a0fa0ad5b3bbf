"""The CPPN node functions, each mapping any real to [-1, 1].

Function ids are small integers stored in genomes; :data:`FUNCTION_NAMES` gives their
names (used in genome JSON). Hidden and output nodes both apply one of them.

- 0 ``sine``: sin(x)
- 1 ``bipolar_sigmoid``: 2·sigmoid(x) − 1, computed as tanh(x / 2)
- 2 ``gaussian``: exp(−x²), in [0, 1]
- 3 ``clipped_identity``: clip(x, −3, 3) / 3
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...hostwork import split

FUNCTION_NAMES: tuple[str, ...] = ("sine", "bipolar_sigmoid", "gaussian", "clipped_identity")
NUM_FUNCTIONS = len(FUNCTION_NAMES)
# The batched renderer folds each function's input scale into the node's incoming
# weights (tanh(x / 2) = tanh(x · 0.5), clip(x, -3, 3) / 3 = clip(x / 3, -1, 1)),
# so that :func:`apply_torch` needs one pass per node for most functions.
INPUT_SCALE: tuple[float, ...] = (1.0, 0.5, 1.0, 1.0 / 3.0)
# The Gaussian of apply_torch is exp(-x²) where -x² > GAUSSIAN_FLOOR, else 0 (exp(-87) = 1.65e-38, just above
# the smallest normal float32). Subnormal results cost a CPU a microcode assist each: a Gaussian node far from 0
# made its layer 5-10x slower to draw, and the next layer's sums too. The values lost are below 1.65e-38, far
# under anything an image or a classifier input can show (pixels are quantised to 8 bits; a classifier
# subtracts its mean first).
GAUSSIAN_FLOOR = -87.0


SETTLE_VALUES = 1 << 18  # a throwaway batch big enough that every thread of a parallel elementwise op gets a share
_settled: list[bool] = []  # [True] once this process has run :func:`settle_cpu_functions`


def settle_cpu_functions() -> None:
    """Run each node function once on a throwaway CPU batch, once per process, before any real one.

    Seen with PyTorch 2.13 (its MKL build) on a 2-core x86 CPU: the first multi-threaded ``torch.sin`` of a
    process that had already run a network sometimes computed one thread's share of the batch to about 1e-4
    instead of 1e-7 (never with one thread); every later call was exact. The CPPN images of that first call
    differed (pixels by up to 6e-3), so the same ``fool ascend --from`` command gave other results from run to run.
    ``python scripts/cppn_first_call.py --runs 20``: the first drawing differed from the second in 8 of 20
    processes without this step, in 0 of 20 with it."""
    if _settled:
        return
    x = torch.linspace(-8.0, 8.0, SETTLE_VALUES)
    for function in range(NUM_FUNCTIONS):
        apply_torch(function, x.clone(), torch.empty_like(x))
    _settled.append(True)


def apply_torch(function: int, scaled: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write ``function``(x) into ``out``, given ``scaled`` = x · INPUT_SCALE[function] (may be overwritten)."""
    if function == 0:
        return torch.sin(scaled, out=out)
    if function == 1:
        return torch.tanh(scaled, out=out)
    if function == 2:  # exp(-x²); exp(-inf) = 0 where -x² <= GAUSSIAN_FLOOR: no subnormal is ever computed
        return torch.exp(F.threshold_(scaled.square_().neg_(), GAUSSIAN_FLOOR, float("-inf")), out=out)
    if function == 3:
        return torch.clamp(scaled, -1.0, 1.0, out=out)
    raise ValueError(f"unknown CPPN function id {function}")


# How a CPU draws CPPNs (the setting cppn_cpu_math): "numpy" runs sin, tanh and exp through numpy's SIMD loops
# (AVX-512, AVX2 or NEON; within 1.4 ulp of the exact value for sin and tanh, 2.3 for exp; PyTorch's within 0.6).
# Measured on a 2-core AVX-512 CPU with PyTorch 2.13 and numpy 2.4 (python scripts/cppn_math.py): tanh in a
# third to a ninth of PyTorch's CPU time, sin and the Gaussian in about the same; a MNIST population's drawing
# (bench_loop_phases.py 200 LABEL cppn) fell from 7.7-10.4 to 3.3-6.6 ms of CPU a generation (docs/benchmarks.md,
# issue 12's ninth pass). "torch" is PyTorch's own, as runs begun before the setting existed drew. GPUs always use
# PyTorch's.
_UFUNCS = {0: np.sin, 1: np.tanh, 2: np.exp}
# numpy's loops are single-threaded: calls of at least 2 x SPLIT_VALUES values are split into contiguous runs of at
# least SPLIT_VALUES, one per torch.get_num_threads() (at most), drawn at once (hostwork.split; numpy releases the GIL),
# for CPUs with many cores; smaller calls (every MNIST layer) run whole, where a hand-off to a thread would cost
# more than it saves. An element's value does not depend on where its run begins or ends (numpy's SIMD loops load
# partial vectors masked), so any split gives the same numbers bit for bit (tested).
SPLIT_VALUES = 1 << 20
# numpy's sin, tanh and exp run with subnormal floats flushed to 0 (inputs read as 0, results written as 0; x86's
# DAZ and FTZ, set for the call's thread only, where torch.set_flush_denormal can set them). A subnormal operand
# costs an x86 core a microcode assist of ~100 cycles: a sine of a tiny input (|x| < 2e-13, from a Gaussian node
# far from 0 upstream) makes one inside its polynomial: over the first 200 generations of a MNIST CPPN run, where
# such nodes abound, a generation took 2.0-2.5 ms of CPU to draw instead of 1.6-2.0, and the same later
# (python scripts/bench_subnormals.py). Only values below 1.2e-38 change: a pixel may be 0 instead of ~1e-39,
# which no classifier input shows (a classifier subtracts its mean first) nor any PNG (8 bits), so a CPPN run
# evolves the same genomes either way (tests/encodings/test_cppn_render.py; False: as before).
FLUSH_SUBNORMALS = True


def apply_ufunc(function: int, scaled: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """:func:`apply_torch` through numpy's SIMD loops, for float32 or float64 CPU tensors that need no grad:
    the same functions (the Gaussian's floor included), each value within 2.3 ulp of PyTorch's."""
    if function == 3:  # PyTorch's clamp is as fast as numpy's, and exact either way
        return torch.clamp(scaled, -1.0, 1.0, out=out)
    ufunc_into(function, scaled.numpy(), out.numpy())
    return out


def ufunc_into(function: int, x: np.ndarray, out: np.ndarray) -> None:
    """:func:`apply_ufunc` on numpy arrays (views of CPU tensors; ``x`` may be overwritten), for functions
    0-2: what a CPU's drawing calls per layer and function, without converting tensors each time. The
    Gaussian's square, sign and floor are exact, as PyTorch's are: the same bits."""
    ufunc = _UFUNCS.get(function)
    if ufunc is None:
        raise ValueError("clamp (function 3) runs as PyTorch's: call apply_ufunc" if function == 3
                         else f"unknown CPPN function id {function}")
    if x.size < 2 * SPLIT_VALUES or not (x.flags.c_contiguous and out.flags.c_contiguous):
        _flushed(function, ufunc, x, out)
        return
    x, out = x.reshape(-1), out.reshape(-1)  # views: both are contiguous
    split(lambda a, b: _flushed(function, ufunc, x[a:b], out[a:b]), x.size, x.size, SPLIT_VALUES)


def _flushed(function: int, ufunc: np.ufunc, x: np.ndarray, out: np.ndarray) -> None:
    """``out`` = function(x) (a view of ``x`` may be overwritten) with subnormal floats read and written as 0 in the
    calling thread (x86's DAZ and FTZ; see :data:`FLUSH_SUBNORMALS`), which is restored after."""
    flush = FLUSH_SUBNORMALS and not _flushing()
    if flush:
        torch.set_flush_denormal(True)
    try:
        if function == 2:  # exp(-x²), with exp(-inf) = 0 where -x² <= GAUSSIAN_FLOOR (see apply_torch)
            np.square(x, out=x)
            np.negative(x, out=x)
            np.copyto(x, -np.inf, where=x <= GAUSSIAN_FLOOR)  # as F.threshold_: NaN stays NaN
        ufunc(x, out=out)
    finally:
        if flush:
            torch.set_flush_denormal(False)


_TINY, _HALF = np.float32(np.finfo(np.float32).tiny), np.float32(0.5)  # the smallest normal float32, and 1/2


def _flushing() -> bool:
    """Whether this thread flushes subnormal results to 0 already (x86's FTZ, as :func:`_flushed` sets it): numpy's
    float32 scalar product is one SSE multiplication, which honours the mode."""
    return bool(_TINY * _HALF == 0)


def apply_differentiable(function: int, scaled: torch.Tensor) -> torch.Tensor:
    """``function``(x) as a new tensor, given ``scaled`` = x · INPUT_SCALE[function]: the autograd-safe
    twin of :func:`apply_torch` (nothing written in place)."""
    if function == 0:
        return torch.sin(scaled)
    if function == 1:
        return torch.tanh(scaled)
    if function == 2:
        return torch.exp(-scaled.square())
    if function == 3:
        return torch.clamp(scaled, -1.0, 1.0)
    raise ValueError(f"unknown CPPN function id {function}")


def apply_numpy(function: int, x: np.ndarray) -> np.ndarray:
    """``function``(x) on a numpy array (the reference renderer's path)."""
    if function == 0:
        return np.sin(x)
    if function == 1:
        with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x gives the limit -1
            return 2.0 / (1.0 + np.exp(-x)) - 1.0
    if function == 2:
        return np.exp(-x * x)
    if function == 3:
        return np.clip(x, -3.0, 3.0) / 3.0
    raise ValueError(f"unknown CPPN function id {function}")
