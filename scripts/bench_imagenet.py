#!/usr/bin/env python
"""ImageNet throughput and memory: EfficientNet-Lite0 forward rate, the evolve loop's rate against
it, and the resident memory of a 1000-class direct-encoding run.

  forward   images/s of classifier.probs() on random images of the evolved size, per batch size
  loop      evaluations/s of whole MAP-Elites generations (ask, vary, decode, score, tell) over all
            1000 classes, for the direct (256 px HLS) and CPPN encodings; ratio = loop / forward at
            a batch of the population size (goal: >= 0.9). Loop and forward alternate in rounds
            so background load hits both alike. ratio+ckpt (one checkpoint every 10 generations,
            --checkpoint-seconds 0): a checkpoint and the 10 generations after it, timed together to the
            moment that checkpoint is durable (written before they run, or while they do with
            --checkpoint-background); it follows the first checkpoint (which
            writes every elite) by 10 generations, so it rewrites the elites that changed in 10
            generations early in a run, as a real run's would. ckpt s: what that adds to 10 generations
            at the loop's rate (hand-off s: the part the loop waits for).
            With the defaults (every 10 generations, at least --checkpoint-seconds 60 apart)
            checkpoints are as many generations apart as 60 s of the measured loop takes; one such
            checkpoint is timed the same way after that many more generations and its cost folded into
            that interval (ratio_with_default_checkpoints).
  memory    peak resident set size (ru_maxrss) of a child process running the 1000-class direct
            run with population 200 for a few generations, checkpoints included (goal: < 4 GB).

The last line is one JSON object. It runs OpenMP as `fool` does (the default wait policy: threads
spin a while before they sleep). --omp-passive sets OMP_WAIT_POLICY=PASSIVE instead, for a machine
under heavy CPU contention, where spinning threads slow small ops many times over; it is not what a
run gets: every parallel op then wakes sleeping threads, which on 2 cores doubles the time of the
loop's cache-sized host ops (HLS decode 37 -> 74 ms a generation of 64) and slows the forward pass
too. Like `fool`, it keeps freed memory in the process (fooling.allocator:
glibc's mmap/trim thresholds raised), which spares the page faults of re-allocating big tensors;
--system-malloc measures with glibc's defaults instead.

    python scripts/bench_imagenet.py [--batches 1,8,32,64] [--population 64] [--rounds 3]
                                     [--encodings direct,cppn] [--memory-generations 3] [--device cpu]
                                    [--strategy snes-elites|map-elites]   (the direct loop's; default: the preset's)
                                     [--system-malloc]   (glibc defaults: freed big blocks go back to the OS)
                                     [--omp-passive]     (OMP_WAIT_POLICY=PASSIVE: not what `fool` does)
                                     [--compile]         (as fool evolve --compile)
                                     [--checkpoint-background]   (as fool evolve's)
"""

from __future__ import annotations

import os
import sys

if "--omp-passive" in sys.argv:  # before torch starts OpenMP
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fooling.allocator import keep_freed_memory  # noqa: E402
from fooling.classifiers import Classifier, load_classifier, resolve_device  # noqa: E402
from fooling.settings.evolve import EvolveSettings  # noqa: E402
from fooling.run import EvolutionRun  # noqa: E402

MODEL = "imagenet-efficientnet-lite0"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def forward_rate(classifier: Classifier, batch: int, shape: tuple[int, int, int], min_seconds: float) -> float:
    """images/s of classifier.probs on (batch, *shape) random images, after one warm-up call."""
    images = torch.rand(batch, *shape, device=classifier.device)
    classifier.probs(images)
    sync(classifier.device)
    done, start = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - start < min_seconds:
        classifier.probs(images)
        done += batch
    sync(classifier.device)
    return done / (time.perf_counter() - start)


def loop_rate(run: EvolutionRun, generations: int) -> float:
    """Evaluations/s of the next ``generations`` generations of ``run``, with no checkpoint: the one that
    ends each ``run()`` call is skipped (its metrics rows are dropped), so the next real checkpoint sees
    every elite that changed since the last one, as in a run (see :func:`checkpoint_seconds`)."""
    evals, elapsed = run.evaluations, run.elapsed
    run.checkpoint = lambda rows, background=False: None  # an instance attribute shadows the method
    try:
        run.run(progress=False, stop_after=run.strategy.generation + generations - 1)
    finally:
        del run.checkpoint
    if run.interrupted:  # the run caught SIGTERM / Ctrl-C and returned early: a cut measurement would mislead
        sys.exit("bench_imagenet.py: stopped by a signal before the measurement finished: no figures")
    return (run.evaluations - evals) / (run.elapsed - elapsed)


def checkpoint_seconds(run: EvolutionRun) -> float:
    """Seconds one checkpoint takes written whole before the run goes on (state arrays, the elite PNGs that
    changed since the last one, summary)."""
    start = time.perf_counter()
    run.checkpoint([])
    return time.perf_counter() - start


def checkpointed_interval(run: EvolutionRun, generations: int) -> tuple[float, float]:
    """(seconds, hand-off seconds) of a checkpoint and the next ``generations`` generations, until that
    checkpoint is durable; when the run writes checkpoints in the background (--checkpoint-background), the
    hand-off is the part the loop waits for, else the whole checkpoint."""
    background = getattr(run.config, "checkpoint_background", False)  # as the run's are (older trees: never)
    start = time.perf_counter()
    run.checkpoint([], background=True) if background else run.checkpoint([])
    handed = time.perf_counter() - start
    loop_rate(run, generations)
    if background:
        run.wait_for_checkpoint()
    return time.perf_counter() - start, handed


def rss_mb() -> float:
    """Current resident set size of this process in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_child(generations: int, population: int, device: str) -> None:
    """Run the 1000-class direct run; print one JSON line with RSS after each generation and the peak."""
    with tempfile.TemporaryDirectory() as tmp:
        config = EvolveSettings(model=MODEL, encoding="direct", population=population, generations=generations,
                                checkpoint_every=10, device=device, out=f"{tmp}/run")
        run = EvolutionRun.start(config)
        after = []
        start = time.perf_counter()
        for g in range(generations + 1):
            run.run(progress=False, stop_after=g)
            after.append(round(rss_mb(), 1))
        keys = run.archive.elite_keys()
        unique = int(np.unique(keys[keys >= 0]).size)
        print(json.dumps({"rss_mb_after_generation": after,
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                          "unique_elites": unique, "seconds": round(time.perf_counter() - start, 1)}))


def measure_memory(generations: int, population: int, device: str, system_malloc: bool) -> dict:
    out = subprocess.run([sys.executable, __file__, "--memory-child", "--memory-generations", str(generations),
                          "--memory-population", str(population), "--device", device]
                         + (["--system-malloc"] if system_malloc else []),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,8,32,64", help="batch sizes for the forward-rate table")
    parser.add_argument("--population", type=int, default=64, help="population of the timed evolve loops")
    parser.add_argument("--rounds", type=int, default=3, help="alternating forward/loop rounds per encoding")
    parser.add_argument("--generations", type=int, default=2, help="generations per timed loop round")
    parser.add_argument("--encodings", default="direct,cppn", help="encodings to time the loop of ('' for none)")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum time per forward measurement")
    parser.add_argument("--memory-generations", type=int, default=3, help="0: skip the memory measurement")
    parser.add_argument("--memory-population", type=int, default=200)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--strategy", default=None, help="of the direct loop: snes-elites (the default preset's) or "
                                                         "map-elites (the paper's); CPPN runs keep their preset's")
    parser.add_argument("--checkpoint-background", action="store_true",
                        help="as fool evolve's: checkpoints written while the loop goes on")
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's thresholds alone (fool itself raises them: fooling.allocator)")
    parser.add_argument("--compile", action="store_true",
                        help="as fool evolve --compile: torch.compile the classifier and the HLS decode (the first "
                             "batches of each size compile, ~30 s on 2 cores: warm-up, untimed)")
    parser.add_argument("--omp-passive", action="store_true",
                        help="OMP_WAIT_POLICY=PASSIVE (for a contended machine; `fool` leaves OpenMP's default)")
    args = parser.parse_args()
    kept = False if args.system_malloc else keep_freed_memory()
    if args.memory_child:
        memory_child(args.memory_generations, args.memory_population, args.device)
        return

    device = resolve_device(args.device)
    classifier = load_classifier(MODEL, device).configure(compile=args.compile)
    print(f"{MODEL} on {device}, torch threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}, freed memory kept: {kept}, "
          f"load average {os.getloadavg()[0]:.1f}")
    forward = {}
    print(f"{'batch':>6} {'images/s (256 px in)':>22} {'images/s (224 px in)':>22}")
    for batch in [int(b) for b in args.batches.split(",")]:
        at256 = forward_rate(classifier, batch, (3, 256, 256), args.seconds)
        at224 = forward_rate(classifier, batch, (3, 224, 224), args.seconds)
        forward[batch] = {"256": round(at256, 2), "224": round(at224, 2)}
        print(f"{batch:>6} {at256:>22.2f} {at224:>22.2f}")

    loops = {}
    print(f"\n{'encoding':>8} {'image':>12} {'forward/s':>10} {'loop/s':>10} {'ratio':>7} {'ckpt s':>9} "
          f"{'ratio+ckpt':>9}  (population {args.population}, 1000 classes; ratio+ckpt: one checkpoint "
          f"every {EvolveSettings.checkpoint_every} generations)")
    with tempfile.TemporaryDirectory() as tmp:
        for encoding in [e for e in args.encodings.split(",") if e]:
            config = EvolveSettings(model=MODEL, encoding=encoding, population=args.population,
                                    strategy=args.strategy if encoding == "direct" else None,
                                    generations=10**6, checkpoint_every=10**6, device=str(device),
                                    out=f"{tmp}/{encoding}", compile=args.compile,
                                    **({"checkpoint_background": True} if args.checkpoint_background else {}))
            run = EvolutionRun.start(config)
            shape = run.encoding.image_shape
            loop_rate(run, 2)  # the initial population and a warm-up generation
            full = checkpoint_seconds(run)  # the first checkpoint writes every elite
            written = run.archive.fitness.copy()
            fwd, loop = [], []
            for _ in range(args.rounds):
                fwd.append(forward_rate(run.classifiers[0], args.population, shape, args.seconds))
                loop.append(loop_rate(run, args.generations))
            f, lp = statistics.median(fwd), statistics.median(loop)
            every = EvolveSettings.checkpoint_every
            if every > args.rounds * args.generations:  # untimed: a whole checkpoint interval since the last one
                loop_rate(run, every - args.rounds * args.generations)
            changed = int((run.archive.fitness != written).sum())
            written = run.archive.fitness.copy()
            interval, handed = checkpointed_interval(run, every)
            with_ckpt = every * args.population / interval
            ckpt = interval - every * args.population / lp  # what the checkpoint adds to `every` generations
            # the defaults: every `every` generations at least checkpoint_seconds apart; that interval's
            # checkpoint timed after as many generations since the last one, its cost folded into the interval
            apart = every * math.ceil(EvolveSettings.checkpoint_seconds / (every * args.population / lp))
            if apart > every:
                loop_rate(run, apart - every)
                changed_apart = int((run.archive.fitness != written).sum())
                interval_apart, handed_apart = checkpointed_interval(run, every)
                ckpt_apart = interval_apart - every * args.population / lp
            else:
                changed_apart, ckpt_apart, handed_apart = changed, ckpt, handed
            with_default = apart * args.population / (apart * args.population / lp + ckpt_apart)
            loops[encoding] = {"strategy": run.config.strategy, "image_shape": list(shape),
                               "forward_evals_per_s": round(f, 2),
                               "loop_evals_per_s": round(lp, 2), "ratio": round(lp / f, 3),
                               "checkpoint_s": round(ckpt, 2), "checkpoint_handoff_s": round(handed, 2),
                               "checkpoint_changed_elites": changed,
                               "first_checkpoint_s": round(full, 2), "ratio_with_checkpoints": round(with_ckpt / f, 3),
                               "default_checkpoint_generations": apart, "default_checkpoint_s": round(ckpt_apart, 2),
                               "default_checkpoint_handoff_s": round(handed_apart, 2),
                               "ratio_with_default_checkpoints": round(with_default / f, 3)}
            print(f"{encoding:>8} {'x'.join(map(str, shape)):>12} {f:>10.2f} {lp:>10.2f} {lp / f:>7.3f} "
                  f"{ckpt:>9.2f} {with_ckpt / f:>9.3f}")
            print(f"{'':>8} checkpoint after {max(every, args.rounds * args.generations)} generations: "
                  f"{changed} of {len(run.archive)} elites had changed ({handed:.2f} s before the loop went on); "
                  f"the first checkpoint (every elite) took {full:.2f} s")
            print(f"{'':>8} with the default --checkpoint-seconds {EvolveSettings.checkpoint_seconds:g}: one every "
                  f"{apart} generations ({changed_apart} elites changed, {ckpt_apart:.2f} s): ratio+ckpt "
                  f"{with_default / f:.3f}")

    memory = None
    if args.memory_generations > 0:
        memory = measure_memory(args.memory_generations, args.memory_population, str(device), args.system_malloc)
        print(f"\nmemory, 1000-class direct run, population {args.memory_population}, "
              f"{args.memory_generations} generations: peak RSS {memory['peak_rss_mb']:.0f} MB "
              f"(after each generation: {memory['rss_mb_after_generation']} MB; "
              f"{memory['unique_elites']} distinct elite genomes)")
    print(json.dumps({"model": MODEL, "device": str(device), "threads": torch.get_num_threads(),
                      "forward_images_per_s": forward, "loops": loops, "memory": memory,
                      "population": args.population, "freed_memory_kept": kept,
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"), "compile": args.compile,
                      "load_average": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
