#!/usr/bin/env python
"""CPU time (time.process_time) per generation of each phase of the evolve loop: ask (selection + variation),
decode, scoring, tell (archive). MNIST LeNet on the CPU, the direct or the CPPN encoding. Robust to other
processes' load, unlike wall-clock rates: "overhead_ms" (ask + decode + tell) is what the loop adds to the forward
pass, and "ratio" = fit / (fit + overhead) the loop/forward ratio those CPU times imply. "generation": CPU time of
a whole generation through run.run (hooks included; 50 generations in one call, no checkpoint), "forward":
classifier.probs alone on a batch of a generation's size (POPULATION, plus the CPPN lineages' children);
"run_ratio" = forward / generation.

    OMP_WAIT_POLICY=PASSIVE python scripts/bench_loop_phases.py POPULATION LABEL [ENCODING] [STRATEGY]

To compare two trees, alternate processes: PYTHONPATH=OLD ... then PYTHONPATH=NEW ... (the script uses only the
public API).
"""
import argparse
import contextlib
import json
import sys
import tempfile
import time

import torch

import fooling
from fooling.run import EvolutionRun
from fooling.settings.evolve import EvolveSettings

parser = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("population", type=int, help="children a generation")
parser.add_argument("label", help="a name for this tree, echoed in the JSON line")
parser.add_argument("encoding", nargs="?", default="direct", help="direct (default) or cppn")
parser.add_argument("strategy", nargs="?", default=None, help="a --strategy (default: the encoding's preset)")
args = parser.parse_args()
if args.population <= 0:
    parser.error(f"POPULATION must be positive, got {args.population}")
pop, label, encoding, strategy = args.population, args.label, args.encoding, args.strategy
torch.set_num_threads(torch.get_num_threads())
with tempfile.TemporaryDirectory() as tmp:
    run = EvolutionRun.start(EvolveSettings(model="mnist-lenet", encoding=encoding, strategy=strategy,
                                            population=pop, generations=10**6, checkpoint_every=10**6,
                                            device="cpu", out=f"{tmp}/r"))
    run.run(progress=False, stop_after=2)
    s, enc, obj = run.strategy, run.encoding, run.objective
    fit_fn = getattr(obj, "fitness_tensor", obj.fitness)
    bookkeeping = getattr(run, "bookkeeping", contextlib.nullcontext)  # (a tree from before it: nothing)
    blocks = []
    for b in range(5):
        t = dict(ask=0., decode=0., fit=0., tell=0.)
        for g in range(10):
            a = time.process_time()
            with bookkeeping():  # as run.propose(): the loop's threads for its host work (one, for small images)
                gen = s.ask()
                b_ = time.process_time()
                im = enc.decode(gen, run.device)
            c = time.process_time()
            f, sc = fit_fn(im); d = time.process_time()
            with bookkeeping():
                s.tell(gen, f, sc)
            e = time.process_time()
            t["ask"] += b_-a; t["decode"] += c-b_; t["fit"] += d-c; t["tell"] += e-d
        blocks.append({k: v/10*1000 for k, v in t.items()})
        # the same generations through run.run (hooks, metrics, classes.csv: what the phases leave out; 50 in one
        # call, without the checkpoint that closes it, so the call's own setup weighs little), and the bare
        # forward pass on a batch of that size
        run.checkpoint = lambda rows, background=False: None  # an instance attribute shadows the method
        a = time.process_time()
        run.run(progress=False, stop_after=s.generation + 49)
        if run.interrupted:  # the run caught SIGTERM / Ctrl-C and returned early: a cut measurement would mislead
            sys.exit("bench_loop_phases.py: stopped by a signal before the measurement finished: no figures")
        blocks[-1]["generation"] = (time.process_time() - a) / 50 * 1000
        del run.checkpoint
        x = torch.rand(enc.size(gen), *enc.image_shape)  # the batch a generation scores (CPPN lineages add theirs)
        a = time.process_time()
        for g in range(10):
            run.classifiers[0].probs(x)
        blocks[-1]["forward"] = (time.process_time() - a) / 10 * 1000
    med = {k: round(sorted(bl[k] for bl in blocks)[2], 2) for k in blocks[0]}
    over = round(sorted(bl["ask"] + bl["decode"] + bl["tell"] for bl in blocks)[2], 2)
    print(json.dumps({"label": label, "population": pop, "encoding": encoding, "strategy": s.__class__.__name__,
                      "cpu_ms_per_generation": med, "overhead_ms": over,
                      "ratio": round(med["fit"] / (med["fit"] + over), 3),
                      "run_ratio": round(med["forward"] / med["generation"], 3),
                      "package": fooling.__file__.rsplit("/", 2)[0]}))
    run.close()
