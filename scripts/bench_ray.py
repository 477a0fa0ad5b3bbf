#!/usr/bin/env python
"""One run over Ray actors (``fool evolve --workers N``) against the in-process loop, on this machine.

Measures, for the MNIST LeNet on CPU and the direct encoding (a population of several CPU chunks, so that
two actors both get work):
  scoring      evaluations/s of the part the actors take over (decode + forward pass of one generation):
               in this process with 1 torch thread, on 1 CPU actor and on 2 (1 thread each), median of
               alternating rounds; scaling efficiency = time(1 actor) / (2 * time(2 actors)); overhead =
               ms per generation that 1 actor takes beyond the in-process 1-thread scoring (shipping, Ray)
  whole loop   evaluations/s of the whole run (ask, vary, tell, metrics stay on the driver) in process
               (1 thread, default threads) and on 1 and 2 actors (pools started before the clock starts:
               their start-up times are printed apart)
  identical    whether every pool gave exactly the in-process fitness and archive (it must)
and the bytes shipped per generation (driver -> actors, actors -> driver): measured for MNIST direct and
MNIST CPPN runs, and for ImageNet direct (population 400 of 3x256x256) and ImageNet CPPN packed without
running a network (the payload is what the driver would send; the reply is 400 x 1000 float32 probabilities).

On a 2-core machine shared with other work, 2 actors cannot beat the cores: the scaling figure is bounded by
them. Ends with one JSON line.

    python scripts/bench_ray.py [--population 1024] [--generations 12] [--cppn-rounds 100]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import fooling
from fooling.distributed.pool import EvaluatorPool, pack, payload_bytes
from fooling.distributed.ray_setup import connected
from fooling.encodings import make_encoding
from fooling.encodings.cppn import CPPNEncoding
from fooling.run import EvolutionRun
from fooling.settings.evolve import EvolveSettings


def timed_run(config: EvolveSettings, pool=None, threads: int | None = None) -> tuple[float, float, dict]:
    """(evaluations/s, seconds per generation, the archive's arrays) of one run of ``config``."""
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        run = EvolutionRun.start(config)
        run.pool = pool
        started = time.perf_counter()
        run.run(progress=False)
        wall = time.perf_counter() - started
    finally:
        torch.set_num_threads(old)
    arrays = {k: v.copy() for k, v in run.archive.state_dict().items()}
    return run.evaluations / wall, wall / (config.generations + 1), arrays


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def mutated_cppns(encoding: CPPNEncoding, n: int, rounds: int, seed: int = 0) -> list:
    """``n`` CPPNs after ``rounds`` mutations each (the genomes a run carries after about that many
    generations of descent)."""
    rng = np.random.default_rng(seed)
    genomes = encoding.random(n, rng)
    for g in range(rounds):
        genomes = encoding.mutate(genomes, rng, g)
    return genomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist-lenet")
    parser.add_argument("--population", type=int, default=1024)
    parser.add_argument("--generations", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds of scoring alone")
    parser.add_argument("--cppn-rounds", type=int, default=100, help="mutations of the ImageNet CPPNs packed")
    args = parser.parse_args()

    out: dict = {"fooling": fooling.__file__, "cores": os.cpu_count(), "model": args.model,
                 "population": args.population, "generations": args.generations}
    with tempfile.TemporaryDirectory() as tmp:
        def config(name: str, **kw) -> EvolveSettings:
            base = dict(model=args.model, population=args.population, generations=args.generations, seed=0,
                        device="cpu", checkpoint_every=10_000, out=str(Path(tmp) / name))
            base.update(kw)
            return EvolveSettings(**base)

        # in process: 1 thread (what one actor has) and the default
        rate_1t, gen_1t, ref = timed_run(config("here-1t"), threads=1)
        rate_here, _, here = timed_run(config("here"))
        out.update(in_process_1thread=rate_1t, in_process=rate_here, torch_threads=torch.get_num_threads())
        identical = same(ref, here)
        with connected("--workers", num_cpus=3) as ray:  # 1 + 2 actors alive at once (idle ones use no CPU)
            probe = EvolutionRun.start(config("probe"))  # the run's classes, image shape, encoding, objective
            probe.close()
            resolved, shape, classes = probe.config, probe.encoding.image_shape, probe.classes
            pools, rates, gens = {}, {}, {}
            for workers in (1, 2):
                started = time.perf_counter()
                pools[workers] = EvaluatorPool(ray, resolved, shape, classes, workers, torch.device("cpu"))
                out[f"pool_start_s_{workers}"] = time.perf_counter() - started
            try:
                # scoring alone (decode + forward; what the actors take over), alternating rounds
                genomes = probe.encoding.random(args.population, torch.Generator().manual_seed(1))
                score = {"in_process_1thread": [], "actors_1": [], "actors_2": []}
                torch.set_num_threads(1)
                expected = probe.objective.fitness_tensor(probe.encoding.decode(genomes, probe.device))[0]
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    probe.objective.fitness_tensor(probe.encoding.decode(genomes, probe.device))
                    score["in_process_1thread"].append(time.perf_counter() - t)
                    for workers in (1, 2):
                        t = time.perf_counter()
                        got = pools[workers].fitness(genomes, args.population)[0]
                        score[f"actors_{workers}"].append(time.perf_counter() - t)
                        identical &= bool(torch.equal(got, expected))
                torch.set_num_threads(out["torch_threads"])
                median = {k: float(np.median(v)) for k, v in score.items()}
                out["scoring_evals_per_s"] = {k: args.population / v for k, v in median.items()}
                out["scoring_scaling_efficiency"] = median["actors_1"] / (2 * median["actors_2"])
                out["overhead_ms_per_generation"] = 1000 * (median["actors_1"] - median["in_process_1thread"])
                # the whole loop (ask, vary, tell, metrics on the driver; scoring on the actors)
                for workers in (1, 2):
                    rates[workers], gens[workers], arrays = timed_run(config(f"ray{workers}", workers=workers),
                                                                      pools[workers])
                    identical &= same(ref, arrays)
                    t = pools[workers].traffic
                    out[f"actors_{workers}"] = rates[workers]
                traffic = {"sent": t.last["sent"], "received": t.last["received"]}
            finally:
                for pool in pools.values():
                    pool.close()
            out["mnist_direct_bytes"] = traffic
            out["scaling_efficiency"] = rates[2] / (2 * rates[1])
            out["speedup_2_vs_in_process"] = rates[2] / rate_here
            out["identical"] = bool(identical)

            # MNIST CPPN: measured over a short run on 2 actors (and checked against the in-process run)
            cppn = config("cppn-here", encoding="cppn", strategy="map-elites", generations=4)
            _, _, cppn_ref = timed_run(cppn)
            cppn_run = EvolutionRun.start(config("cppn-ray", encoding="cppn", strategy="map-elites", generations=4,
                                                 workers=2))
            cppn_run.run(progress=False)  # starts and closes its own pool; the log has the traffic
            log = (Path(tmp) / "cppn-ray" / "log.txt").read_text()
            line = [ln for ln in log.splitlines() if "bytes sent" in ln][-1]
            words = line.split()
            sent = float(words[words.index("bytes") - 1])
            received = float(words[words.index("received") - 1])
            out["mnist_cppn_bytes"] = {"sent": sent, "received": received}
            out["cppn_identical"] = same(cppn_ref, {k: v for k, v in cppn_run.archive.state_dict().items()})
    # ImageNet: what the driver packs for a population of 400 (no network run), and the 1000-class reply
    n, classes = 400, 1000
    imagenet = EvolveSettings(model="mnist-lenet", encoding="direct", population=n).resolved()
    direct = make_encoding(imagenet, (3, 256, 256))
    genes = direct.random(n, torch.Generator().manual_seed(0))
    out["imagenet_direct_bytes"] = {"sent": payload_bytes(pack(direct, genes)), "received": n * classes * 4}
    started = time.perf_counter()
    cppns = mutated_cppns(CPPNEncoding((3, 224, 224)), n, args.cppn_rounds)
    out["imagenet_cppn_bytes"] = {"sent": payload_bytes(pack(CPPNEncoding((3, 224, 224)), cppns)),
                                  "received": n * classes * 4, "mutation_rounds": args.cppn_rounds,
                                  "mean_connections": float(np.mean([g.num_connections for g in cppns]))}
    out["cppn_pack_setup_s"] = time.perf_counter() - started
    # the scheme for direct genomes, estimated: parent indices + one seed per piece + the elites that
    # changed (mirrored by the actors), instead of the children's genes
    elite_bytes = 3 * 256 * 256 * 4
    out["imagenet_direct_scheme_estimate"] = {
        "sent_per_changed_elite": elite_bytes, "fixed": n * 8 + 16 * 8,
        "sent_if_10_elites_changed": n * 8 + 16 * 8 + 10 * elite_bytes, "mirror_once": classes * elite_bytes}

    def mb(b: float) -> str:
        return f"{b / 1e6:.3f} MB"

    print(f"machine: {out['cores']} cores; {args.model} CPU, direct, population {args.population}, "
          f"{args.generations + 1} generations")
    sc = out["scoring_evals_per_s"]
    print(f"scoring alone (decode + forward, median of {args.rounds}): in process 1 thread "
          f"{sc['in_process_1thread']:,.0f} evals/s; 1 actor {sc['actors_1']:,.0f}; 2 actors {sc['actors_2']:,.0f}; "
          f"scaling efficiency {out['scoring_scaling_efficiency']:.2f}; overhead "
          f"{out['overhead_ms_per_generation']:.1f} ms/generation")
    print("whole loop:")
    print(f"in process, 1 thread      {out['in_process_1thread']:10,.0f} evals/s")
    print(f"in process, {out['torch_threads']} threads     {out['in_process']:10,.0f} evals/s")
    print(f"1 actor                   {out['actors_1']:10,.0f} evals/s   (pool start {out['pool_start_s_1']:.1f} s)")
    print(f"2 actors                  {out['actors_2']:10,.0f} evals/s   (pool start {out['pool_start_s_2']:.1f} s)")
    print(f"scaling efficiency 2 actors: {out['scaling_efficiency']:.2f}; identical results: {out['identical']} "
          f"(CPPN: {out['cppn_identical']})")
    for key, what in [("mnist_direct_bytes", f"MNIST direct, population {args.population}"),
                      ("mnist_cppn_bytes", f"MNIST CPPN, population {args.population}"),
                      ("imagenet_direct_bytes", "ImageNet direct, population 400, 3x256x256"),
                      ("imagenet_cppn_bytes", f"ImageNet CPPN, population 400, {args.cppn_rounds} mutations")]:
        print(f"bytes/generation {what:45s} sent {mb(out[key]['sent']):>12}  received {mb(out[key]['received'])}")
    est = out["imagenet_direct_scheme_estimate"]
    print(f"ImageNet direct with parent indices + seeds + changed elites (estimate, not built): "
          f"{mb(est['sent_if_10_elites_changed'])} a generation when 10 elites changed; {mb(est['mirror_once'])} once")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
