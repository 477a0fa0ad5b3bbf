#!/usr/bin/env python
"""Is a CPPN elite in a local optimum? Scores mutants of one class's elite of a CPPN run under each kind
of mutation (the run's own rates, weights only, structure only, ...) and prints, per kind, the share of
mutants more confident than the elite and the largest gain in logit (log p − log(1 − p)) for that class.
The run folder is copied first (nothing in it is changed). The last line is one JSON object.

    python scripts/cppn_mutants.py RUN_DIR [--cls 8] [--mutants 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from fooling.encodings.cppn.mutation import mutate_population
from fooling.run.evolve import EvolutionRun

NO_STRUCTURE = dict(add_connection=0.0, delete_connection=0.0, rewire_connection=0.0, add_node=0.0, delete_node=0.0)


def kinds(rates) -> dict:
    """Mutation rate sets to compare, from the run's own ``rates`` (fooling.encodings.cppn.mutation.MutationRates)."""
    r = dataclasses.replace
    return {
        "the run's own": rates,
        "weights only": r(rates, **NO_STRUCTURE, function_rate=0.0),
        "weights only, η 30 (finer)": r(rates, **NO_STRUCTURE, function_rate=0.0, weight_eta=30.0),
        "weights only, η 5 (coarser)": r(rates, **NO_STRUCTURE, function_rate=0.0, weight_eta=5.0),
        "structure only": r(rates, weight_rate=0.0, function_rate=0.0),
        "add a node only": r(rates, **{**NO_STRUCTURE, "add_node": 1.0}, weight_rate=0.0, function_rate=0.0),
        "add a connection only": r(rates, **{**NO_STRUCTURE, "add_connection": 1.0}, weight_rate=0.0,
                                   function_rate=0.0),
        "functions only": r(rates, **NO_STRUCTURE, weight_rate=0.0),
    }


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a CPPN run folder (fool evolve --encoding cppn --out ...)")
    parser.add_argument("--cls", type=int, default=8, help="the class whose elite is mutated [8]")
    parser.add_argument("--mutants", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(args.run, copy)
        run = EvolutionRun.resume(copy)
        try:
            if run.encoding.name != "cppn":
                raise SystemExit(f"Error: {args.run} is not a CPPN run")
            cell = run.classes.index(args.cls)
            elite = run.archive.elites(np.array([cell]))[0]
            confidence = float(run.archive.fitness[cell])
            rng = np.random.default_rng(args.seed)
            print(f"class {args.cls}: elite at {confidence:.6f} ({elite.num_hidden} hidden nodes, "
                  f"{elite.num_connections} connections), {args.mutants} mutants per kind")
            rows = {}
            for name, rates in kinds(run.encoding.rates).items():
                mutants = mutate_population([elite] * args.mutants, rng, rates)
                with torch.no_grad():
                    fitness, _ = run.objective.fitness(run.encoding.decode(mutants, run.device))
                gain = logit(fitness[:, cell]) - logit(np.array(confidence))
                rows[name] = {"better": float(np.mean(gain > 0)), "best_logit_gain": float(gain.max()),
                              "best_confidence": float(fitness[:, cell].max())}
                print(f"{name:30s} better {rows[name]['better']:6.1%}  best logit gain {gain.max():+.3f}  "
                      f"best {fitness[:, cell].max():.6f}")
        finally:
            run.close()
    print(json.dumps({"run": str(args.run), "class": args.cls, "elite_confidence": confidence,
                      "mutants": args.mutants, "kinds": rows}))


if __name__ == "__main__":
    main()
