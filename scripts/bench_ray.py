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
and the bytes shipped per generation (driver -> actors, actors -> driver): measured for MNIST direct runs
of each strategy on 2 actors (snes-elites, map-elites, ga: plans, seeds and mirror updates; against the
children's float32 genes, what was shipped before) and MNIST CPPN runs; for ImageNet direct (population 400
of 3x256x256, 1000 classes) the plans and mirror updates of real strategies, and ImageNet CPPN packed, without
running a network (what the driver would send; the reply is 400 x 1000 float32 probabilities).

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
from fooling.archive import Archive
from fooling.distributed.pool import EvaluatorPool, mirror_update, pack, payload_bytes, update_bytes
from fooling.distributed.ray_setup import connected
from fooling.encodings import make_encoding
from fooling.encodings.cppn import CPPNEncoding
from fooling.run import EvolutionRun
from fooling.run.hooks import Hook
from fooling.search import GeneticAlgorithm, MapElites
from fooling.search.snes_elites import SnesElites
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


class SentBytes(Hook):
    """Bytes the pool sent, generation by generation."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def after_generation(self, run, record) -> None:
        self.sent.append(run.pool.traffic.last["sent"])


def planned_bytes(config_here: EvolveSettings, config_ray: EvolveSettings) -> dict:
    """A short run on 2 actors (its own pool) against the same run in process: bytes sent per generation
    (generation 0, and the mean and max of the later ones) and whether the archives are the same."""
    _, _, ref = timed_run(config_here)
    hook = SentBytes()
    run = EvolutionRun.start(config_ray)
    run.run(progress=False, hooks=[hook])
    later = hook.sent[1:]
    genes = config_ray.population * run.encoding.num_genes * 4
    return {"generation0": hook.sent[0], "generation1": hook.sent[1], "mean_after_1": float(np.mean(hook.sent[2:])),
            "mean_later": float(np.mean(later)), "max_later": int(max(later)),
            "genes_before": genes, "identical": same(ref, run.archive.state_dict())}


def imagenet_plans(n: int = 400, classes: int = 1000) -> dict:
    """Bytes of the real plans and mirror updates of each strategy for ImageNet direct (3x256x256), without a
    network: MAP-Elites and the GA over random elites / a random population; snes-elites per emitter."""
    shape = (3, 256, 256)
    genes = int(np.prod(shape))
    rng = np.random.default_rng(0)
    out: dict = {"genes_per_generation": n * genes * 4, "per_genome": genes * 4 + 8}
    enc = make_encoding(EvolveSettings(model="mnist-lenet", strategy="map-elites", population=n).resolved(), shape)
    archive = Archive(enc, range(classes), [str(k) for k in range(classes)])
    me = MapElites(archive, rng, population=n, initial_population=n)
    out["map_elites_generation0"] = me.plan().nbytes()  # random blocks: seeds only
    batch = enc.random(n, torch.Generator().manual_seed(0))
    me.tell(batch, torch.rand((n, classes), generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    del batch
    out["map_elites_plan"] = me.plan().nbytes()  # parent cells + seeds
    keys, rows = me.mirror_source()
    full = mirror_update(None, keys, rows)
    out["map_elites_full_mirror"] = update_bytes(full)  # a new actor: every distinct elite
    out["map_elites_distinct_elites"] = len(full["keys"])
    del full
    snes_archive = Archive(enc, range(classes), [str(k) for k in range(classes)])
    snes = SnesElites(snes_archive, rng, population=n, initial_population=n, start=0.5)
    plan = snes.plan()  # population 400 over 1000 unfinished classes: 200 emitters drawn, a mirrored pair each
    out["snes_emitters"], out["snes_children_per_emitter"] = len(plan.cells), plan.block
    out["snes_plan"] = plan.nbytes()  # the drawn emitters' mean and step-size rows + seeds
    out["snes_genes"] = plan.n * genes * 4
    del snes, snes_archive, plan
    ga_archive = Archive(enc, [0], ["0"])
    ga = GeneticAlgorithm(ga_archive, rng, __import__("random").Random(0), mu=n, lambda_=n, cxpb=0.5, mutpb=0.5)
    ga.generation, ga.population = 1, [None] * n  # plan() reads only the population's size
    out["ga_plan"] = ga.plan().nbytes()  # each child's operator and parents + seeds
    out["ga_full_mirror"] = n * out["per_genome"]  # a new actor: the whole population (then genes are smaller)
    return out


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
    parser.add_argument("--planned-generations", type=int, default=6, help="generations of the per-strategy runs")
    parser.add_argument("--cppn-rounds", type=int, default=100, help="mutations of the ImageNet CPPNs packed")
    args = parser.parse_args()
    if args.planned_generations < 2:  # the mean after generation 1 needs a generation 2
        parser.error("--planned-generations must be at least 2")

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

            # MNIST direct, each strategy on 2 actors (own pools): plans + mirror updates against the genes
            for strategy, kw in [("snes-elites", {}), ("map-elites", {}), ("ga", {"target": 0})]:
                short = dict(strategy=strategy, generations=args.planned_generations, **kw)
                out[f"mnist_{strategy}_bytes"] = planned_bytes(config(f"{strategy}-here", **short),
                                                               config(f"{strategy}-ray", workers=2, **short))
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
    out["imagenet_direct_planned"] = imagenet_plans(n, classes)

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
    for key, what in [("mnist_direct_bytes", f"MNIST direct snes-elites, population {args.population}"),
                      ("mnist_cppn_bytes", f"MNIST CPPN, population {args.population}"),
                      ("imagenet_direct_bytes", "ImageNet direct genes, population 400"),
                      ("imagenet_cppn_bytes", f"ImageNet CPPN, population 400, {args.cppn_rounds} mutations")]:
        print(f"bytes/generation {what:45s} sent {mb(out[key]['sent']):>12}  received {mb(out[key]['received'])}")
    print(f"MNIST direct, population {args.population}, 2 actors (before: the genes, "
          f"{mb(out['mnist_map-elites_bytes']['genes_before'])} a generation):")
    for strategy in ("snes-elites", "map-elites", "ga"):
        r = out[f"mnist_{strategy}_bytes"]
        print(f"  {strategy:12s} generation 0 {mb(r['generation0']):>10}; 1 (mirrors filled) {mb(r['generation1']):>10}; "
              f"later: mean {mb(r['mean_after_1']):>10}; identical to in process: {r['identical']}")
    im = out["imagenet_direct_planned"]
    print(f"ImageNet direct, population 400 (before: {mb(im['genes_per_generation'])} of genes a generation); "
          f"{mb(im['per_genome'])} per genome mirrored:")
    print(f"  map-elites   generation 0 {mb(im['map_elites_generation0'])}; a generation's plan "
          f"{mb(im['map_elites_plan'])} + {mb(im['per_genome'])} per changed elite per actor; a new actor's mirror "
          f"{mb(im['map_elites_full_mirror'])} ({im['map_elites_distinct_elites']} elites)")
    print(f"  snes-elites  {mb(im['snes_plan'])} for {im['snes_emitters']} emitters x {im['snes_children_per_emitter']} "
          f"children (their genes: {mb(im['snes_genes'])})")
    print(f"  ga           a generation's plan {mb(im['ga_plan'])} + {mb(im['per_genome'])} per new member of the "
          f"population per actor (a piece never sends more than its genes)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
