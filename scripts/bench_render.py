#!/usr/bin/env python
"""Throughput of the batched CPPN renderer, and its share of an evolution generation.

render    images/s drawing a population of CPPNs with 5 to 50 hidden nodes (uniform),
          grown by the encoding's own operators, at 28 px grey (MNIST) and 256 px
          HLS colour (ImageNet); median of --rounds, each one ``decode`` call
          (compiling the population into tensors included).
reference images/s of the per-genome float64 reference renderer, for scale (28 px only).
share     the fraction of a real `fool evolve --encoding cppn` generation (MNIST LeNet,
          MAP-Elites) spent in ``decode``, over --generations generations, and the same
          fraction for a generation whose children have 5 to 50 hidden nodes
          (mutate + decode + classifier forward, timed separately).
host      ms per generation of CPPN host work at --population: mutate_population and
          compile_population (children with 5 to 50 hidden nodes), and compile_population of
          mutated children from their pack (what decode does right after mutate).
The last line is one JSON object.

    python scripts/bench_render.py [--population 400] [--device auto] [--rounds 5] [--threads 1] [--clock cpu]

On a machine with more busy processes than cores, PyTorch's OpenMP threads spin
and every small op stalls; use --threads 1 (or OMP_WAIT_POLICY=PASSIVE) there,
and --clock cpu to time by this process's CPU time rather than wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from fooling.classifiers import resolve_device
from fooling.settings.evolve import EvolveSettings
from fooling.encodings.cppn import CPPNEncoding, Genome
from fooling.encodings.cppn.mutation import Editable, add_connection, add_node
from fooling.run import EvolutionRun

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import render_reference  # noqa: E402  (the per-genome test oracle)


CLOCK = time.perf_counter  # or time.process_time (--clock cpu)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def grown_population(enc: CPPNEncoding, n: int, rng: np.random.Generator) -> list[Genome]:
    """``n`` genomes with 5..50 hidden nodes: split connections, and add one half the time."""
    genomes = []
    for genome, hidden in zip(enc.random(n, rng), rng.integers(5, 51, size=n)):
        net = Editable.of(genome)
        while len(net.hidden) < hidden:
            add_node(net, rng.random(3), max_hidden=hidden)
            if rng.random() < 0.5:
                add_connection(net, rng.random(2))
        genomes.append(net.freeze())
    return genomes


def timed(fn: Callable[[], object], device: torch.device, rounds: int) -> float:
    """Median seconds of ``fn`` over ``rounds`` calls, after one warm-up."""
    fn()
    sync(device)
    times = []
    for _ in range(rounds):
        start = CLOCK()
        fn()
        sync(device)
        times.append(CLOCK() - start)
    return statistics.median(times)


def render_rates(population: int, device: torch.device, rounds: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    rates = {}
    for label, shape in (("28px", (1, 28, 28)), ("256px", (3, 256, 256))):
        enc = CPPNEncoding(shape)
        genomes = grown_population(enc, population, rng)
        seconds = timed(lambda: enc.decode(genomes, device), device, rounds)
        rates[label] = population / seconds
        edges = np.mean([g.num_connections for g in genomes])
        hidden = np.mean([g.num_hidden for g in genomes])
        print(f"render {label:>6}: {rates[label]:>10,.0f} images/s  ({population} genomes, mean {hidden:.1f} hidden, "
              f"{edges:.1f} connections; {seconds * 1e3:.1f} ms per population)")
        if label == "28px":
            some = genomes[:20]
            ref = timed(lambda: [render_reference(g, enc.style) for g in some], device, 1)
            rates["reference_28px"] = len(some) / ref
            print(f"reference 28px: {rates['reference_28px']:>10,.0f} images/s  (per-genome numpy float64)")
    return rates


def host_work(population: int, rounds: int) -> dict[str, float]:
    """Host-only CPPN work per generation: mutate_population and compile_population of ``population``
    children with 5..50 hidden nodes (no tensors involved; the part a GPU cannot take over)."""
    from fooling.encodings.cppn.compile import compile_population
    from fooling.encodings.cppn.mutation import mutate_population_packed

    enc = CPPNEncoding((1, 28, 28))
    rng = np.random.default_rng(2)
    parents = grown_population(enc, population, rng)
    cpu = torch.device("cpu")
    mutate = timed(lambda: enc.mutate(parents, rng, 0), cpu, rounds)
    compile_ = timed(lambda: compile_population(parents), cpu, rounds)
    children, packed = mutate_population_packed(parents, rng, enc.rates)
    packed_ = timed(lambda: compile_population(children, packed), cpu, rounds)
    print(f"host work for {population}: mutate {mutate * 1e3:.1f} ms, compile {compile_ * 1e3:.1f} ms per generation "
          f"({packed_ * 1e3:.1f} ms for children compiled from the arrays mutation laid end to end, as decode does)")
    return {"host_mutate_ms": mutate * 1e3, "host_compile_ms": compile_ * 1e3, "host_compile_packed_ms": packed_ * 1e3}


def run_share(population: int, generations: int, device: torch.device) -> dict[str, float]:
    """Fraction of a real MNIST CPPN run's loop time spent in decode."""
    with tempfile.TemporaryDirectory() as tmp:
        config = EvolveSettings(encoding="cppn", population=population, generations=generations,
                                checkpoint_every=10**6, device=str(device), out=f"{tmp}/run")
        run = EvolutionRun.start(config)
        decode, spent = run.encoding.decode, [0.0]

        def timed_decode(genomes, dev):
            start = CLOCK()
            images = decode(genomes, dev)
            sync(device)
            spent[0] += CLOCK() - start
            return images

        run.encoding.decode = timed_decode
        start = CLOCK()
        run.run(progress=False)
        total = CLOCK() - start
        hidden = np.mean([g.num_hidden for g in run.archive.genomes if g is not None])
    print(f"real run: {generations} generations of {population}: {total:.2f} s, decode {spent[0]:.2f} s "
          f"= {spent[0] / total:.1%} (elites end with {hidden:.1f} hidden nodes on average)")
    return {"run_decode_share": spent[0] / total, "run_seconds": total}


def grown_share(population: int, device: torch.device, rounds: int) -> dict[str, float]:
    """mutate + decode + forward for children with 5..50 hidden nodes, MNIST LeNet."""
    from fooling.classifiers import load_classifier

    classifier = load_classifier("mnist-lenet", device)
    enc = CPPNEncoding((1, 28, 28))
    rng = np.random.default_rng(1)
    parents = grown_population(enc, population, rng)
    images = enc.decode(parents, device)
    mutate = timed(lambda: enc.mutate(parents, rng, 0), device, rounds)
    decode = timed(lambda: enc.decode(parents, device), device, rounds)
    forward = timed(lambda: classifier.probs(images), device, rounds)
    share = decode / (mutate + decode + forward)
    print(f"grown generation of {population}: mutate {mutate * 1e3:.1f} ms, decode {decode * 1e3:.1f} ms, "
          f"forward {forward * 1e3:.1f} ms: decode = {share:.1%}")
    return {"grown_decode_share": share, "grown_mutate_ms": mutate * 1e3, "grown_decode_ms": decode * 1e3,
            "grown_forward_ms": forward * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=400, help="genomes per rendered batch")
    parser.add_argument("--run-population", type=int, default=200, help="children per generation (MNIST CPPN: 200)")
    parser.add_argument("--generations", type=int, default=50, help="generations of the real run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="cpu: this process's CPU time")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)

    device = resolve_device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.clock} clock")
    result = {"device": str(device), "population": args.population, "threads": torch.get_num_threads(),
              "clock": args.clock}
    result.update({f"images_per_s_{k}": round(v, 1) for k, v in render_rates(args.population, device,
                                                                              args.rounds).items()})
    result.update({k: round(v, 3) for k, v in host_work(args.population, max(args.rounds, 15)).items()})
    result.update({k: round(v, 4) for k, v in grown_share(args.run_population, device, args.rounds).items()})
    result.update({k: round(v, 4) for k, v in run_share(args.run_population, args.generations, device).items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
