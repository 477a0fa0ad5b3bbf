"""Does EOT make evolved fooling images survive transformations? Plain elites against EOT-evolved ones.

    python scripts/eot_survival.py [--model mnist-lenet] [--generations 60] [--eot 16,16r]
        [--transforms crop=0.6,rotate=20,noise=0.05] [--samples 64] [--seeds 0] [--equal-cost] [--out DIR]

For each seed, evolves the same settings (default preset: snes-elites over direct encodings, all
classes) plainly (``--eot 0``: the paper's fitness) and with ``--eot K`` (fitness = mean confidence
over K random transforms; fixed draws, fool evolve's default, or fresh draws per batch), then scores every elite of both like `fool transfer --transforms SPEC
--samples N` does: its plain confidence, and the mean and minimum confidence over N fresh random
transforms (a seed never used in evolution) and the share of transforms still >= 99 %. The cost of
EOT is reported in image evaluations and in forward passes (K per evaluation); --equal-cost adds
plain evolution run for K times the generations (the same forward passes as the largest K). Also reported: the
archive's own (EOT) confidence against the fresh re-measurement (the optimism of a noisy fitness).
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from fooling import api
from fooling.analysis.transfer import score_transfer
from fooling.objective.eot import EOT
from fooling.rundir import read_run


def evolve(out: Path, args, eot: int, seed: int, fixed: bool, generations: int) -> dict:
    t = time.time()
    transforms = args.transforms + (",fixed" if fixed else ",fresh")
    result = api.evolve(model=args.model, generations=generations, seed=seed, device="cpu", out=str(out),
                        eot=eot, transforms=transforms, checkpoint_every=100_000)
    return {"seconds": time.time() - t, "evaluations": int(result.summary["evaluations"]),
            "forward_passes": int(result.summary["evaluations"]) * max(1, eot)}


def score(out: Path, args) -> dict:
    run = read_run(out)
    fresh = EOT(args.samples, args.transforms, seed=10_000 + args.samples)  # draws evolution never saw
    rows = score_transfer([run], [args.model], device="cpu", eot=fresh)
    archive = np.array([r.archive_confidence for r in rows])
    plain = np.array([r.confidence for r in rows])
    mean = np.array([r.survival_mean for r in rows])
    return {"classes": len(rows), "archive_confidence": float(archive.mean()), "plain_confidence": float(plain.mean()),
            "plain_99": float((plain >= 0.99).mean()), "survival_mean": float(mean.mean()),
            "survival_min": float(np.mean([r.survival_min for r in rows])),
            "survival_99": float(np.mean([r.survival_99 for r in rows])),
            "optimism": float((archive - mean).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mnist-lenet")
    ap.add_argument("--generations", type=int, default=60)
    ap.add_argument("--eot", default="16,16r", help="EOT sample counts to compare with plain evolution, e.g. 8,16; "
                                                    "fixed draws (fool evolve's default), a trailing r: fresh draws")
    ap.add_argument("--transforms", default="crop=0.6,rotate=20,noise=0.05")
    ap.add_argument("--samples", type=int, default=64, help="fresh transforms per elite for the survival score")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--equal-cost", action="store_true",
                    help="also run plain evolution for K times the generations (as many forward passes as EOT K)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="eot_survival_"))
    variants = [(0, True)] + [(int(k.rstrip("fr")), not k.endswith("r")) for k in args.eot.split(",")]
    most = max(k for k, _ in variants)
    if args.equal_cost and most > 1:  # the paper's fitness given as many forward passes as the largest EOT
        variants.append((-most, True))
    results: dict[str, dict] = {}
    print(f"{args.model}, {args.generations} generations, transforms {args.transforms}, survival over "
          f"{args.samples} fresh transforms; per seed:")
    print(f"{'fitness':10s} {'seed':>4s} {'evals':>7s} {'fwd':>8s} {'s':>6s} {'archive':>7s} {'plain':>6s} "
          f"{'plain>=99':>9s} {'surv mean':>9s} {'surv min':>8s} {'surv>=99':>8s} {'optimism':>8s}")
    for seed in [int(s) for s in args.seeds.split(",")]:
        for k, fixed in variants:
            name = "plain" if k == 0 else f"plain-x{-k}" if k < 0 else f"eot{k}-" + ("fixed" if fixed else "fresh")
            path = out / f"{name}_s{seed}"
            generations = args.generations * (-k if k < 0 else 1)
            row = {**evolve(path, args, max(k, 0), seed, fixed, generations), **score(path, args)}
            results.setdefault(name, {})[str(seed)] = row
            print(f"{name:10s} {seed:4d} {row['evaluations']:7d} {row['forward_passes']:8d} {row['seconds']:6.1f} "
                  f"{row['archive_confidence']:7.3f} {row['plain_confidence']:6.3f} {row['plain_99']:9.2f} "
                  f"{row['survival_mean']:9.3f} {row['survival_min']:8.3f} {row['survival_99']:8.3f} "
                  f"{row['optimism']:8.3f}", flush=True)
    means = {name: {key: float(np.mean([r[key] for r in runs.values()])) for key in next(iter(runs.values()))}
             for name, runs in results.items()}
    print("mean over seeds:")
    for name, m in means.items():
        print(f"  {name:8s} survival mean {m['survival_mean']:.3f}, >=99% {m['survival_99']:.3f}, plain "
              f"{m['plain_confidence']:.3f}, forward passes {m['forward_passes']:.0f}")
    print(json.dumps({"model": args.model, "generations": args.generations, "transforms": args.transforms,
                      "samples": args.samples, "out": str(out), "mean": means, "runs": results}))


if __name__ == "__main__":
    main()
