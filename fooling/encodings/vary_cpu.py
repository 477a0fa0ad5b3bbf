"""MAP-Elites' and the GA's direct children on the CPU in a few compiled passes (numba; see :mod:`fooling.jit`).

A "vary" plan's block of children (:mod:`fooling.search.blocks`) crosses pairs (2q, 2q + 1) over with probability
``crossover_rate`` (Deb's bounded SBX, each gene with probability 1/2, DEAP's ``cxSimulatedBinaryBounded``) and then
mutates every gene of every child with probability ``rate`` (polynomial, bounded or unscaled, DEAP's
``mutPolynomialBounded``): the distributions of :func:`.operators.sbx_pairs_torch` and
:func:`.operators.polynomial_mutation_torch`. PyTorch makes that some sixty element-wise ops, gathers and scatters a
block, each with its own temporaries (4-5 ms a generation of 200 MNIST children in 7 blocks, against a forward pass
of about 6; 170 ms for 64 children at 256 px, against about 300). Here the genes that change are gathered into
small buffers that stay in cache, their powers taken by numpy's vectorised ``power`` (about 1 ns a value, against
5-6 for a call to the C library's ``powf`` in a compiled loop), and the children written once, in place:
``scripts/bench_vary.py`` measures both. The crossing genes of a row are found without branches
(:func:`_crossing_stretch`).

A "ga" plan's children (the GA, DEAP's varOr: :func:`ga_children`) come from the same passes: a crossover's first
child (only the side its swap coin gives it), a mutant, or a copy of its parent.

Random numbers come from a counter-based generator rather than a stream: draw k of a row (a pair's crossover, a
child's mutation) of a block is SplitMix64's output for that row's key and k (Steele, Lea & Flood 2014), the key
derived from the block's seed. PyTorch's and numpy's generators are sequential streams that a compiled pass cannot
draw from at a given position, and a split over threads must not change any number: here every pair and child owns
its draws, and every value is computed alone, so the children are the same bits for any number of threads, pieces
or workers (on one machine: numpy's ``power`` is SIMD code chosen for the CPU). This is the stream
``blocks-1+counters`` of a checkpoint (:data:`fooling.search.blocks.COUNTER_VARIATION`); runs begun with
PyTorch's per-block generators (``blocks-1``) continue on them (:attr:`fooling.search.blocks.Plan.counters`).
Arithmetic is float32, as the genes.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ..hostwork import split
from ..jit import jit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment
PAIR, CROSS, MUTATE = 1, 2, 3  # the streams of a block: pair decisions, crossing genes, mutations
UNIT = np.float32(2.0 ** -24)  # a 24-bit integer times this: a float32 uniform in [0, 1)
TINY = np.float32(1e-30)  # as in .operators: powers kept out of subnormal numbers
WHOLE_MAX = 64  # exponents η + 1 that are whole numbers up to this are taken by squaring, not by power()
BUFFER = 1 << 14  # changed genes gathered at a time (a few hundred kB of buffers: they stay in cache)
MIN_ROOM = 64  # a stretch of a row is gathered only with room for at least this many genes (unless none are held)
MIN_VALUES_A_THREAD = 1 << 17  # genes split over threads only in pieces of at least this many


@jit
def _mix(z):  # pragma: no cover - compiled
    """SplitMix64's finaliser of a uint64."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@jit
def _row_key(seed, stream, row):  # pragma: no cover - compiled
    """The key of ``row`` (a pair or a child of a block) in ``stream`` of the block with ``seed`` (uint64)."""
    return _mix(_mix(seed) + GOLDEN * np.uint64((stream << 32) + row + 1))


@jit
def _draw(key, k):  # pragma: no cover - compiled
    """Draw ``k`` (uint64) of a row."""
    return _mix(key + GOLDEN * np.uint64(k + 1))


@jit
def _high(w):  # pragma: no cover - compiled
    """A float32 uniform in [0, 1) from the top 24 bits of ``w``."""
    return np.float32(np.int64(w >> np.uint64(40))) * UNIT


@jit
def _low(w):  # pragma: no cover - compiled
    """A float32 uniform in [0, 1) from bits 16-39 of ``w`` (independent of :func:`_high`)."""
    return np.float32(np.int64((w >> np.uint64(16)) & np.uint64(0xFFFFFF))) * UNIT


@jit
def _whole_power(x, e):  # pragma: no cover - compiled
    """x ** e for a whole number e >= 1, by squaring (float32, a few ulps)."""
    out = np.float32(1.0)
    while e:
        if e & 1:
            out *= x
        x *= x
        e >>= 1
    return out


@jit
def _clip(x):  # pragma: no cover - compiled
    x = np.float32(0.0) if x < np.float32(0.0) else x
    return np.float32(1.0) if x > np.float32(1.0) else x


# --- crossover: gather the crossing genes, take their powers, write both children -------------------------------

@jit
def _crossing_stretch(key, a, b, gene, gene_prob, bits, places, m):  # pragma: no cover - compiled
    """The next stretch of a crossing pair's genes from ``gene`` (parent rows ``a``, ``b``), as long as the buffers
    have room for (``places``: their length): each gene's draw into ``bits[k]`` (k: its place in the stretch), and the
    places of those that cross (drawn w.p. ``gene_prob``, and only where the parents differ) into ``places[m:]``, in
    order. Returns (count, length of the stretch); length 0 when fewer than MIN_ROOM places are left: the buffers
    are to be emptied first. Two loops without branches (a gene's place is written at the count, which moves on
    only where it crosses): the draws vectorise, and no guess about the coin can fail."""
    room = places.shape[0] - m
    if room < MIN_ROOM and m:
        return m, 0
    length = min(a.shape[0] - gene, room)
    for k in range(length):
        bits[k] = _draw(key, gene + k)
    for k in range(length):
        j = gene + k
        places[m] = k
        m += (_high(bits[k]) <= gene_prob) & (abs(a[j] - b[j]) > np.float32(1e-14))
    return m, length


@jit(error_model="numpy")
def _gather_cross(genes, seeds, block, crossover_rate, gene_prob, whole, top, unit, gene, stop, pos, x1, x2, u, t1,
                  t2, swap, bits):  # pragma: no cover - compiled
    """Gather the crossing genes of pairs ``unit`` .. ``stop`` - 1 (from gene ``gene`` of the first) into the
    buffers, as many as they hold. Per gene: ``pos`` its index in the first child, ``x1`` <= ``x2`` the parents'
    values, ``u`` the spread's uniform, ``swap`` the coin, ``t1`` and ``t2`` each side's beta (capped) or, when
    ``whole`` (η + 1, a whole number), beta ** -(η + 1) already. A row goes in stretches that fit the buffers
    (:func:`_crossing_stretch`; ``bits``: its scratch). Returns (count, unit, gene) where to go on."""
    n, g = genes.shape
    m = 0
    half = gene_prob * np.float32(0.5)
    one, two = np.float32(1.0), np.float32(2.0)
    while unit < stop:
        first = 2 * unit
        if first + 1 < n and crossover_rate > np.float32(0.0):
            b = first // block
            q = (first - b * block) // 2  # the pair within its block
            seed = np.uint64(seeds[b])
            if _high(_draw(_row_key(seed, PAIR, 0), q)) < crossover_rate:
                key = _row_key(seed, CROSS, q)
                a, c = genes[first], genes[first + 1]
                while gene < g:
                    held = m
                    m, length = _crossing_stretch(key, a, c, gene, gene_prob, bits, pos, m)
                    if not length:
                        return m, unit, gene
                    for i in range(held, m):
                        k = pos[i]
                        j, w = gene + k, bits[k]
                        lo, hi = min(a[j], c[j]), max(a[j], c[j])
                        span = hi - lo
                        beta1 = min(one + two * lo / span, top)
                        beta2 = min(one + two * (one - hi) / span, top)
                        if whole:
                            beta1 = one / _whole_power(beta1, whole)
                            beta2 = one / _whole_power(beta2, whole)
                        pos[i] = first * g + j
                        x1[i], x2[i], u[i], swap[i], t1[i], t2[i] = lo, hi, _low(w), _high(w) <= half, beta1, beta2
                    gene += length
        unit += 1
        gene = 0
    return m, unit, 0


@jit(error_model="numpy")
def _spread_bases(t, u, m):  # pragma: no cover - compiled
    """In place on t[:m] (beta ** -(η + 1)): the base whose power 1 / (η + 1) is SBX's spread factor."""
    for i in range(m):
        ua = u[i] * (np.float32(2.0) - t[i])
        t[i] = ua if ua <= np.float32(1.0) else np.float32(1.0) / (np.float32(2.0) - ua)


@jit
def _write_cross(flat, g, pos, x1, x2, t1, t2, swap, m):  # pragma: no cover - compiled
    """Both children of each gathered gene (t1, t2: the spread factors), written into ``flat`` (n * G)."""
    for i in range(m):
        middle, span = x1[i] + x2[i], x2[i] - x1[i]
        c1 = _clip((middle - t1[i] * span) * np.float32(0.5))
        c2 = _clip((middle + t2[i] * span) * np.float32(0.5))
        flat[pos[i]] = c2 if swap[i] else c1
        flat[pos[i] + g] = c1 if swap[i] else c2


@jit(error_model="numpy")
def _gather_cross_first(genes, partners, partner_rows, rows, seeds, block, gene_prob, whole, top, i, gene, stop, pos,
                        x1, x2, u, t, upper, bits):  # pragma: no cover - compiled
    """:func:`_gather_cross` for GA children ``rows[i]`` .. ``rows[stop - 1]``, each the first child of its parents'
    SBX (DEAP's ``ind1``): ``genes[c]`` holds child c's first parent, ``partners[partner_rows[c]]`` its second.
    Only the side the child takes is gathered: ``upper`` (the swap coin: the upper child's value), ``t`` that
    side's beta (or its power, when ``whole``). Child c draws from its block's CROSS stream at row c of the block.
    A row goes in stretches that fit the buffers (:func:`_crossing_stretch`; ``bits``: its scratch). Returns
    (count, i, gene) where to go on."""
    n, g = genes.shape
    m = 0
    half = gene_prob * np.float32(0.5)
    one, two = np.float32(1.0), np.float32(2.0)
    while i < stop:
        c = rows[i]
        b = c // block
        key = _row_key(np.uint64(seeds[b]), CROSS, c - b * block)
        a, p = genes[c], partners[partner_rows[c]]
        while gene < g:
            first = m
            m, length = _crossing_stretch(key, a, p, gene, gene_prob, bits, pos, m)
            if not length:
                return m, i, gene
            for q in range(first, m):
                k = pos[q]
                j = gene + k
                w = bits[k]
                lo, hi = min(a[j], p[j]), max(a[j], p[j])
                side = _high(w) <= half
                distance = one - hi if side else lo  # to the bound of the child's side
                beta = min(one + two * distance / (hi - lo), top)
                pos[q] = c * g + j
                x1[q], x2[q], u[q], upper[q] = lo, hi, _low(w), side
                t[q] = one / _whole_power(beta, whole) if whole else beta
            gene += length
        i += 1
        gene = 0
    return m, i, 0


@jit
def _write_cross_first(flat, pos, x1, x2, t, upper, m):  # pragma: no cover - compiled
    """The first child's value of each gathered gene (t: the spread factor of its side), written into ``flat``."""
    for i in range(m):
        middle, step = x1[i] + x2[i], t[i] * (x2[i] - x1[i])
        flat[pos[i]] = _clip((middle + step if upper[i] else middle - step) * np.float32(0.5))


# --- mutation: gather the mutated genes (geometric gaps), take their powers, write them -------------------------

@jit
def _gather_mutation(genes, rows, seeds, block, rate, log_keep, bounded, whole, floor, i, at, k, stop, pos, x, u,
                     t):  # pragma: no cover - compiled
    """Gather the mutated genes of children ``rows[i]`` .. ``rows[stop - 1]`` (the first from position ``at``, draw
    ``k``) into the buffers, as many as they hold: ``pos`` the gene's index in ``genes`` (n, G), ``x`` its value,
    ``u`` its uniform, ``t`` the base of the power 1 / (η + 1) (unscaled), or (bounded) the distance term before its
    power η + 1 (after it, when ``whole``). Returns (count, i, at, k) where to go on."""
    n, g = genes.shape
    m, cap = 0, pos.shape[0]
    while i < stop:
        child = rows[i]
        b = child // block
        key = _row_key(np.uint64(seeds[b]), MUTATE, child - b * block)
        row = genes[child]
        while True:
            if m == cap:
                return m, i, at, k
            if rate >= np.float32(1.0):
                at += 1
            else:
                v = (np.float64(np.int64(_draw(key, k) >> np.uint64(11))) + 1.0) * 2.0 ** -53  # (0, 1]
                k += 1
                skip = math.log(v) / log_keep  # failures before the next mutated gene
                if skip >= g - at:
                    break
                at += 1 + int(skip)
            if at >= g:
                break
            r = _high(_draw(key, k))
            k += 1
            value = row[at]
            low = r < np.float32(0.5)
            if bounded:
                y = max(np.float32(1.0) - value if low else value, floor)
                t[m] = _whole_power(y, whole) if whole else y
            else:
                t[m] = np.float32(2.0) * r if low else np.float32(2.0) * (np.float32(1.0) - r)
            pos[m], x[m], u[m] = child * g + at, value, r
            m += 1
        i += 1
        at, k = -1, 0
    return m, i, -1, 0


@jit
def _bounded_bases(t, u, m):  # pragma: no cover - compiled
    """In place on t[:m] (the distance term to the power η + 1): the bounded mutation's base."""
    for i in range(m):
        r = u[i]
        if r < np.float32(0.5):
            t[i] = np.float32(2.0) * r + (np.float32(1.0) - np.float32(2.0) * r) * t[i]
        else:
            t[i] = np.float32(2.0) * (np.float32(1.0) - r) + np.float32(2.0) * (r - np.float32(0.5)) * t[i]


@jit
def _write_mutation(flat, pos, x, u, t, m):  # pragma: no cover - compiled
    """Each gathered gene moved by its step (t: the base to the power 1 / (η + 1)), written into ``flat``."""
    for i in range(m):
        delta = t[i] - np.float32(1.0) if u[i] < np.float32(0.5) else np.float32(1.0) - t[i]
        flat[pos[i]] = _clip(x[i] + delta)


def _whole(exponent: float) -> int:
    """``exponent`` as an int where it is a whole number in [1, WHOLE_MAX] (taken by squaring), else 0."""
    return int(exponent) if float(exponent).is_integer() and 1 <= exponent <= WHOLE_MAX else 0


def _vary_units(genes: np.ndarray, seeds: np.ndarray, block: int, crossover_rate: np.float32,
                gene_prob: np.float32, cx_eta: np.float32, rate: np.float32, eta: np.float32, bounded: bool,
                start: int, stop: int) -> None:
    """Pairs ``start`` .. ``stop`` - 1 of ``genes`` (n, G): crossover, then mutation of their children."""
    n, g = genes.shape
    flat = genes.reshape(-1)
    f32 = np.float32
    pos = np.empty(BUFFER, np.int64)
    a, b, u, t1, t2 = (np.empty(BUFFER, np.float32) for _ in range(5))
    if crossover_rate > 0:
        swap = np.empty(BUFFER, np.bool_)
        bits = np.empty(BUFFER, np.uint64)
        eta1 = f32(cx_eta + f32(1.0))
        whole, power = _whole(eta1), f32(f32(1.0) / eta1)
        top = f32(TINY ** -power)
        unit, gene = start, 0
        while unit < stop:
            m, unit, gene = _gather_cross(genes, seeds, block, crossover_rate, gene_prob, whole, top, unit, gene,
                                          stop, pos, a, b, u, t1, t2, swap, bits)
            if not m:
                continue
            for t in (t1[:m], t2[:m]):
                if not whole:
                    np.power(t, -eta1, out=t)
                _spread_bases(t, u, m)
                np.power(t, power, out=t)
            _write_cross(flat, g, pos, a, b, t1, t2, swap, m)
    if rate > 0:
        _mutate_rows(genes, np.arange(2 * start, min(2 * stop, n)), seeds, block, rate, eta, bounded, pos, a, u, t1)


def _mutate_rows(genes: np.ndarray, rows: np.ndarray, seeds: np.ndarray, block: int, rate: np.float32,
                 eta: np.float32, bounded: bool, pos: np.ndarray, x: np.ndarray, u: np.ndarray, t: np.ndarray) -> None:
    """Polynomial mutation of children ``rows`` (int64, ascending) of ``genes`` (n, G) in place, each gene with
    probability ``rate``; ``pos``, ``x``, ``u``, ``t``: the buffers."""
    f32 = np.float32
    flat = genes.reshape(-1)
    eta1 = f32(eta + f32(1.0))
    whole, power = _whole(eta1), f32(f32(1.0) / eta1)
    floor = f32(TINY ** power)
    log_keep = math.log1p(-float(rate)) if rate < 1 else -1.0
    i, at, k, last = 0, -1, 0, len(rows)
    while i < last:
        m, i, at, k = _gather_mutation(genes, rows, seeds, block, rate, log_keep, bounded, whole, floor, i, at, k,
                                       last, pos, x, u, t)
        if not m:
            continue
        tm = t[:m]
        if bounded:
            if not whole:
                np.power(tm, eta1, out=tm)
            _bounded_bases(tm, u, m)
        np.power(tm, power, out=tm)
        _write_mutation(flat, pos, x, u, tm, m)


def vary_blocks(children: torch.Tensor, seeds: np.ndarray, block: int, *, crossover_rate: float, crossover_eta: float,
                rate: float, eta: float, variant: str, gene_prob: float = 0.5,
                threads: Optional[int] = None) -> torch.Tensor:
    """Vary ``children`` (n, G) float32, contiguous, on the CPU, in place and return it: block j (children
    ``j * block`` .. ``(j + 1) * block - 1``, block even) draws from ``seeds[j]``; pairs cross with probability
    ``crossover_rate``, then every gene mutates with probability ``rate``. Split over up to ``threads`` threads
    (the same bits for any number)."""
    if variant not in ("unscaled", "bounded"):
        raise ValueError(f"unknown polynomial mutation variant {variant!r}")
    if block % 2:
        raise ValueError(f"blocks of children hold whole pairs: {block} is odd")
    n, g = children.shape
    if n == 0 or g == 0:
        return children
    genes = children.numpy()  # a view: children is written in place
    seeds = np.ascontiguousarray(seeds, dtype=np.int64).view(np.uint64)
    f32 = np.float32
    settings = (f32(crossover_rate), f32(gene_prob), f32(crossover_eta), f32(min(rate, 1.0)), f32(eta),
                variant == "bounded")
    split(lambda a, b: _vary_units(genes, seeds, block, *settings, a, b), (n + 1) // 2, n * g, MIN_VALUES_A_THREAD,
          threads)
    return children


def _ga_units(genes: np.ndarray, partners: np.ndarray, partner_rows: np.ndarray, crossing: np.ndarray,
              mutating: np.ndarray, seeds: np.ndarray, block: int, gene_prob: np.float32, cx_eta: np.float32,
              rate: np.float32, eta: np.float32, bounded: bool) -> None:
    """GA children ``crossing`` (int64, ascending) cross with their partners, ``mutating`` mutate, in place."""
    f32 = np.float32
    flat = genes.reshape(-1)
    pos = np.empty(BUFFER, np.int64)
    a, b, u, t = (np.empty(BUFFER, np.float32) for _ in range(4))
    if crossing.size:
        upper = np.empty(BUFFER, np.bool_)
        bits = np.empty(BUFFER, np.uint64)
        eta1 = f32(cx_eta + f32(1.0))
        whole, power = _whole(eta1), f32(f32(1.0) / eta1)
        top = f32(TINY ** -power)
        i, gene, last = 0, 0, len(crossing)
        while i < last:
            m, i, gene = _gather_cross_first(genes, partners, partner_rows, crossing, seeds, block, gene_prob, whole,
                                             top, i, gene, last, pos, a, b, u, t, upper, bits)
            if not m:
                continue
            tm = t[:m]
            if not whole:
                np.power(tm, -eta1, out=tm)
            _spread_bases(tm, u, m)
            np.power(tm, power, out=tm)
            _write_cross_first(flat, pos, a, b, tm, upper, m)
    if mutating.size and rate > 0:
        _mutate_rows(genes, mutating, seeds, block, rate, eta, bounded, pos, a, u, t)


def ga_children(population: torch.Tensor, ops: np.ndarray, parents: np.ndarray, seeds: np.ndarray, block: int, *,
                crossover_eta: float, rate: float, eta: float, variant: str, gene_prob: float = 0.5,
                threads: Optional[int] = None) -> torch.Tensor:
    """(n, G) float32 children of a GA plan (DEAP's varOr), on the CPU: child c is ``population[parents[c, 0]]``,
    crossed with ``population[parents[c, 1]]`` where ``ops[c]`` is 0 (the first child of a bounded SBX, each gene
    with probability ``gene_prob``), mutated where it is 1 (polynomial, each gene with probability ``rate``), a copy
    where it is 2. population (P, G) float32 on the CPU; ops (n,) int; parents (n, 2) int (-1: none). Child c draws
    from the counter-based streams of its block (``seeds[c // block]``) at its row in the block: the same bits
    for any number of threads, pieces or workers."""
    if variant not in ("unscaled", "bounded"):
        raise ValueError(f"unknown polynomial mutation variant {variant!r}")
    ops, parents = np.asarray(ops), np.asarray(parents, dtype=np.int64).reshape(-1, 2)
    population = population.detach().to("cpu", torch.float32).contiguous()
    children = population.index_select(0, torch.from_numpy(parents[:, 0].copy()))  # (n, G): new rows
    n, g = children.shape
    if n == 0 or g == 0:
        return children
    genes, partners = children.numpy(), population.numpy()
    partner_rows = np.ascontiguousarray(parents[:, 1])
    seeds = np.ascontiguousarray(seeds, dtype=np.int64).view(np.uint64)
    crossing, mutating = np.flatnonzero(ops == 0), np.flatnonzero(ops == 1)
    f32 = np.float32
    settings = (f32(gene_prob), f32(crossover_eta), f32(min(rate, 1.0)), f32(eta), variant == "bounded")

    def unit(a: int, b: int) -> None:
        rows = [r[np.searchsorted(r, a):np.searchsorted(r, b)] for r in (crossing, mutating)]
        _ga_units(genes, partners, partner_rows, *rows, seeds, block, *settings)

    split(unit, n, n * g, MIN_VALUES_A_THREAD, threads)
    return children
