#!/usr/bin/env python
"""PyTorch ops a generation on the device path (what a CUDA run issues), counted on the CPU: one JSON line a
configuration, then one line with them all.

On a GPU each op the loop issues costs the host a few microseconds (dispatch and kernel launch) whatever its size,
and an op that must know a result on the host (an ``.item()``, ``nonzero``, ``unique``) waits for the GPU to catch
up. For a small network that overhead, not arithmetic, sets the loop's speed: LeNet's forward pass is a few dozen
kernels. No GPU has been lent to this project, so this script counts instead of timing: it takes the device path
on the CPU (:data:`fooling.hostwork.HOST_DEVICES` emptied, as the tests do; snes-elites' noise drawn at once for
the generation and every population scored in one forward pass, as on a GPU) and counts, with a
``TorchDispatchMode``, every op of ``--generations`` whole generations through ``EvolutionRun.run`` (or a
``RunGroup``'s, for several seeds in one pass):

  loop_kernels_per_gen     ops outside the forward pass that would launch a kernel (views, metadata and
                           allocations without a fill are left out)
  forward_kernels_per_gen  the same for the classifier's forward pass (Objective.fitness_tensor's probs)
  sync_ops_per_gen         ops that read a device result on the host: _local_scalar_dense (.item(), float(),
                           int(), bool()), nonzero, unique, masked_select, repeat_interleave without an output size,
                           indexing with a boolean mask (a nonzero inside)
  top                      the loop's most frequent kernels a generation

Not seen here: copies to the host by ``.cpu()``, ``.numpy()`` or ``.tolist()`` (no op at all on the CPU);
``tests/test_hostwork.py`` spies on those (one a generation: the archive's per-class best values). The CPPN rows
count PyTorch's functions (``--cppn-cpu-math torch``), as a GPU draws them; the CPU's numpy functions are no
PyTorch op.

    python scripts/bench_ops.py [--generations 10] [--only mnist-direct-200,...]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's fooling

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

import fooling  # noqa: E402
from fooling import hostwork  # noqa: E402
from fooling.search import noise  # noqa: E402
from fooling.run import EvolutionRun  # noqa: E402
from fooling.settings.evolve import EvolveSettings  # noqa: E402

# ops that launch no kernel: views and metadata, and allocations without a fill
NO_KERNEL = {
    "alias", "as_strided", "detach", "empty", "empty_like", "empty_strided", "expand", "lift_fresh", "narrow",
    "permute", "_reshape_alias", "select", "slice", "split", "split_with_sizes", "squeeze", "t", "transpose",
    "unbind", "unfold", "unsqueeze", "view", "_unsafe_view", "view_as_real", "resize_",
}
# ops whose result (or size) the host must wait for on a GPU
SYNC = {"_local_scalar_dense", "nonzero", "_unique2", "unique_dim", "unique_consecutive", "masked_select"}

CONFIGS: dict[str, dict[str, Any]] = {
    "mnist-direct-200": dict(population=200),  # the default search (snes-elites)
    "mnist-direct-200-paper": dict(population=200, preset="paper"),  # MAP-Elites, the paper's operators
    "mnist-direct-400-paper": dict(population=400, preset="paper"),
    "mnist-5-seeds-200": dict(population=200, seeds=[0, 1, 2, 3, 4]),
    "mnist-direct-ga-200": dict(population=200, strategy="ga", target=3),
    "mnist-cppn-200": dict(population=200, encoding="cppn", cppn_cpu_math="torch"),
    "mnist-cppn-ga-200": dict(population=200, encoding="cppn", strategy="ga", target=3, cppn_cpu_math="torch"),
}


def name_of(func: Any) -> str:
    """``aten.index_select.default`` -> ``index_select``."""
    return str(func).split(".")[1]


class OpCounter(TorchDispatchMode):
    """Counts the ops dispatched inside it, into :attr:`counts` (which the caller may swap)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        name = name_of(func)
        if name in ("index", "index_put", "index_put_") and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else ())
                if i is not None):
            self.counts["sync:" + name + " (boolean mask)"] += 1
        elif name == "repeat_interleave" and kwargs is not None and kwargs.get("output_size") is None:
            self.counts["sync:" + name] += 1
        elif name in SYNC:
            self.counts["sync:" + name] += 1
        if name not in NO_KERNEL:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


def count(name: str, generations: int, tmp: str, **extra: Any) -> dict[str, Any]:
    """One row: ``generations`` generations of configuration ``name`` after two warm-up ones."""
    seeds = extra.pop("seeds", None)
    config = EvolveSettings(model="mnist-lenet", generations=10**6, checkpoint_every=10**6, device="cpu",
                            out=f"{tmp}/{name}", seeds=seeds, **extra)
    if seeds:
        from fooling.run.multi import RunGroup

        runner: Any = RunGroup.start(config, one_pass=True)
        runs = runner.runs
    else:
        runner = EvolutionRun.start(config)
        runs = [runner]
    counter, forward = OpCounter(), collections.Counter()

    def counted(probs: Any) -> Any:
        def probs_counted(*args: Any, **kwargs: Any) -> Any:
            loop, counter.counts = counter.counts, forward  # the forward pass's ops go to their own counts
            try:
                return probs(*args, **kwargs)
            finally:
                counter.counts = loop
        return probs_counted

    try:
        runner.run(progress=False, stop_after=1)  # generation 0 and one more: nothing compiles or warms later
        for run in runs:
            run.checkpoint = lambda rows, background=False: None  # an instance attribute shadows the method
            for classifier in run.classifiers:
                classifier.probs = counted(classifier.probs)
                classifier.chunk_size = 1 << 30  # one chunk, as a GPU takes a population that fits
        with counter:
            runner.run(progress=False, stop_after=runs[0].strategy.generation + generations - 1)
    finally:
        runner.close()
    loop = counter.counts
    syncs = {k[5:]: round(v / generations, 1) for k, v in sorted(loop.items()) if k.startswith("sync:")}
    kernels = {k: v for k, v in loop.items() if not k.startswith("sync:")}
    return {"config": name, "runs": len(runs), "population": config.population,
            "strategy": runs[0].strategy.__class__.__name__, "encoding": runs[0].config.encoding,
            "loop_kernels_per_gen": round(sum(kernels.values()) / generations, 1),
            "forward_kernels_per_gen": round(sum(v for k, v in forward.items() if not k.startswith("sync:"))
                                             / generations, 1),
            "sync_ops_per_gen": round(sum(syncs.values()), 1), "syncs": syncs,
            "top": {k: round(v / generations, 1) for k, v in collections.Counter(kernels).most_common(8)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=10, help="generations counted a configuration")
    parser.add_argument("--only", default="", help="comma-separated configurations (default: all): "
                        + ", ".join(CONFIGS))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; choose from {', '.join(CONFIGS)}")
    if args.generations < 1:
        parser.error("--generations must be at least 1")
    hostwork.HOST_DEVICES = ()  # the device path, what CUDA runs, on the CPU
    noise.ONE_DRAW_DEVICES = (*noise.ONE_DRAW_DEVICES, "cpu")  # a generation's noise in one draw, as on CUDA
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows.append(count(name, args.generations, tmp, **CONFIGS[name]))
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"rows": {r["config"]: {k: r[k] for k in ("loop_kernels_per_gen", "forward_kernels_per_gen",
                                                               "sync_ops_per_gen")} for r in rows},
                      "torch": torch.__version__, "package": os.path.dirname(fooling.__file__)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
