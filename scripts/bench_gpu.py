#!/usr/bin/env python
"""Device benchmark: one JSON line per configuration, on CPU or CUDA.

Each row times a real run (fooling.run.EvolutionRun, the loop `fool evolve` and fooling.api use, so
device-resident genomes and archives show up here once merged) against the classifier's forward pass alone:

  loop_evals_per_s     evaluations/s of whole generations (median of rounds alternating with the forward pass) (ask, vary, decode, score, tell; no checkpoints)
  forward_evals_per_s  evaluations/s of Objective.fitness on a population of random images of the run's size
  ratio                loop / forward (1.0: the forward pass is all a generation costs)
  host_ms_per_gen      ms per generation spent outside the forward pass (generation time - forward time)
  peak_mem_mb          CUDA: torch.cuda.max_memory_allocated during the row; CPU: the process's peak RSS so far
  chunk                images per forward pass (Classifier.chunk_images) at that population
  ratio_checkpoint_every_10_off / _on   (the last row: ImageNet direct again) loop / forward over 10 generations
                       and the checkpoint before them, written first (off) or while they run (on:
                       --checkpoint-background)

Configurations: MNIST direct population 200 and 1,000; MNIST 5 seeds x 200 in one pass (`fool evolve --seeds 0-4`:
fooling.run.multi.RunGroup with one objective call for all five); MNIST direct GA (`--strategy ga`) 200; ImageNet EfficientNet-Lite0 direct
population 400 at 256 px; CPPN population 400; and the projected wall time of the paper's ImageNet CPPN
budget (5,000 generations x 400) from the CPPN row's loop rate.

    python scripts/bench_gpu.py [--device auto|cpu|cuda] [--precisions fp32,bf16] [--compile]
                                [--quick] [--out FILE.jsonl] [--only mnist,imagenet] [--omp-passive]

--quick (a CPU smoke test): 2 rounds of 1 timed generation and ImageNet populations of 16 (rows say the population
they used). Rows are also appended to --out (default: $OUT/bench_gpu.jsonl when $OUT is set). OpenMP runs
as in `fool` (idle threads spin a while); --omp-passive makes them sleep at once (OMP_WAIT_POLICY=PASSIVE),
for a CPU shared with other work, at the price of waking them for every parallel host op.
"""

from __future__ import annotations

import os
import sys

if "--omp-passive" in sys.argv:  # before torch starts OpenMP; without it OpenMP runs as in `fool` (its default)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's fooling

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any, Optional  # noqa: E402

import torch  # noqa: E402

from fooling.allocator import keep_freed_memory  # noqa: E402
from fooling.classifiers import resolve_device  # noqa: E402
from fooling.errors import FoolingError, first_line  # noqa: E402
from fooling.run import EvolutionRun  # noqa: E402
from fooling.run.hooks import Hook  # noqa: E402
from fooling.settings.evolve import EvolveSettings  # noqa: E402

MNIST = "mnist-lenet"  # the default model (the paper's LeNet; its weights ship with fooling)
IMAGENET = "imagenet-efficientnet-lite0"
PAPER_CPPN_BUDGET = (5000, 400)  # generations x population of the paper's ImageNet CPPN runs


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def forward_rate(run: EvolutionRun, population: int, min_seconds: float) -> tuple[float, int]:
    """(evaluations/s of run.objective.fitness on ``population`` random images of the run's shape, chunk)."""
    images = torch.rand(population, *run.encoding.image_shape, device=run.device)
    run.objective.fitness(images)  # warm-up (and the chunk probe)
    sync(run.device)
    done, start = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - start < min_seconds:
        run.objective.fitness(images)
        done += population
    sync(run.device)
    return done / (time.perf_counter() - start), run.classifiers[0].chunk_images(images)


class Budget(Hook):
    """Stops a run() call after ``generations`` generations from ``first``, or at the first generation that ends
    ``seconds`` after the call began; one answer per generation, so every run of a group stops together."""

    def __init__(self, first: int, generations: int, seconds: float) -> None:
        self.last, self.seconds, self.start = first + generations - 1, seconds, time.perf_counter()
        self.decided: dict[int, bool] = {}

    def should_stop(self, run: Any, generation: int) -> bool:
        if generation not in self.decided:
            self.decided[generation] = (generation >= self.last
                                        or time.perf_counter() - self.start > self.seconds)
        return self.decided[generation]


def loop_rate(run: EvolutionRun, generations: int, max_seconds: float) -> tuple[float, int]:
    """(evaluations/s, generations timed) of up to ``generations`` generations (stopping after ``max_seconds``)
    in one run() call, timed by the run's own clock (``elapsed``: to the end of each generation's tell, which
    reads the fitness back from the device), so not the lock, hooks and summary that each call costs once:
    a run pays those once a night, and a call of a few MNIST generations on a GPU would be mostly them.
    Checkpoints are skipped (an instance attribute shadows the method)."""
    run.checkpoint = lambda rows, background=False: None
    try:
        evals, first, elapsed = run.evaluations, run.strategy.generation, run.elapsed
        sync(run.device)
        run.run(progress=False, hooks=[Budget(first, generations, max_seconds)])
        if run.interrupted:  # the run caught SIGTERM / Ctrl-C and returned early: a cut measurement would mislead
            sys.exit("bench_gpu.py: stopped by a signal before the measurement finished: no figures")
        sync(run.device)
        return (run.evaluations - evals) / (run.elapsed - elapsed), run.strategy.generation - first
    finally:
        del run.checkpoint


class GroupLoop:
    """A fooling.run.multi.RunGroup (one forward pass for all its runs) seen through loop_rate's eyes."""

    def __init__(self, group: Any) -> None:
        self.group = group
        self.strategy = group.runs[0].strategy
        self.device = group.runs[0].device

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "checkpoint":  # loop_rate skips checkpoints: every run's
            for run in self.group.runs:
                run.checkpoint = value
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name == "checkpoint":
            for run in self.group.runs:
                del run.checkpoint
        else:
            object.__delattr__(self, name)

    @property
    def evaluations(self) -> int:
        return self.group.evaluations

    @property
    def elapsed(self) -> float:
        """The latest of the runs' clocks (they step in lockstep, each timed to the end of its own tell)."""
        return max(run.elapsed for run in self.group.runs)

    @property
    def interrupted(self) -> bool:
        return self.group.interrupted

    def run(self, progress: bool, hooks: Any) -> None:
        self.group.run(progress=progress, hooks=hooks)


def checkpointed_interval(run: EvolutionRun, generations: int, background: bool) -> float:
    """Seconds of a checkpoint and the next ``generations`` generations, until that checkpoint is durable:
    written first (``background`` False) or while the generations run."""
    sync(run.device)
    start = time.perf_counter()
    run.checkpoint([], background=background)
    loop_rate(run, generations, float("inf"))
    run.wait_for_checkpoint()
    return time.perf_counter() - start


def measure(name: str, device: torch.device, precision: str, compile: bool, tmp: str, *, model: str,
            encoding: str, population: int, generations: int, max_seconds: float, forward_seconds: float,
            rounds: int, checkpoint_every: int = 0, **extra: Any) -> dict[str, Any]:
    """One row: build a run, warm it up (generation 0 and one more), time its loop and its forward pass;
    ``checkpoint_every`` N: then N generations after a checkpoint written first, and N after one written while
    they run (without and with --checkpoint-background), each timed until its checkpoint is durable."""
    settings = {k: extra[k] for k in extra if k in EvolveSettings.types()}  # e.g. seeds, once it exists
    row: dict[str, Any] = {"config": name, "device": str(device), "precision": precision, "compile": compile,
                           "model": model, "encoding": encoding, "population": population, **extra}
    config = EvolveSettings(model=model, encoding=encoding, population=population, generations=10**6,
                            checkpoint_every=10**6, device=str(device), precision=precision, compile=compile,
                            out=f"{tmp}/{name}-{precision}", **settings)
    started = time.perf_counter()
    seeds = len(settings.get("seeds") or [None])
    try:
        if seeds > 1:  # one batched population: all seeds' images in one forward pass per generation
            from fooling.run.multi import RunGroup

            group = RunGroup.start(config, one_pass=True)
            run, loop = group.runs[0], GroupLoop(group)
        else:
            run = EvolutionRun.start(config)
            loop = run
    except FoolingError as err:
        return {**row, "error": str(err)}
    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        loop_rate(loop, 2, float("inf"))  # the initial population, then one warm-up generation
        row["warmup_s"] = round(time.perf_counter() - started, 2)
        loops, forwards, timed = [], [], 0
        for _ in range(rounds):  # alternate, so that background load hits both alike; medians
            rate, done = loop_rate(loop, max(1, generations // rounds), max_seconds / rounds)
            loops.append(rate)
            timed += done
            rate, chunk = forward_rate(run, population * seeds, forward_seconds)
            forwards.append(rate)
        loop, forward = statistics.median(loops), statistics.median(forwards)
        row.update({
            "image_shape": list(run.encoding.image_shape), "classes": len(run.archive), "generations_timed": timed,
            "loop_evals_per_s": round(loop, 1), "forward_evals_per_s": round(forward, 1),
            "ratio": round(loop / forward, 3),
            "host_ms_per_gen": round(max(0.0, (population * seeds) * (1 / loop - 1 / forward)) * 1000, 1),
            "peak_mem_mb": round(peak_mb(device), 1), "chunk": chunk,
        })
        if checkpoint_every and seeds == 1:
            started = time.perf_counter()
            run.checkpoint([])  # the first: every elite (too big to copy: written before the run goes on)
            row["first_checkpoint_s"] = round(time.perf_counter() - started, 2)
            loop_rate(run, checkpoint_every, float("inf"))  # elites changed since, as before each timed one
            for mode in ("off", "on"):
                seconds = checkpointed_interval(run, checkpoint_every, background=mode == "on")
                row[f"ratio_checkpoint_every_{checkpoint_every}_{mode}"] = round(
                    checkpoint_every * population / seconds / forward, 3)
    finally:
        (group if seeds > 1 else run).close()
    return row


def emit(row: dict[str, Any], out: Optional[str]) -> None:
    line = json.dumps(row)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (auto: CUDA when present)")
    parser.add_argument("--precisions", default="fp32", help="comma-separated: fp32,bf16,fp16")
    parser.add_argument("--compile", action="store_true", help="torch.compile the classifier")
    parser.add_argument("--quick", action="store_true", help="CPU smoke test: 2 generations, ImageNet population 16")
    parser.add_argument("--only", default="mnist,imagenet", help="which groups of rows: mnist, imagenet")
    parser.add_argument("--generations", type=int, default=None, help="timed generations per row [10; quick 2]")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop timing a row's loop after this "
                                                                        "[60; quick 20]")
    parser.add_argument("--out", default=None, help="also append the JSON lines here [$OUT/bench_gpu.jsonl]")
    parser.add_argument("--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE (a shared CPU)")
    args = parser.parse_args()
    out = args.out or (os.path.join(os.environ["OUT"], "bench_gpu.jsonl") if os.environ.get("OUT") else None)
    keep_freed_memory()
    device = resolve_device(args.device)
    generations = args.generations or (2 if args.quick else 10)
    max_seconds = args.max_seconds or (20.0 if args.quick else 60.0)
    forward_seconds = 1.0 if args.quick else 3.0
    big = 16 if args.quick else 400
    groups = set(args.only.split(","))
    info = {"config": "machine", "device": str(device), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "quick": args.quick,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "load_average": round(os.getloadavg()[0], 2),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}
    emit(info, out)
    common = dict(generations=generations, max_seconds=max_seconds, forward_seconds=forward_seconds,
                  rounds=2 if args.quick else 3)
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        def row(name: str, precision: str, **kw: Any) -> dict[str, Any]:
            try:
                r = measure(name, device, precision, args.compile, tmp, **{**common, **kw})
            except Exception as err:  # noqa: BLE001 - out of memory, a cuDNN or compiler error: the next rows
                # still run (a GPU session may have one try), and the row says what went wrong
                r = {"config": name, "device": str(device), "precision": precision,
                     "error": f"{type(err).__name__}: {first_line(err)}"}
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            failed.extend([name] if "error" in r else [])
            emit(r, out)
            return r

        for precision in args.precisions.split(","):
            if "mnist" in groups:
                row("mnist-direct-200", precision, model=MNIST, encoding="direct", population=200)
                row("mnist-direct-1000", precision, model=MNIST, encoding="direct", population=1000)
                # 5 seeds x 200 children, one forward pass of 1,000 images per generation (fool evolve --seeds 0-4;
                # population is per seed, evaluations/s counts all five)
                row("mnist-direct-5seeds-200", precision, model=MNIST, encoding="direct", population=200,
                    seeds=[0, 1, 2, 3, 4])
            if "imagenet" in groups:
                row("imagenet-lite0-direct-400", precision, model=IMAGENET, encoding="direct", population=big,
                    generations=min(generations, 6))
                cppn = row("imagenet-lite0-cppn-400", precision, model=IMAGENET, encoding="cppn",
                           population=big, generations=min(generations, 6))
                gens, pop = PAPER_CPPN_BUDGET
                projection = {"config": "projection-paper-imagenet-cppn", "device": str(device),
                              "precision": precision, "generations": gens, "population": pop,
                              "evaluations": gens * pop, "from": cppn["config"]}
                if "loop_evals_per_s" in cppn:
                    seconds = gens * pop / cppn["loop_evals_per_s"]
                    projection.update({"loop_evals_per_s": cppn["loop_evals_per_s"],
                                       "projected_hours": round(seconds / 3600, 2),
                                       "note": "1000 classes; checkpoints not included"
                                               + ("; measured at population 16 (--quick)" if args.quick else "")})
                else:
                    projection["status"] = "not available: the CPPN row failed"
                emit(projection, out)
            if "mnist" in groups and precision == args.precisions.split(",")[0]:
                # the GA (fool evolve --strategy ga --target 0; on CUDA each block's children varied at once): after
                # the ImageNet rows, once (what it measures is the variation, the same in any precision)
                row("mnist-direct-ga-200", precision, model=MNIST, encoding="direct", population=200, strategy="ga",
                    target=0)
        if "imagenet" in groups:  # last: the slowest row (a first checkpoint of 2.4 GB), the least needed
            row("imagenet-lite0-direct-400-checkpoints", args.precisions.split(",")[0], model=IMAGENET,
                encoding="direct", population=big, generations=min(generations, 6), checkpoint_every=10)
    return 1 if failed else 0  # every row printed; non-zero if any failed


if __name__ == "__main__":
    sys.exit(main())
