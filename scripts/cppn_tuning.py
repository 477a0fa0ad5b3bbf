#!/usr/bin/env python
"""How much gradient ascent on CPPN weights adds to evolution: for each seed, a short CPPN
MAP-Elites run (``fool evolve --encoding cppn``), then ``fool ascend --from`` that run with each
preset. Prints, per preset, the median over classes of the evolved and the tuned confidence,
how many classes pass 99 % before and after, and the seconds tuning took.

    python scripts/cppn_tuning.py [--model mnist-lenet] [--generations 5] [--population 50]
                                  [--steps 100] [--seeds 0-2] [--presets paper,cppn] [--classes SPEC]
                                  [--from RUN_DIR]   (tune an existing run instead of evolving one per seed)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from fooling.cli import main as main_cli  # noqa: E402


def fool(*args: str) -> None:
    """Run one `fool` command in this process (its one-line result is not printed)."""
    with contextlib.redirect_stdout(io.StringIO()):
        main_cli([*args, "--quiet"], standalone_mode=False)


def seeds(spec: str) -> list[int]:
    if "-" in spec:
        a, b = spec.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in spec.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist-lenet")
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--presets", default="paper,cppn")
    parser.add_argument("--classes", default=None)
    parser.add_argument("--from", dest="from_run", default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    presets = args.presets.split(",")
    rows = {p: [] for p in presets}
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        if args.from_run:
            runs.append(Path(args.from_run))
        else:
            for seed in seeds(args.seeds):
                run = Path(tmp) / f"evolved-{seed}"
                extra = ["--classes", args.classes] if args.classes else []
                fool("evolve", "--model", args.model, "--encoding", "cppn", "--generations", str(args.generations),
                     "--population", str(args.population), "--seed", str(seed), "--device", args.device,
                     "--out", str(run), *extra)
                runs.append(run)
        for run in runs:
            for preset in presets:
                out = Path(tmp) / f"{run.name}-{preset}"
                start = time.perf_counter()
                fool("ascend", "--from", str(run), "--preset", preset, "--steps", str(args.steps),
                     "--device", args.device, "--out", str(out))
                seconds = time.perf_counter() - start
                classes = json.loads((out / "summary.json").read_text())["classes"]
                rows[preset].append((run.name, classes, seconds))
    print(f"model {args.model}; {len(runs)} run(s) of {args.generations} generations x {args.population} "
          f"(CPPN, MAP-Elites), each tuned for up to {args.steps} steps")
    print(f"{'preset':>8} {'run':>12} {'classes':>7} {'evolved median':>15} {'tuned median':>13} "
          f"{'>=99% before':>12} {'after':>6} {'seconds':>8}")
    for preset in presets:
        for name, classes, seconds in rows[preset]:
            before = [c["start_confidence"] for c in classes]
            after = [c["confidence"] for c in classes]
            print(f"{preset:>8} {name:>12} {len(classes):>7} {statistics.median(before):>15.4f} "
                  f"{statistics.median(after):>13.4f} {sum(b >= 0.99 for b in before):>12} "
                  f"{sum(a >= 0.99 for a in after):>6} {seconds:>8.1f}")
    print(json.dumps({p: [{"run": n, "evolved": [c["start_confidence"] for c in cl],
                           "tuned": [c["confidence"] for c in cl], "seconds": round(s, 1)} for n, cl, s in r]
                      for p, r in rows.items()}))


if __name__ == "__main__":
    main()
