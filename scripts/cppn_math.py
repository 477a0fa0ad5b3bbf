#!/usr/bin/env python
"""Whose sin, tanh and exp should draw CPPNs on the CPU: PyTorch's or numpy's (the setting cppn_cpu_math).

For each node function, on a layer of values as a MNIST CPPN population has them (560 nodes x 784 pixels) and as
an ImageNet one at 224 px does (40 x 50,176), the CPU time and the wall time of fooling's two ways of applying it
(``apply_torch`` and ``apply_ufunc`` in fooling/encodings/cppn/functions.py), and each way's largest error in
float32 ulps against the float64 value. Ends with one JSON line.

    python scripts/cppn_math.py [--repeats 100]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from fooling.encodings.cppn import functions

LAYERS = {"mnist": (560, 784), "imagenet": (40, 224 * 224)}


def timed(apply, function: int, x: torch.Tensor, repeats: int) -> tuple[float, float]:
    """(CPU ms, wall ms) of one call, the median of ``repeats`` (inputs refreshed outside the clock)."""
    out, scratch = torch.empty_like(x), torch.empty_like(x)
    cpu, wall = [], []
    for _ in range(repeats + 3):
        scratch.copy_(x)  # the Gaussian writes its input
        c, w = time.process_time(), time.perf_counter()
        apply(function, scratch, out)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return float(np.median(cpu[3:]) * 1e3), float(np.median(wall[3:]) * 1e3)


def ulps(apply, function: int, x: torch.Tensor) -> float:
    """The largest error of ``apply`` on ``x`` in float32 ulps of the float64 result (pre-scaled input)."""
    got = apply(function, x.clone(), torch.empty_like(x)).double()
    exact = functions.apply_torch(function, x.double(), torch.empty_like(x, dtype=torch.float64))
    spacing = torch.from_numpy(np.spacing(np.abs(exact.float().numpy()))).double()
    return float(((got - exact).abs() / spacing).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(0)
    functions.settle_cpu_functions()
    rows = []
    for layer, shape in LAYERS.items():
        x = torch.randn(shape) * 3  # pre-activations of the size evolved CPPNs show
        for function, name in enumerate(functions.FUNCTION_NAMES):
            t_cpu, t_wall = timed(functions.apply_torch, function, x, args.repeats)
            n_cpu, n_wall = timed(functions.apply_ufunc, function, x, args.repeats)
            row = {"layer": layer, "function": name, "values": x.numel(),
                   "torch_cpu_ms": round(t_cpu, 3), "numpy_cpu_ms": round(n_cpu, 3),
                   "torch_wall_ms": round(t_wall, 3), "numpy_wall_ms": round(n_wall, 3),
                   "cpu_time_numpy_over_torch": round(n_cpu / t_cpu, 3) if t_cpu else None,
                   "torch_max_ulp": round(ulps(functions.apply_torch, function, x), 2),
                   "numpy_max_ulp": round(ulps(functions.apply_ufunc, function, x), 2)}
            rows.append(row)
            print(f"{layer:9s} {name:17s} torch {t_cpu:7.3f} ms CPU {t_wall:7.3f} wall ({row['torch_max_ulp']} ulp)"
                  f"   numpy {n_cpu:7.3f} ms CPU {n_wall:7.3f} wall ({row['numpy_max_ulp']} ulp)")
    print(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__, "numpy": np.__version__,
                      "rows": rows}))


if __name__ == "__main__":
    main()
