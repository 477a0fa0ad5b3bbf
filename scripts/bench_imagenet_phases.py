"""Host work of an ImageNet generation (direct or CPPN), without the network: ask, decode and tell (with a stand-in
fitness that rises each generation, so elites keep changing) and one checkpoint, in milliseconds.

    python scripts/bench_imagenet_phases.py [--strategy map-elites|snes-elites] [--population 64]
                                            [--generations 12] [--clock wall|cpu] [--out /tmp/bench_phases]

--clock cpu counts this process's CPU time (all threads): steadier than wall time on a loaded machine.

Compare trees with PYTHONPATH (e.g. an older checkout). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

import fooling
from fooling.allocator import keep_freed_memory
from fooling.run.evolve import EvolutionRun
from fooling.settings.evolve import EvolveSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=64)
    ap.add_argument("--generations", type=int, default=12)
    ap.add_argument("--strategy", default="map-elites", help="map-elites (the paper's) or snes-elites (the default)")
    ap.add_argument("--encoding", default="direct", help="direct (256 px HLS) or cppn (224 px)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    keep_freed_memory()  # as `fool` does (fooling.allocator): no page faults for the 50 MB batches
    out = args.out or tempfile.mkdtemp(prefix="bench_phases_")
    cfg = EvolveSettings(model="imagenet-efficientnet-lite0", encoding=args.encoding, strategy=args.strategy,
                         population=args.population, generations=10_000, device="cpu", out=f"{out}/run",
                         checkpoint_every=10_000)
    run = EvolutionRun.start(cfg)
    run.begin(False)
    run.start_hooks()
    cells = len(run.classes)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    noise = torch.Generator().manual_seed(0)
    timed = {"ask": 0.0, "decode": 0.0, "tell": 0.0}
    warm = 2
    for gen in range(args.generations):
        t0 = clock()
        genomes = run.strategy.ask()
        t1 = clock()
        images = run.encoding.decode(genomes, run.device)
        t2 = clock()
        fitness = torch.rand(images.shape[0], cells, generator=noise, dtype=torch.float64) * (gen + 1) / args.generations
        run.accept(genomes, fitness, None)
        t3 = clock()
        if gen >= warm:
            for key, dt in zip(timed, (t1 - t0, t2 - t1, t3 - t2)):
                timed[key] += dt
    per = {k: 1000 * v / (args.generations - warm) for k, v in timed.items()}
    t0 = time.perf_counter()  # wall time: a checkpoint mostly waits for the disk
    run.checkpoint([])
    per["checkpoint"] = 1000 * (time.perf_counter() - t0)
    run.close()
    print(f"{fooling.__file__}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in per.items()))
    print(json.dumps({"tree": fooling.__file__, "encoding": args.encoding, "strategy": args.strategy, "population": args.population,
                      "clock": args.clock, "ms": per}))


if __name__ == "__main__":
    main()
