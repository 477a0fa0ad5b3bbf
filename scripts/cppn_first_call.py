#!/usr/bin/env python
"""Whether a process's first CPPN drawing equals its later ones, with and without settling the node functions.

Each of --runs fresh processes per mode loads EfficientNet-Lite0 (its forward pass runs at load: the layout probe),
draws the CPPN elites of --from differentiably at 256 px (as ``fool ascend --from`` does), draws them again, and
reports whether the two drawings are equal and how far apart. Mode ``settled`` is fooling as it is
(:func:`fooling.encodings.cppn.functions.settle_cpu_functions` runs once before the first drawing); ``unsettled``
skips that step. On this project's 2-core machine with PyTorch 2.13 the first drawing of some unsettled processes
differed by about 1e-4 (one thread's share of the first ``torch.sin``); see the function's docstring.

    python scripts/cppn_first_call.py [--runs 20] [--from gallery/imagenet/runs/imagenet-cppn-long]

Prints one line per mode, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(mode: str, run: str) -> None:
    sys.path.insert(0, str(ROOT))
    import torch

    from fooling.classifiers import load_classifier
    from fooling.encodings.cppn import functions
    from fooling.run.ascend import load_cppn_elites
    from fooling.search.gradient.cppn import CppnWeights

    if mode == "unsettled":
        functions._settled.append(True)  # as if already settled: the first real call is the process's first
    load_classifier("imagenet-efficientnet-lite0", "cpu")
    genomes, style = load_cppn_elites(run)
    weights = CppnWeights([genomes[k] for k in sorted(genomes)], style, torch.device("cpu"), size=(256, 256))
    first = weights.render(weights.parameters())
    second = weights.render(weights.parameters())
    print(json.dumps({"same": bool(torch.equal(first, second)),
                      "max_diff": float((first.double() - second.double()).abs().max())}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="fresh processes per mode")
    parser.add_argument("--from", dest="run", default=str(ROOT / "gallery/imagenet/runs/imagenet-cppn-long"))
    parser.add_argument("--child", choices=("settled", "unsettled"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.run)
        return
    result = {}
    for mode in ("settled", "unsettled"):
        rows = []
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--from", args.run],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        differ = [r["max_diff"] for r in rows if not r["same"]]
        result[mode] = {"processes": len(rows), "first_drawing_differed": len(differ),
                        "largest_difference": max(differ, default=0.0)}
        print(f"{mode:>9}: {len(differ)} of {len(rows)} processes drew their first CPPN images otherwise than their "
              f"second (largest difference {max(differ, default=0.0):.2e})", flush=True)
    print(json.dumps({"bench": "cppn_first_call", "runs": args.runs, **result}))


if __name__ == "__main__":
    main()
