"""MAP-Elites' direct variation on the CPU: a generation's children made by PyTorch's per-block operators (the stream
``blocks-1``, what runs begun before the counter-based pass continue on) and by the compiled pass of
fooling.encodings.vary_cpu (``blocks-1+counters``, what new runs use), in milliseconds (fastest of --repeats), for
MNIST's 200 children of 28 x 28 and 64 ImageNet children at 256 px, with the paper's operators (SBX of half the
pairs, unscaled polynomial mutation at rate 0.1) and the default preset's (bounded, η 5).

Then the GA's (``--strategy ga``, DEAP's varOr at its default cxpb = mutpb = 0.5) generation of 200 MNIST children:
child by child in PyTorch (``blocks-1``: what a GPU ran first), each block at once (``blocks-1+dense``: what a GPU
ran next) and the whole generation at once (``blocks-1+whole``: what a GPU runs now), timed here on the CPU's device
path, and compiled (``blocks-1+counters``: what a CPU runs), in milliseconds, with the PyTorch ops each of the first
three dispatches (what a GPU launches, more or less: torch.profiler's events).

    python scripts/bench_vary.py [--repeats 7] [--threads 2]

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from fooling.encodings.direct import DirectEncoding
from fooling.search.blocks import Plan, block_size, realise

CASES = {  # name: (children, image shape)
    "mnist-200": (200, (1, 28, 28)),
    "imagenet-64": (64, (3, 256, 256)),
}
OPERATORS = {  # name: DirectEncoding's operator settings
    "paper": {"mutation": "unscaled", "mutation_eta": 15.0, "crossover_rate": 0.5},
    "default": {"mutation": "bounded", "mutation_eta": 5.0, "crossover_rate": 0.5},
}


def fastest(plan: Plan, encoding: DirectEncoding, parents: torch.Tensor, repeats: int) -> float:
    """Milliseconds of the fastest of ``repeats`` realisations of ``plan`` (parents gathered afresh each time)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        realise(plan, encoding, lambda rows: parents.index_select(0, torch.as_tensor(rows)))
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch's intra-op threads (default: as they are)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows: dict[str, dict[str, float]] = {}
    for case, (n, shape) in CASES.items():
        for operators, settings in OPERATORS.items():
            encoding = DirectEncoding(shape, mutation_rate=0.1, **settings)
            parents = torch.rand((n, encoding.num_genes), generator=torch.Generator().manual_seed(0))
            block = block_size(n)
            seeds = np.random.default_rng(1).integers(2**63 - 1, size=-(-n // block), dtype=np.int64)
            cells = np.arange(n, dtype=np.int64)
            timed = {}
            for stream, counters in (("torch", False), ("counters", True)):
                plan = Plan("vary", n, block, seeds, generation=1, parents=cells, counters=counters)
                realise(plan, encoding, lambda rows: parents.index_select(0, torch.as_tensor(rows)))  # compile, warm
                timed[stream] = fastest(plan, encoding, parents, args.repeats)
            name = f"{case}-{operators}"
            rows[name] = {"torch_ms": round(timed["torch"], 2), "counters_ms": round(timed["counters"], 2),
                          "speedup": round(timed["torch"] / timed["counters"], 2)}
            print(f"{name:>22}: torch {timed['torch']:8.2f} ms, counters {timed['counters']:7.2f} ms "
                  f"({timed['torch'] / timed['counters']:.1f}x)", flush=True)
    rows["mnist-200-ga"] = ga_row(args.repeats)
    print(json.dumps({"threads": torch.get_num_threads(), "repeats": args.repeats, "rows": rows}))


def ga_row(repeats: int) -> dict[str, float]:
    """A GA generation of 200 MNIST children on the four streams: ms each, and torch ops of the first three."""
    from fooling import hostwork

    n, encoding = 200, DirectEncoding((1, 28, 28), mutation_rate=0.1)
    population = torch.rand((n, encoding.num_genes), generator=torch.Generator().manual_seed(0))
    rng = np.random.default_rng(2)
    choice = rng.random(n)
    ops = np.where(choice < 0.5, 0, 1).astype(np.int8)  # cxpb = mutpb = 0.5: crossovers and mutants, no copies
    parents = np.stack([rng.integers(n, size=n), np.where(ops == 0, rng.integers(n, size=n), -1)], 1)
    block = block_size(n)
    seeds = np.random.default_rng(1).integers(2**63 - 1, size=-(-n // block), dtype=np.int64)
    row: dict[str, float] = {}
    for stream, fields in (("per_child", {}), ("dense", {"dense": True}), ("whole", {"whole": True}),
                           ("counters", {"counters": True})):
        plan = Plan("ga", n, block, seeds, generation=1, parents=parents, ops=ops, **fields)
        device_path = stream != "counters"  # as CUDA runs them (fooling.hostwork): no host bookkeeping
        saved = hostwork.HOST_DEVICES
        hostwork.HOST_DEVICES = () if device_path else saved
        try:
            realise(plan, encoding, lambda rows: population.index_select(0, torch.as_tensor(rows)))  # warm
            row[f"{stream}_ms"] = round(fastest(plan, encoding, population, repeats), 2)
            if stream != "counters":
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                    realise(plan, encoding, lambda rows: population.index_select(0, torch.as_tensor(rows)))
                row[f"{stream}_torch_ops"] = len(prof.events())
        finally:
            hostwork.HOST_DEVICES = saved
    print(f"{'mnist-200-ga':>22}: per child {row['per_child_ms']:.2f} ms ({row['per_child_torch_ops']} ops), dense "
          f"{row['dense_ms']:.2f} ms ({row['dense_torch_ops']} ops), whole {row['whole_ms']:.2f} ms "
          f"({row['whole_torch_ops']} ops), counters {row['counters_ms']:.2f} ms", flush=True)
    return row


if __name__ == "__main__":
    main()
