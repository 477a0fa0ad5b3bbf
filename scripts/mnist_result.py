#!/usr/bin/env python
"""The paper's MNIST result, measured: evaluations until all ten digits pass 99 % and 99.99 %.

For every strategy x preset x network x encoding asked for, runs ``fool evolve`` for several seeds
(each stopped by ``--until``, 0.9999 by default, as soon as all ten classes pass it) and prints per
seed, then per configuration over the seeds: the evaluations until 10/10 classes passed 99 % and
99.99 % (median, min, max, and how many seeds got there within the budget), the wall time, and how
recognisable the final elites are as their digits (fooling, not drawing: the share a 5-nearest-
neighbour vote over the 5k real digits gives the target, and mnist-digitcnn's mean confidence in
it; real digits score about 0.91 and 0.997, noise about 0.1 and 0.1). The last line is one JSON
object.

Evaluations are counted from metrics.csv (every image scored up to and including the generation
at which the last class passed), so strategies with different batch sizes compare fairly.

    python scripts/mnist_result.py --preset paper default --seeds 0-4
    python scripts/mnist_result.py --model mnist-lenet-robust --seeds 0-4
    python scripts/mnist_result.py --encoding cppn --preset paper default --seeds 0-2
    python scripts/mnist_result.py --strategy map-elites --preset default --set mutation_rate=0.02
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Optional

from fooling.analysis.recognisability import run_recognisability
from fooling.run import EvolutionRun
from fooling.settings.evolve import EvolveSettings, Network


def seeds(spec: str) -> list[int]:
    if "-" in spec:
        lo, hi = spec.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in spec.split(",")]


def parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, value = item.split("=", 1)
        out[key] = json.loads(value) if value[:1] in "0123456789-[{tfn" else value
    return out


def evaluations_at(run_dir: str, generation: Optional[int]) -> Optional[int]:
    """Images scored up to and including ``generation`` (metrics.csv), None if it never came."""
    if generation is None:
        return None
    with open(Path(run_dir) / "metrics.csv") as f:
        for row in csv.DictReader(f):
            if int(row["generation"]) == generation:
                return int(row["evaluations"])
    return None


def spread(values: list[Optional[int]]) -> dict:
    """Median (a seed that never got there counts as infinitely many; None if that is the median), min, max."""
    got = [v for v in values if v is not None]
    median = statistics.median([v if v is not None else float("inf") for v in values]) if values else None
    return {"median": None if median is None or median == float("inf") else median,
            "min": min(got) if got else None, "max": max(got) if got else None,
            "reached": f"{len(got)}/{len(values)}"}


def fmt(s: dict) -> str:
    med = "-" if s["median"] is None else f"{s['median']:,.0f}"
    lo = "-" if s["min"] is None else f"{s['min']:,}"
    hi = "-" if s["max"] is None else f"{s['max']:,}"
    return f"{med:>7} [{lo}-{hi}] {s['reached']}"


def one_run(config: EvolveSettings) -> dict:
    start = time.perf_counter()
    summary = EvolutionRun.start(config).run(progress=False)
    wall = time.perf_counter() - start
    p99 = [c["passed"]["0.99"] for c in summary["classes"]]
    p9999 = [c["passed"]["0.9999"] for c in summary["classes"]]
    at99 = None if None in p99 else max(p99)
    at9999 = None if None in p9999 else max(p9999)
    judged = run_recognisability(config.out, device="cpu")
    return {"seed": config.seed, "strategy": summary["strategy"], "generations": summary["generation"],
            "evaluations": summary["evaluations"], "passed_99": p99, "passed_9999": p9999,
            "evals_to_all_99": evaluations_at(config.out, at99), "evals_to_all_9999": evaluations_at(config.out, at9999),
            "wall_s": round(wall, 1), "median_confidence": summary["median_confidence"],
            "knn_target_share": judged["knn_target_share"],
            "digitcnn_target_confidence": round(judged["digitcnn_target_confidence"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["mnist-lenet"])
    parser.add_argument("--encoding", nargs="+", default=["direct"])
    parser.add_argument("--preset", nargs="+", default=["default"])
    parser.add_argument("--strategy", nargs="+", default=["preset"],
                        help="strategies to compare; 'preset': the preset's own (snes-elites / map-elites)")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--generations", type=int, default=None,
                        help="budget in generations [enough for 60,000 evaluations]")
    parser.add_argument("--population", type=int, default=None, help="children per generation [the preset's]")
    parser.add_argument("--until", type=float, default=0.9999)
    parser.add_argument("--set", nargs="*", default=[], help="extra EvolveSettings fields, key=value")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="keep the run directories under this folder")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.out or tmp
        for strategy, preset, model, encoding in itertools.product(args.strategy, args.preset, args.model,
                                                                   args.encoding):
            runs = []
            for seed in seeds(args.seeds):
                fields = dict(model=model, encoding=encoding, preset=preset, seed=seed, device=args.device,
                              until=args.until, checkpoint_every=50, population=args.population,
                              strategy=None if strategy == "preset" else strategy, **parse_set(args.set))
                # MNIST networks: none of the paper preset's ImageNet values (IMAGENET_PRESETS) apply
                config = EvolveSettings(**fields).resolved(Network(imagenet=False, takes_crops=False))
                per = config.population + ((config.cppn_lineages or 0) * (config.cppn_lineage_children or 0)
                                           if encoding == "cppn" and config.strategy == "map-elites" else 0)
                generations = args.generations or -(-60000 // per)  # per: the most a generation evaluates
                config = dataclasses.replace(config, generations=generations,
                                             out=f"{base}/{strategy}_{preset}_{model}_{encoding}_s{seed}")
                r = one_run(config)
                runs.append(r)
                after = {k: "never" if r[k] is None else f"after {r[k]} evaluations"
                         for k in ("evals_to_all_99", "evals_to_all_9999")}
                print(f"{r['strategy']:<11} {preset:<7} {model:<18} {encoding:<6} seed {seed}: 10/10 at 99% "
                      f"{after['evals_to_all_99']}, at 99.99% {after['evals_to_all_9999']} "
                      f"({r['wall_s']:.1f} s); 5-NN target share {r['knn_target_share']:.0%}, "
                      f"digitcnn {r['digitcnn_target_confidence']:.3f}", flush=True)
            rows.append({"strategy": runs[0]["strategy"], "preset": preset, "model": model, "encoding": encoding,
                         "population": config.population, "budget_evaluations": generations * per
                         + config.initial_population, "seeds": seeds(args.seeds),
                         "all_99": spread([r["evals_to_all_99"] for r in runs]),
                         "all_9999": spread([r["evals_to_all_9999"] for r in runs]),
                         "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 1),
                         "knn_target_share": round(statistics.mean(r["knn_target_share"] for r in runs), 4),
                         "digitcnn_target_confidence": round(statistics.mean(r["digitcnn_target_confidence"]
                                                                             for r in runs), 4),
                         "runs": runs})
    print()
    print(f"{'strategy':<11} {'preset':<7} {'network':<18} {'enc':<6} {'10/10 >= 99% (evals: median [min-max] n)':<34}"
          f" {'10/10 >= 99.99%':<28} {'wall s':>6} {'5-NN':>5} {'digitcnn':>8}")
    for row in rows:
        print(f"{row['strategy']:<11} {row['preset']:<7} {row['model']:<18} {row['encoding']:<6} "
              f"{fmt(row['all_99']):<34} {fmt(row['all_9999']):<28} {row['wall_s_median']:>6} "
              f"{row['knn_target_share']:>5.0%} {row['digitcnn_target_confidence']:>8.3f}")
    print(json.dumps({"until": args.until, "set": parse_set(args.set), "results": rows}))


if __name__ == "__main__":
    main()
