#!/usr/bin/env python
"""Forward-pass speed of each network in the contiguous and the channels-last layout (--memory-format).

For each model: evaluations/s of classifier.probs() on a batch (MNIST 200 and 1,000 images, ImageNet 64 at 256 px),
contiguous and channels-last timed in alternating rounds so background load hits both alike, their speed-up, and the
largest difference in probability between the two. One JSON line per configuration, then one with all of them.

    python scripts/bench_layout.py [--models mnist-lenet,mnist-digitcnn,imagenet-efficientnet-lite0] [--device auto]
                                   [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from fooling.allocator import keep_freed_memory
from fooling.classifiers import load_classifier, resolve_device

BATCHES = {"mnist": (200, 1000), "imagenet": (64,)}  # images per forward pass, by the model's family
REPEATS = {"mnist": 20, "imagenet": 2}  # timed passes per round (at least)
MIN_SECONDS = 0.5  # ...and at least this long: on a GPU those passes take milliseconds, mostly kernel launches


def rate(classifier, images: torch.Tensor, repeats: int) -> float:
    """Evaluations/s of classifier.probs(images): ``repeats`` passes, more until MIN_SECONDS have passed (after one
    untimed pass)."""
    cuda = images.device.type == "cuda"
    classifier.probs(images)
    if cuda:
        torch.cuda.synchronize()
    start, done = time.perf_counter(), 0
    while done < repeats or time.perf_counter() - start < MIN_SECONDS:
        classifier.probs(images)
        done += 1
        if cuda and done >= repeats:
            torch.cuda.synchronize()  # the clock then sees the passes done, not the ones queued
    if cuda:
        torch.cuda.synchronize()
    return len(images) * done / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mnist-lenet,mnist-digitcnn,imagenet-efficientnet-lite0")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    keep_freed_memory()  # as `fool` does
    device = resolve_device(args.device)
    rows = []
    for name in args.models.split(","):
        family = "imagenet" if name.startswith("imagenet") else "mnist"
        plain = load_classifier(name, device).configure(memory_format="contiguous")
        fast = load_classifier(name, device).configure(memory_format="channels-last")
        side = 256 if family == "imagenet" else plain.input_shape[1]
        generator = torch.Generator().manual_seed(0)
        for n in BATCHES[family]:
            images = torch.rand(n, plain.input_shape[0], side, side, generator=generator).to(device)
            gap = (fast.probs(images) - plain.probs(images)).abs().max().item()
            contiguous, channels_last = [], []
            for _ in range(args.rounds):
                contiguous.append(rate(plain, images, REPEATS[family]))
                channels_last.append(rate(fast, images, REPEATS[family]))
            c, cl = statistics.median(contiguous), statistics.median(channels_last)
            row = {"model": name, "images": n, "device": str(device), "contiguous_evals_per_s": round(c, 1),
                   "channels_last_evals_per_s": round(cl, 1), "speedup": round(cl / c, 2),
                   "max_probability_difference": gap, "rounds": args.rounds}
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(json.dumps({"device": str(device), "torch_threads": torch.get_num_threads(),
                      "speedups": {f"{r['model']}@{r['images']}": r["speedup"] for r in rows}}))


if __name__ == "__main__":
    main()
