#!/usr/bin/env python
"""What flushing subnormal floats saves a CPPN drawing on the CPU, over a real MNIST CPPN run.

Each generation of a `fool evolve --encoding cppn` run (MNIST LeNet, MAP-Elites, seed 0) is drawn twice, numpy's
sin, tanh and Gaussian flushing subnormals (fooling.encodings.cppn.functions.FLUSH_SUBNORMALS, the default) and
not (as before), in alternating order; the run goes on with the flushed images, which are the same but for pixels
below 1.2e-38 drawn as 0 (checked every generation, and counted: no classifier input shows them, as a classifier
subtracts its mean first). A tiny input to a sine (from a Gaussian node far from 0 upstream) costs an x86 core a
microcode assist unless flushed; how many a generation has depends on the run's networks, so the figures are per
stretch of generations. Prints ms of CPU per drawing for each stretch, then one JSON line.

    python scripts/bench_subnormals.py [--generations 600] [--stretch 100] [--population 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from fooling.encodings.cppn import functions
from fooling.run import EvolutionRun
from fooling.settings.evolve import EvolveSettings

TINY = torch.finfo(torch.float32).tiny


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=600)
    ap.add_argument("--stretch", type=int, default=100, help="generations per reported figure")
    ap.add_argument("--population", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)  # as the run's host work on MNIST (one thread)
    stretches = []
    with tempfile.TemporaryDirectory() as tmp:
        run = EvolutionRun.start(EvolveSettings(model="mnist-lenet", encoding="cppn", population=args.population,
                                                generations=10**6, checkpoint_every=10**6, seed=0, device="cpu",
                                                out=f"{tmp}/r"))
        strategy, encoding = run.strategy, run.encoding
        spent = {True: 0.0, False: 0.0}
        pixels = 0  # subnormal pixels (below 1.2e-38) drawn as 0 instead
        for generation in range(args.generations):
            genomes = strategy.ask()
            if generation == 0:
                encoding.decode(genomes, run.device)  # untimed: numba loads (or compiles) the merging kernel
            images = {}
            for flush in ((True, False) if generation % 2 else (False, True)):
                functions.FLUSH_SUBNORMALS = flush
                start = time.process_time()
                images[flush] = encoding.decode(genomes, run.device)
                spent[flush] += time.process_time() - start
            functions.FLUSH_SUBNORMALS = True
            kept = torch.where(images[False].abs() < TINY, 0.0, images[False])  # its subnormal pixels as 0
            if not torch.equal(images[True], kept):
                raise SystemExit(f"generation {generation}: flushing changed more than subnormal pixels")
            pixels += int((kept != images[False]).sum())
            fitness, scores = run.objective.fitness_tensor(images[True])
            strategy.tell(genomes, fitness, scores)
            if (generation + 1) % args.stretch == 0:
                row = {"generations": f"{generation + 1 - args.stretch}-{generation}",
                       "flushed_ms": round(spent[True] / args.stretch * 1000, 3),
                       "kept_ms": round(spent[False] / args.stretch * 1000, 3)}
                print(row, flush=True)
                stretches.append(row)
                spent = {True: 0.0, False: 0.0}
        run.close()
    flushed, kept = sum(r["flushed_ms"] for r in stretches), sum(r["kept_ms"] for r in stretches)
    print(json.dumps({"population": args.population, "generations": args.generations, "stretches": stretches,
                      "flushed_ms_mean": round(flushed / len(stretches), 3),
                      "kept_ms_mean": round(kept / len(stretches), 3), "subnormal_pixels_flushed": pixels}))


if __name__ == "__main__":
    main()
