"""Our PGD and CW-L2 against torchattacks' on the same network and the same photos (untargeted).

    pip install torchattacks          # or: pip install -e '.[reference]'  (never vendored)
    python scripts/attack_reference.py [--model imagenet-efficientnet-lite0] [--photos chelsea,coffee,...]

Each skimage.data photo is attacked at its own resolution, away from the network's clean prediction;
the network's resize and normalisation sit inside the differentiable path for both libraries
(torchattacks gets an nn.Module that takes [0, 1] images). PGD: L-inf 8/255, step 2/255, 10 steps,
random start, for both. CW-L2: torchattacks' CW (c = 1, kappa 0, lr 0.01, --cw-steps iterations, no
search over c) versus ours with the same c, lr and iterations per search step plus our fast default's
binary search (5 steps). Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from fooling.attacks import CW, PGD
from fooling.classifiers import load_classifier
from fooling.objective import Objective


class Net(nn.Module):
    """A fooling Classifier as a plain module: [0, 1] images of any size -> logits."""

    def __init__(self, classifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.inner = classifier.net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.logits(x)


def photo(name: str, max_side: int = 0) -> torch.Tensor:
    """A skimage.data photo as (1, 3, H, W) in [0, 1]; with max_side, downscaled (antialiased) to fit it."""
    import skimage.data

    a = getattr(skimage.data, name)()
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    x = torch.from_numpy(a[..., :3].copy()).permute(2, 0, 1).unsqueeze(0).float() / 255
    if max_side and max(x.shape[-2:]) > max_side:
        scale = max_side / max(x.shape[-2:])
        size = (round(x.shape[-2] * scale), round(x.shape[-1] * scale))
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        x = (x.clamp(0, 1) * 255).round() / 255
    return x


def measure(attack, x: torch.Tensor, y: torch.Tensor, predict) -> dict:
    t = time.time()
    adv = attack(x, y).detach().float().cpu()
    seconds = time.time() - t
    delta = (adv - x).flatten(1)
    return {"success": bool(predict(adv) != int(y)), "l2": float(delta.norm()), "linf": float(delta.abs().max()),
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="imagenet-efficientnet-lite0")
    parser.add_argument("--photos", default="chelsea,coffee,astronaut,rocket,camera,coins")
    parser.add_argument("--cw-steps", type=int, default=100)
    parser.add_argument("--max-side", type=int, default=0, help="Downscale photos to this longest side (0: as they are).")
    args = parser.parse_args()
    try:
        import torchattacks
    except Exception as err:  # noqa: BLE001 - any import failure: report ours only
        torchattacks = None
        print(f"torchattacks cannot be imported here ({type(err).__name__}: {err}); ours only")
    torch.manual_seed(0)
    classifier = load_classifier(args.model, "cpu", 1)
    net = Net(classifier).eval()
    objective = Objective([classifier], range(classifier.num_classes))

    def predict(x):
        with torch.no_grad():
            return int(classifier.probs(x).argmax(1))

    rows = {k: [] for k in ("pgd-ours", "pgd-torchattacks", "cw-ours", "cw-torchattacks")}
    for name in args.photos.split(","):
        x = photo(name, args.max_side)
        y = torch.tensor([predict(x)])
        rows["pgd-ours"].append(measure(PGD(objective, eps=8 / 255, alpha=2 / 255, steps=10), x, y, predict))
        rows["cw-ours"].append(measure(CW(objective, c=1.0, lr=0.01, steps=args.cw_steps, search_steps=5), x, y,
                                       predict))
        if torchattacks is not None:
            rows["pgd-torchattacks"].append(measure(torchattacks.PGD(net, eps=8 / 255, alpha=2 / 255, steps=10,
                                                                     random_start=True), x, y, predict))
            rows["cw-torchattacks"].append(measure(torchattacks.CW(net, c=1.0, kappa=0, steps=args.cw_steps,
                                                                   lr=0.01), x, y, predict))
        print(name, {k: v[-1] for k, v in rows.items() if v}, flush=True)
    table = {}
    print(f"\n| attack | success | mean L2 (successes) | mean Linf*255 | seconds/photo |\n|---|---|---|---|---|")
    for key, values in rows.items():
        if not values:
            continue
        ok = [v for v in values if v["success"]]
        entry = {"success": f"{len(ok)}/{len(values)}",
                 "mean_l2": float(np.mean([v["l2"] for v in ok])) if ok else None,
                 "mean_linf": float(np.mean([v["linf"] for v in ok])) if ok else None,
                 "seconds": float(np.mean([v["seconds"] for v in values]))}
        table[key] = entry
        l2 = f"{entry['mean_l2']:.3f}" if ok else "-"
        linf = f"{entry['mean_linf'] * 255:.2f}" if ok else "-"
        print(f"| {key} | {entry['success']} | {l2} | {linf} | {entry['seconds']:.1f} |")
    print(json.dumps({"model": args.model, "photos": args.photos.split(","), "cw_steps": args.cw_steps,
                      "max_side": args.max_side,
                      "torchattacks": getattr(torchattacks, "__version__", None), "results": table}))


if __name__ == "__main__":
    main()
