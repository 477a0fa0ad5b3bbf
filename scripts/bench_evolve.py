#!/usr/bin/env python
"""Throughput of the evolve loop against the classifier's raw forward pass.

For each population size it measures, in one process and on one device:
  forward   evaluations/s of classifier.probs() alone on a batch of that size
  loop      evaluations/s of the whole MAP-Elites generation (ask, vary, decode, score, tell)
  naive     DEAP's stock per-gene mutPolynomialBounded on list individuals and one forward
            pass per individual (how DEAP's own examples evaluate), same MAP-Elites logic
Loop and forward are timed in alternating rounds so background load hits both alike.
Each population prints one JSON line (loop and forward evals/s, their ratio, the device, the
fooling package measured); the last line is the JSON object for the population of --report
(200 by default), as before. --no-naive skips the slow DEAP baseline.

    python scripts/bench_evolve.py [--model mnist-lenet] [--populations 200,1000] [--preset default|paper]
                                   [--strategy snes-elites|map-elites|ga] [--device auto] [--omp-passive]

cpu_ratio is the same ratio per CPU second of this process (time.process_time), which other
processes' load disturbs far less than wall-clock time on a shared machine (on a GPU it mostly
measures the host's share and says little).

To compare two versions of the package on a loaded machine, alternate processes, e.g.
    for i in 1 2 3; do for tree in OLD NEW; do
        PYTHONPATH=$tree python scripts/bench_evolve.py --no-naive --label $tree; done; done
"""

from __future__ import annotations

import os
import sys

# OpenMP runs as in `fool` (its default wait policy). --omp-passive makes idle threads sleep instead of spinning
# (before torch starts OpenMP), as the tests do: on a heavily loaded machine spinning threads steal the cores
# every small op needs, but every parallel op then wakes the threads again, which is not what a run pays.
if "--omp-passive" in sys.argv:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from deap import tools

import fooling
from fooling.classifiers import resolve_device
from fooling.settings.evolve import EvolveSettings
from fooling.run import EvolutionRun


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def forward_rate(classifier, population: int, shape, repeats: int) -> tuple[float, float]:
    """(wall-clock, CPU-time) evaluations/s of the bare forward pass."""
    images = torch.rand(population, *shape, device=classifier.device)
    classifier.probs(images)
    sync(classifier.device)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        classifier.probs(images)
    sync(classifier.device)
    n = population * repeats
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def loop_rate(run: EvolutionRun, generations: int) -> tuple[float, float]:
    """(wall-clock, CPU-time) evaluations/s of whole generations, as bench_imagenet.py times them: wall time by the
    run's own clock (first to last generation of the call: not the lock, hooks' start and summary that each
    ``run()`` call costs once), and without the checkpoint that ends each call (skipped, as there)."""
    start_evals, elapsed, cpu = run.evaluations, run.elapsed, time.process_time()
    run.checkpoint = lambda rows, background=False: None  # an instance attribute shadows the method
    try:
        run.run(progress=False, stop_after=run.strategy.generation + generations - 1)
    finally:
        del run.checkpoint
    if run.interrupted:  # the run caught SIGTERM / Ctrl-C and returned early: a cut measurement would mislead
        sys.exit("bench_evolve.py: stopped by a signal before the measurement finished: no figures")
    sync(run.device)
    n = run.evaluations - start_evals
    return n / (run.elapsed - elapsed), n / (time.process_time() - cpu)


def naive_rate(classifier, population: int, shape, generations: int) -> float:
    """MAP-Elites with DEAP's per-gene operator and one forward pass per individual."""
    random.seed(0)
    genes = int(np.prod(shape))
    archive = [None] * classifier.num_classes
    fitness = np.full(classifier.num_classes, -np.inf)
    evals, start = 0, time.perf_counter()
    for g in range(generations + 1):
        if g == 0:
            children = [[random.random() for _ in range(genes)] for _ in range(population)]
        else:
            occupied = np.flatnonzero(np.isfinite(fitness))
            children = []
            for _ in range(population):
                child = list(archive[random.choice(occupied)])
                tools.mutPolynomialBounded(child, eta=15.0, low=0.0, up=1.0, indpb=0.1)
                children.append(child)
        for child in children:
            image = torch.tensor(child, dtype=torch.float32, device=classifier.device).view(1, *shape)
            probs = classifier.probs(image)[0].cpu().numpy()
            better = probs > fitness
            fitness[better] = probs[better]
            for k in np.flatnonzero(better):
                archive[k] = child
        evals += len(children)
    sync(classifier.device)
    return evals / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist-lenet")
    parser.add_argument("--encoding", default="direct")
    parser.add_argument("--preset", default="default", help="the operator preset: default (snes-elites) or paper "
                        "(the 2015 MAP-Elites)")
    parser.add_argument("--strategy", default=None, help="the search, if not the preset's: snes-elites, map-elites "
                        "or ga (which fools class 0)")
    parser.add_argument("--populations", default="200,1000")
    parser.add_argument("--report", type=int, default=200, help="population whose figures go in the JSON line")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--generations", type=int, default=20, help="generations per timed loop round")
    parser.add_argument("--naive-generations", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-naive", action="store_true", help="skip the DEAP per-gene, per-image baseline")
    parser.add_argument("--label", default="", help="a tag copied into each JSON line")
    parser.add_argument("--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE (a loaded machine)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    print(f"model {args.model}, encoding {args.encoding}, device {device}, torch threads {torch.get_num_threads()}")
    print(f"{'population':>10} {'forward/s':>12} {'loop/s':>12} {'ratio':>7} {'naive/s':>10} {'loop/naive':>10}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for population in [int(p) for p in args.populations.split(",")]:
            config = EvolveSettings(model=args.model, encoding=args.encoding, preset=args.preset,
                                    strategy=args.strategy, target=0 if args.strategy == "ga" else None,
                                    population=population, generations=10**6, checkpoint_every=10**6,
                                    device=str(device), out=f"{tmp}/run{population}")
            run = EvolutionRun.start(config)
            shape = run.encoding.image_shape
            loop_rate(run, 3)  # warm-up, and the initial population
            fwd, loop, fwd_cpu, loop_cpu = [], [], [], []
            for _ in range(args.rounds):
                wall, cpu = forward_rate(run.classifiers[0], population, shape, args.generations)
                fwd.append(wall)
                fwd_cpu.append(cpu)
                wall, cpu = loop_rate(run, args.generations)
                loop.append(wall)
                loop_cpu.append(cpu)
            run.close()
            naive = float("nan") if args.no_naive else naive_rate(run.classifiers[0], population, shape,
                                                                   args.naive_generations)
            f, l = statistics.median(fwd), statistics.median(loop)
            results[population] = {"loop_evals_per_s": round(l, 1), "forward_evals_per_s": round(f, 1),
                                   "ratio": round(l / f, 3), "naive_evals_per_s": None if args.no_naive
                                   else round(naive, 1),
                                   # the same per CPU second of this process: much less sensitive to other load
                                   "cpu_ratio": round(statistics.median(loop_cpu) / statistics.median(fwd_cpu), 3)}
            print(f"{population:>10} {f:>12,.0f} {l:>12,.0f} {l / f:>7.3f} {naive:>10,.0f} {l / naive:>10.1f}")
            print(json.dumps({**results[population], "population": population, "model": args.model,
                              "encoding": args.encoding, "preset": args.preset, "strategy": args.strategy,
                              "device": str(device), "rounds": args.rounds, "generations_per_round": args.generations, "label": args.label,
                              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
                              "package": str(Path(fooling.__file__).parent)}), flush=True)
    report = results.get(args.report) or next(iter(results.values()))
    print(json.dumps({**report, "population": args.report, "model": args.model, "encoding": args.encoding,
                      "preset": args.preset, "strategy": args.strategy, "device": str(device),
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}))


if __name__ == "__main__":
    main()
