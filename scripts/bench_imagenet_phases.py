"""Host work of an ImageNet generation (direct or CPPN): ask, decode and tell, in milliseconds, without the network
(a stand-in fitness that rises each generation, so elites keep changing) or with it (--forward, as a run scores
them: caches come cold from the forward pass, whose time is reported too); then one checkpoint, ``--next-after`` more
generations (a checkpoint interval) and the next checkpoint (``checkpoint_next``: what an overnight run pays every
interval once its first checkpoint is written, here all of it before the run goes on; ``save_next``: its save alone
(the commit, where a tree reads the state first), without the elite PNGs; the stand-in fitness makes nearly every
class improve every generation, so this is the busy case: a late run changes far fewer rows, see
scripts/bench_checkpoint.py).

    python scripts/bench_imagenet_phases.py [--strategy map-elites|snes-elites] [--population 64]
                                            [--generations 12] [--next-after 10] [--clock wall|cpu]
                                            [--out /tmp/bench_phases] [--compile] [--forward]

--compile: as `fool evolve --compile` (the direct encoding's HLS decode fused by torch.compile; warmed up first).

--clock cpu counts this process's CPU time (all threads): steadier than wall time on a loaded machine.

Compare trees with PYTHONPATH (e.g. an older checkout). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
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
    ap.add_argument("--encoding", default="direct", help="direct (256 px HLS) or cppn (256 px)")
    ap.add_argument("--next-after", type=int, default=10, help="generations before the next checkpoint (0: none)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--out", default=None, help="where the run goes, kept after (default: a temporary folder)")
    ap.add_argument("--compile", action="store_true", help="as fool evolve --compile (fuses the HLS decode)")
    ap.add_argument("--forward", action="store_true",
                    help="score with the network, as a run does, instead of the stand-in fitness: the host phases "
                         "as the loop sees them (caches cold after each forward pass; elites change as a real run's)")
    args = ap.parse_args()
    if args.generations <= 2:  # the first 2 are warm-up, untimed
        ap.error("--generations must be at least 3 (the first 2 are warm-up, untimed)")
    keep_freed_memory()  # as `fool` does (fooling.allocator): no page faults for the 50 MB batches
    if args.out:
        measure(args, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="bench_phases_") as out:  # removed after: a run's blocks are 100s of MB
        measure(args, out)


def measure(args: argparse.Namespace, out: str) -> None:
    """Time the phases of a run in ``out``/run and print them (the last line: JSON)."""
    cfg = EvolveSettings(model="imagenet-efficientnet-lite0", encoding=args.encoding, strategy=args.strategy,
                         population=args.population, generations=10_000, device="cpu", out=f"{out}/run",
                         checkpoint_every=10_000, compile=args.compile)
    run = EvolutionRun.start(cfg)
    run.begin(False)
    run.start_hooks()
    cells = len(run.classes)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    noise = torch.Generator().manual_seed(0)
    timed = {"ask": 0.0, "decode": 0.0, "tell": 0.0, **({"forward": 0.0} if args.forward else {})}
    warm = 2

    def generation(gen: int) -> tuple[float, ...]:
        t0 = clock()
        with getattr(run, "bookkeeping", contextlib.nullcontext)():  # as run.propose(): the host work's threads
            genomes = run.strategy.ask()
            t1 = clock()
            images = run.encoding.decode(genomes, run.device)
        t2 = clock()
        if args.forward:
            fitness, scores = run.objective.fitness_tensor(images)
        else:
            rising = (gen + 1) / args.generations
            fitness = torch.rand(images.shape[0], cells, generator=noise, dtype=torch.float64) * rising
            scores = None
        t3 = clock()
        run.accept(genomes, fitness, scores)
        return t1 - t0, t2 - t1, clock() - t3, t3 - t2

    for gen in range(args.generations):
        spent = generation(gen)
        if gen >= warm:
            for key, dt in zip(timed, spent):
                timed[key] += dt
    per = {k: 1000 * v / (args.generations - warm) for k, v in timed.items()}
    t0 = time.perf_counter()  # wall time: a checkpoint mostly waits for the disk
    run.checkpoint([])
    per["checkpoint"] = 1000 * (time.perf_counter() - t0)
    counts: dict = {}
    if args.next_after:
        for gen in range(args.generations, args.generations + args.next_after):
            generation(gen)
        saved: list = []

        def timed(save):  # the save alone, and its counts where the tree returns them
            def timed_save(*a, **kw):
                t = time.perf_counter()
                saved.append((save(*a, **kw), time.perf_counter() - t))
                return saved[-1][0]
            return timed_save

        checkpoint = importlib.import_module("fooling.rundir.checkpoint")
        if hasattr(checkpoint, "PreparedCheckpoint"):  # trees that read the state, then write it (commit)
            checkpoint.PreparedCheckpoint.commit = timed(checkpoint.PreparedCheckpoint.commit)
        else:
            evolve = importlib.import_module("fooling.run.evolve")
            evolve.save_checkpoint = timed(evolve.save_checkpoint)
        t0 = time.perf_counter()
        run.checkpoint([])
        per["checkpoint_next"] = 1000 * (time.perf_counter() - t0)
        per["save_next"] = 1000 * saved[0][1]
        counts = saved[0][0] or {}
    run.close()
    print(f"{fooling.__file__}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in per.items()))
    print(json.dumps({"tree": fooling.__file__, "encoding": args.encoding, "strategy": args.strategy,
                      "population": args.population, "compile": args.compile, "forward": args.forward,
                      "clock": args.clock, "ms": per,
                      "next_counts": counts}))


if __name__ == "__main__":
    main()
