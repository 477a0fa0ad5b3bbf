#!/usr/bin/env python
"""Drawing evolved CPPNs with their constant nodes folded or not (``compile_population(fold=...)``).

A node fed by the bias alone (or by nothing, or by such nodes) holds one value at every pixel; folded, those nodes
are drawn at a few pixels and broadcast (:mod:`fooling.encodings.cppn.execute`). This evolves a MNIST CPPN run (the
default search, seed 0) for --generations generations, keeps the children of the next 5, and times drawing them
(compile and run, one thread, CPU time, the median of --rounds rounds alternating the two ways) at each --sizes
side, grey, as `render` draws them: how many rows are constant, and the CPU ms of a generation's drawing either
way. The images are checked to be the same bits. The last line is one JSON object.

    python scripts/bench_fold.py [--generations 1000] [--sizes 28,48,64,256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's fooling

import torch  # noqa: E402

import fooling  # noqa: E402
from fooling.encodings.cppn.compile import compile_population  # noqa: E402
from fooling.encodings.cppn.execute import run_program  # noqa: E402
from fooling.encodings.cppn.style import Style, coordinate_tensor  # noqa: E402
from fooling.run import EvolutionRun  # noqa: E402
from fooling.settings.evolve import EvolveSettings  # noqa: E402

CPU = torch.device("cpu")


def children(generations: int, tmp: str) -> list[tuple[list, object]]:
    """The children (and their packs) of the 5 generations after ``generations`` of a MNIST CPPN run."""
    run = EvolutionRun.start(EvolveSettings(model="mnist-lenet", encoding="cppn", population=200, seed=0,
                                            generations=10**6, checkpoint_every=10**6, device="cpu",
                                            out=f"{tmp}/run"))
    try:
        run.run(progress=False, stop_after=generations)
        kept = []
        for _ in range(5):
            genomes = run.strategy.ask()
            kept.append((genomes, run.encoding._packed(genomes)))
            run.strategy.tell(genomes, *run.objective.fitness_tensor(run.encoding.decode(genomes, run.device)))
        return kept
    finally:
        run.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=1000)
    parser.add_argument("--sizes", default="28,48,64,256", help="image sides to draw at, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        populations = children(args.generations, tmp)
    program = compile_population(*populations[0], shared=True, fold=True)
    row: dict = {"generation": args.generations, "rows": program.rows, "constant_rows": program.constants,
                 "sizes": {}}
    for side in [int(s) for s in args.sizes.split(",")]:
        style = Style("scaled", "grey", (side, side))
        coords = coordinate_tensor(style, style.size, CPU, torch.float32)
        times: dict[bool, list[float]] = {False: [], True: []}
        images: dict[bool, list[torch.Tensor]] = {False: [], True: []}
        for _ in range(args.rounds):
            for fold in (False, True):
                start = time.process_time()
                drawn = [run_program(compile_population(g, p, shared=True, fold=fold), coords, CPU, colour="grey")
                         for g, p in populations]
                times[fold].append((time.process_time() - start) / len(populations) * 1000)
                images[fold] = drawn
        same = all(torch.equal(a.view(torch.int32), b.view(torch.int32)) for a, b in zip(images[False], images[True]))
        plain, folded = statistics.median(times[False]), statistics.median(times[True])
        row["sizes"][side] = {"plain_ms": round(plain, 3), "folded_ms": round(folded, 3),
                              "speedup": round(plain / folded, 3), "same_bits": same}
        print(f"{side:4d} px: {plain:8.3f} ms plain, {folded:8.3f} ms folded ({plain / folded:.2f}x), "
              f"same bits: {same}", flush=True)
        if not same:
            print("bench_fold.py: folded drawing differs from plain drawing", file=sys.stderr)
            return 1
    row["package"] = os.path.dirname(fooling.__file__)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
