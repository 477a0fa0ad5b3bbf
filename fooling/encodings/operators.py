"""Vectorised real-valued variation operators over a whole population.

Each works on genes (N, G) in [0, 1], so one call mutates every gene of every child. Two
implementations with the same distributions:
- torch (:func:`polynomial_mutation_torch`, :func:`sbx_crossover_torch`): a float tensor on the
  run's device, drawing from a ``torch.Generator`` on that device. The direct encoding's genomes
  live on the device and vary there, with no per-individual Python and no host round trip.
- numpy (:func:`polynomial_mutation`, :func:`sbx_crossover`): a float array and a numpy Generator
  (CPPN weights, which are host objects). ``polynomial_mutation`` also takes a tensor and a torch
  Generator, and then calls the torch version.
DEAP's per-gene ``mutPolynomialBounded`` and ``cxSimulatedBinaryBounded`` are the reference the
tests compare against in distribution.

The random draws happen in one thread, in a fixed order; the arithmetic that follows is split over
a few threads for big populations (numpy releases the GIL in its loops). Every gene's value is
computed by the same elementwise operations whichever thread does it, so the results do not depend
on the number of threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Union

import numpy as np
import torch

from ..hostwork import on_host

PARALLEL_MIN = 1 << 18  # genes to vary below which one thread does it all (threads cost ~0.1 ms)
_pool: Optional[ThreadPoolExecutor] = None
_pool_pid = -1


def _threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def _in_parallel(work: Callable[[slice], None], n: int) -> None:
    """Call ``work(part)`` on slices that cover [0, n): on a few threads when n is big, else on this one."""
    global _pool, _pool_pid
    threads = _threads() if n >= PARALLEL_MIN else 1
    if threads == 1:
        work(slice(0, n))
        return
    if _pool is None or _pool_pid != os.getpid():  # a forked child cannot use its parent's threads
        _pool, _pool_pid = ThreadPoolExecutor(max_workers=3, thread_name_prefix="fooling-vary"), os.getpid()
    step = -(-n // threads)
    parts = [slice(start, min(start + step, n)) for start in range(0, n, step)]
    futures = [_pool.submit(work, part) for part in parts[1:]]
    work(parts[0])
    for future in futures:
        future.result()


def bernoulli_positions(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices in [0, n) each chosen independently with probability ``rate``.

    Draws the gaps between chosen positions (geometric) instead of one uniform per
    position: about n·rate draws rather than n, the same distribution.
    """
    if rate <= 0.0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if rate >= 1.0:
        return np.arange(n)
    chunks, end = [], -1
    while end < n:
        expected = (n - end) * rate
        gaps = rng.geometric(rate, size=int(expected + 6.0 * np.sqrt(expected) + 16))
        positions = end + np.cumsum(gaps)
        chunks.append(positions)
        end = int(positions[-1])
    positions = np.concatenate(chunks)
    return positions[positions < n]


def polynomial_mutation(
    genes: Union[np.ndarray, torch.Tensor], rng: Union[np.random.Generator, torch.Generator], rate: float,
    eta: float, variant: str = "bounded"
) -> Union[np.ndarray, torch.Tensor]:
    """Polynomial mutation in place on (N, G) genes in [0, 1]; returns ``genes``.

    A tensor with a torch Generator goes to :func:`polynomial_mutation_torch`.

    Each gene mutates with probability ``rate``. ``variant``:
    - "bounded": Deb's bounded form (DEAP's ``mutPolynomialBounded``), the step
      shrinks near a bound so children stay inside [0, 1] without piling up there.
    - "unscaled": the original fooling/Sferes2 form, δ = (2u)^(1/(η+1)) − 1 or
      1 − (2(1−u))^(1/(η+1)), added to the gene and then clamped to [0, 1].
    """
    if isinstance(genes, torch.Tensor):
        return polynomial_mutation_torch(genes, rng, rate, eta, variant)
    flat = genes.reshape(-1)
    idx = bernoulli_positions(flat.shape[0], rate, rng)
    if idx.size == 0:
        return genes
    u = rng.random(idx.size)
    power = 1.0 / (eta + 1.0)
    if variant not in ("unscaled", "bounded"):
        raise ValueError(f"unknown polynomial mutation variant {variant!r}")

    def work(part: slice) -> None:
        where, uu = idx[part], u[part]
        x = flat[where].astype(np.float64)
        low = uu < 0.5
        # Each branch of the formulas below is a power of a base that depends on the branch: pick the
        # base first and take one power per gene (the same numbers as evaluating both, half the work).
        if variant == "unscaled":
            base = np.where(low, 2.0 * uu, 2.0 * (1.0 - uu))
        else:
            xy = np.where(low, 1.0 - x, x)  # 1 minus the distance to the bound the step heads for
            xy **= eta + 1.0
            base = np.where(low, 2.0 * uu + (1.0 - 2.0 * uu) * xy, 2.0 * (1.0 - uu) + 2.0 * (uu - 0.5) * xy)
        base **= power
        delta = np.where(low, base - 1.0, 1.0 - base)
        flat[where] = np.clip(x + delta, 0.0, 1.0)

    _in_parallel(work, idx.size)
    return genes


def sbx_crossover(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, eta: float, gene_prob: float = 0.5
) -> None:
    """Bounded simulated binary crossover in place on paired rows a[i] x b[i], genes in [0, 1].

    Follows Deb's bounded SBX as DEAP's ``cxSimulatedBinaryBounded`` does: each gene
    crosses with probability ``gene_prob`` (when the parents differ), and the two
    children's values are swapped with probability 1/2.
    """
    if not (a.flags.c_contiguous and b.flags.c_contiguous):
        raise ValueError("sbx_crossover works in place on C-contiguous arrays")
    cross = rng.random(a.shape, dtype=np.float32) <= gene_prob
    idx = np.flatnonzero(cross)
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)  # views: a and b are contiguous rows of genes
    pa, pb = flat_a[idx], flat_b[idx]
    differ = np.abs(pa - pb) > 1e-14  # only genes where the parents differ cross
    if not differ.all():
        idx, pa, pb = idx[differ], pa[differ], pb[differ]
    if idx.size == 0:
        return
    u = rng.random(idx.size, dtype=pa.dtype)
    swap = rng.random(idx.size, dtype=np.float32) <= 0.5
    power = 1.0 / (eta + 1.0)

    def work(part: slice) -> None:
        x1, x2 = np.minimum(pa[part], pb[part]), np.maximum(pa[part], pb[part])  # float32, like the genes
        uu, span = u[part], x2 - x1

        def spread(beta: np.ndarray) -> np.ndarray:
            alpha = 2.0 - beta ** -(eta + 1.0)
            ua = uu * alpha
            # (u·α)^p where u <= 1/α, else (1/(2 − u·α))^p: choose the base, then one power per gene
            base = np.where(uu <= 1.0 / alpha, ua, 1.0 / (2.0 - ua))
            base **= power
            return base

        c1 = np.clip(0.5 * (x1 + x2 - spread(1.0 + 2.0 * x1 / span) * span), 0.0, 1.0)
        c2 = np.clip(0.5 * (x1 + x2 + spread(1.0 + 2.0 * (1.0 - x2) / span) * span), 0.0, 1.0)
        where, sw = idx[part], swap[part]
        flat_a[where] = np.where(sw, c2, c1)
        flat_b[where] = np.where(sw, c1, c2)

    _in_parallel(work, idx.size)


# --- torch, on the run's device ------------------------------------------------------------------------------

TINY = 1e-30  # powers below this change nothing in float32 sums with terms >= 1e-22; kept from going subnormal


def _positions_cpu(mask: torch.Tensor) -> torch.Tensor:
    """(K,) int64 positions of the True values of a 1-D bool CPU tensor, in order: torch.nonzero's result, by
    numpy (several times faster than torch.nonzero on tens of thousands of values on a CPU)."""
    return torch.from_numpy(np.flatnonzero(mask.numpy()))


def bernoulli_positions_torch(n: int, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Sorted int64 indices in [0, n) on the generator's device, each chosen independently with probability ``rate``.

    Draws the gaps between chosen positions (geometric): about n·rate draws rather than n. Reads the
    last position back to know when it has covered [0, n), so it suits the CPU (see
    :func:`polynomial_mutation_torch`).
    """
    device = generator.device
    if rate <= 0.0 or n == 0:
        return torch.empty(0, dtype=torch.long, device=device)
    if rate >= 1.0:
        return torch.arange(n, device=device)
    chunks, end = [], -1
    while end < n:
        expected = (n - end) * rate
        size = int(expected + 6.0 * expected ** 0.5 + 16)
        gaps = torch.empty(size, dtype=torch.float64, device=device).geometric_(rate, generator=generator)
        positions = end + torch.cumsum(gaps.to(torch.long), 0)
        chunks.append(positions)
        end = int(positions[-1])
    positions = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
    return positions[:int((positions < n).sum())]  # sorted: a slice, not a boolean gather


def _polynomial_delta(x: torch.Tensor, u: torch.Tensor, eta: float, variant: str) -> torch.Tensor:
    """The polynomial step for genes ``x`` and uniforms ``u`` in [0, 1) (same shape)."""
    low = u < 0.5
    power = 1.0 / (eta + 1.0)
    if variant == "unscaled":
        base = torch.where(low, 2.0 * u, 2.0 * (1.0 - u))
    else:
        # 1 minus the distance to the bound the step heads for, to the power η+1 (at least TINY: see _sbx_children)
        xy = torch.where(low, 1.0 - x, x).clamp_(min=TINY ** (1.0 / (eta + 1.0))).pow_(eta + 1.0)
        base = torch.where(low, 2.0 * u + (1.0 - 2.0 * u) * xy, 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * xy)
    base.pow_(power)
    return torch.where(low, base - 1.0, 1.0 - base)


def polynomial_mutation_torch(
    genes: torch.Tensor, generator: torch.Generator, rate: float, eta: float, variant: str = "bounded"
) -> torch.Tensor:
    """Polynomial mutation in place on (N, G) float genes in [0, 1] (a tensor on ``generator``'s device); returns them.

    Each gene mutates with probability ``rate``; ``variant`` as in :func:`polynomial_mutation`.
    On the CPU only the chosen genes are drawn and computed (geometric gaps, about N·G·rate draws);
    elsewhere (CUDA) one uniform u per gene decides (u < rate) and, scaled (u / rate, uniform given
    u < rate), drives the step: no host synchronisation, no compaction. Either way the distribution is
    the per-gene one of DEAP's ``mutPolynomialBounded`` (bounded) or the original code's (unscaled).
    """
    if variant not in ("unscaled", "bounded"):
        raise ValueError(f"unknown polynomial mutation variant {variant!r}")
    if rate <= 0.0 or genes.numel() == 0:
        return genes
    flat = genes.view(-1)
    if on_host(genes.device):
        idx = bernoulli_positions_torch(flat.numel(), rate, generator)
        if idx.numel() == 0:
            return genes
        u = torch.rand(idx.numel(), generator=generator, device=genes.device, dtype=genes.dtype)
        x = flat.index_select(0, idx)
        flat.index_copy_(0, idx, (x + _polynomial_delta(x, u, eta, variant)).clamp_(0.0, 1.0))
        return genes
    u = torch.rand(flat.shape, generator=generator, device=genes.device, dtype=genes.dtype)
    chosen = u < rate
    if rate < 1.0:
        u.div_(rate)
    moved = (flat + _polynomial_delta(flat, u, eta, variant)).clamp_(0.0, 1.0)
    flat.copy_(torch.where(chosen, moved, flat))
    return genes


def _sbx_children(x1: torch.Tensor, x2: torch.Tensor, u: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Deb's bounded SBX children (c1 <= c2) of parent values x1 < x2 in [0, 1], for uniforms ``u`` (same shape)."""
    span = x2 - x1
    power = 1.0 / (eta + 1.0)
    # beta^-(η+1) below 1e-30 leaves α = 2 exactly in float32; capping beta there keeps the powers out of
    # subnormal numbers, which x86 computes ~50× slower
    top = TINY ** -power

    def spread(beta: torch.Tensor) -> torch.Tensor:
        alpha = 2.0 - beta.clamp_(max=top).pow_(-(eta + 1.0))
        ua = u * alpha
        # (u·α)^p where u <= 1/α, else (1/(2 − u·α))^p
        return torch.where(u * alpha <= 1.0, ua, (2.0 - ua).reciprocal_()).pow_(power)

    middle = x1 + x2
    c1 = (middle - spread(1.0 + 2.0 * x1 / span) * span).mul_(0.5).clamp_(0.0, 1.0)
    c2 = (middle + spread(1.0 + 2.0 * (1.0 - x2) / span) * span).mul_(0.5).clamp_(0.0, 1.0)
    return c1, c2


def sbx_crossover_torch(
    a: torch.Tensor, b: torch.Tensor, generator: torch.Generator, eta: float, gene_prob: float = 0.5,
    rows: Optional[torch.Tensor] = None,
) -> None:
    """Bounded SBX in place on paired rows a[i] x b[i] (float tensors (P, G), genes in [0, 1]).

    As DEAP's ``cxSimulatedBinaryBounded``: each gene crosses with probability ``gene_prob`` (when the
    parents differ) and the two children's values are swapped with probability 1/2. rows: optional
    (P,) bool, the pairs that cross at all (the others are left as they are, and draw nothing on the
    CPU). Per gene, r decides crossing (r <= gene_prob) and the swap (r <= gene_prob / 2, a fair coin
    given a crossing, independent of the spread's uniform u).
    On the CPU only the crossing genes are computed (compacted); elsewhere (CUDA) everything is
    computed densely and selected, with no host synchronisation.
    """
    if on_host(a.device):
        chosen = torch.arange(a.shape[0]) if rows is None else torch.nonzero(rows).squeeze(1)
        if chosen.numel() == 0:
            return
        pa_rows, pb_rows = a.index_select(0, chosen), b.index_select(0, chosen)  # (C, G) copies
        r = torch.rand(pa_rows.shape, generator=generator, dtype=a.dtype)
        flat_a, flat_b = pa_rows.view(-1), pb_rows.view(-1)
        idx = _positions_cpu(((r <= gene_prob) & ((pa_rows - pb_rows).abs() > 1e-14)).view(-1))
        if idx.numel() == 0:
            return
        pa, pb = flat_a.index_select(0, idx), flat_b.index_select(0, idx)
        u = torch.rand(idx.numel(), generator=generator, dtype=a.dtype)
        swap = r.view(-1).index_select(0, idx) <= 0.5 * gene_prob
        c1, c2 = _sbx_children(torch.minimum(pa, pb), torch.maximum(pa, pb), u, eta)
        flat_a.index_copy_(0, idx, torch.where(swap, c2, c1))
        flat_b.index_copy_(0, idx, torch.where(swap, c1, c2))
        a.index_copy_(0, chosen, pa_rows)
        b.index_copy_(0, chosen, pb_rows)
        return
    r = torch.rand(a.shape, generator=generator, device=a.device, dtype=a.dtype)
    u = torch.rand(a.shape, generator=generator, device=a.device, dtype=a.dtype)
    x1, x2 = torch.minimum(a, b), torch.maximum(a, b)
    cross = (r <= gene_prob) & (x2 - x1 > 1e-14)  # only genes where the parents differ cross
    if rows is not None:
        cross &= rows.view(-1, 1)
    x2 = torch.where(cross, x2, x1 + 1.0)  # no division by zero where nothing crosses
    c1, c2 = _sbx_children(x1, x2, u, eta)
    swap = r <= 0.5 * gene_prob
    new_a = torch.where(cross, torch.where(swap, c2, c1), a)
    new_b = torch.where(cross, torch.where(swap, c1, c2), b)
    a.copy_(new_a)
    b.copy_(new_b)


def sbx_pairs_torch(
    children: torch.Tensor, rows: torch.Tensor, generator: torch.Generator, eta: float, gene_prob: float = 0.5,
) -> None:
    """:func:`sbx_crossover_torch` in place on the pairs (children[2p], children[2p + 1]) with ``rows[p]`` True.

    children: contiguous (N, G); rows: (N // 2,) bool. On the CPU the crossing genes are found in the chosen
    pairs and read and written straight in ``children`` (no copies of whole rows); elsewhere the dense form.
    """
    pairs = len(rows)
    if not on_host(children.device):
        sbx_crossover_torch(children[0:2 * pairs:2], children[1:2 * pairs:2], generator, eta, gene_prob, rows=rows)
        return
    genes = children.shape[1]
    chosen = torch.nonzero(rows).squeeze(1)
    if chosen.numel() == 0:
        return
    flat = children.view(-1)
    r = torch.rand((chosen.numel(), genes), generator=generator, dtype=children.dtype)
    starts = (2 * genes) * chosen  # where each chosen pair's first child starts in ``flat``
    k = _positions_cpu((r <= gene_prob).view(-1))
    pos = starts.index_select(0, k // genes) + k % genes
    pa, pb = flat.index_select(0, pos), flat.index_select(0, pos + genes)
    differ = (pa - pb).abs_() > 1e-14  # only genes where the parents differ cross
    if not bool(differ.all()):
        keep = _positions_cpu(differ)
        k, pos, pa, pb = k.index_select(0, keep), pos.index_select(0, keep), pa.index_select(0, keep), \
            pb.index_select(0, keep)
    if pos.numel() == 0:
        return
    u = torch.rand(pos.numel(), generator=generator, dtype=children.dtype)
    swap = r.view(-1).index_select(0, k) <= 0.5 * gene_prob
    c1, c2 = _sbx_children(torch.minimum(pa, pb), torch.maximum(pa, pb), u, eta)
    flat.index_copy_(0, pos, torch.where(swap, c2, c1))
    flat.index_copy_(0, pos + genes, torch.where(swap, c1, c2))
