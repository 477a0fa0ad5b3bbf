"""`fool attack` on skimage's photos: success of the files AS WRITTEN (8-bit PNG, re-read), L2 and L∞.

    python scripts/attack_skimage.py [--photos chelsea,coffee,astronaut,rocket] [--max-side 224]
        [--runs pgd-targeted,cw-targeted,...] [--target goldfish] [--cw-steps N] [--cw-search-steps S] [--out DIR]

Writes each photo as a PNG (downscaled to --max-side, 0: full size) into DIR/photos, then runs each
of --runs through :class:`fooling.run.attack.AttackRun` (what `fool attack` runs) on EfficientNet-Lite0
at L∞ 8/255 (CW: --cw-linf 8/255 as well as its own L2 minimisation), and prints one row per run:
successes judged on the re-read files, successes before writing, mean/max L2 and L∞·255, seconds.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attack_reference import photo  # noqa: E402

from fooling.imaging import save_png  # noqa: E402
from fooling.run.attack import AttackRun  # noqa: E402
from fooling.settings.attack import AttackSettings  # noqa: E402

RUNS = {  # name -> AttackSettings fields
    "fgsm-untargeted": {"method": "fgsm", "untargeted": True},
    "fgsm-targeted": {"method": "fgsm", "target": "T"},
    "pgd-untargeted": {"method": "pgd", "untargeted": True},
    "pgd-targeted": {"method": "pgd", "target": "T"},
    "cw-untargeted": {"method": "cw-l2", "untargeted": True, "cw_linf": 8 / 255},
    "cw-targeted": {"method": "cw-l2", "target": "T", "cw_linf": 8 / 255},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="imagenet-efficientnet-lite0")
    ap.add_argument("--photos", default="chelsea,coffee,astronaut,rocket")
    ap.add_argument("--max-side", type=int, default=224)
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--target", default="goldfish")
    ap.add_argument("--cw-preset", default="fast", choices=("fast", "original"))
    ap.add_argument("--cw-steps", type=int, default=None, help="CW iterations per search step [preset's]")
    ap.add_argument("--cw-search-steps", type=int, default=None, help="CW binary-search steps [preset's]")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="attack_skimage_"))
    folder = out / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    for name in args.photos.split(","):
        save_png(photo(name, args.max_side)[0], folder / f"{name}.png")
    table = {}
    print(f"{'run':18s} {'written ok':>10s} {'in memory':>9s} {'mean L2':>8s} {'max Linf*255':>12s} {'s':>6s}")
    for run in args.runs.split(","):
        fields = {k: (args.target if v == "T" else v) for k, v in RUNS[run].items()}
        if run.startswith("cw"):
            fields.update(cw_preset=args.cw_preset, **({"steps": args.cw_steps} if args.cw_steps else {}),
                          **({"cw_search_steps": args.cw_search_steps} if args.cw_search_steps else {}))
        config = AttackSettings(model=args.model, images=[str(folder)], device="cpu", out=str(out / run), **fields)
        t = time.time()
        rows = AttackRun(config).run()
        seconds = time.time() - t
        row = {"written_ok": sum(r["success"] for r in rows), "in_memory_ok": sum(r["success_in_memory"] for r in rows),
               "n": len(rows), "mean_l2": float(np.mean([r["l2"] for r in rows])),
               "max_linf_255": float(max(r["linf"] for r in rows) * 255),
               "mean_linf_255": float(np.mean([r["linf"] for r in rows]) * 255),
               "adv_labels": [r["adv_label"] for r in rows], "seconds": round(seconds, 1)}
        table[run] = row
        print(f"{run:18s} {row['written_ok']:>4d}/{row['n']:<5d} {row['in_memory_ok']:>5d}/{row['n']:<3d} "
              f"{row['mean_l2']:8.3f} {row['max_linf_255']:12.2f} {seconds:6.1f}  {', '.join(row['adv_labels'])}",
              flush=True)
    print(json.dumps({"model": args.model, "photos": args.photos.split(","), "max_side": args.max_side,
                      "target": args.target, "cw_preset": args.cw_preset, "out": str(out), "runs": table}))


if __name__ == "__main__":
    main()
