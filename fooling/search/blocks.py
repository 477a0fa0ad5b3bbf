"""Variation of direct genomes in fixed-size seeded blocks: a small :class:`Plan` and a pure :func:`realise`.

A strategy working on direct genomes (MAP-Elites, snes-elites, the GA) splits each generation's ask() in two:
  plan     what to vary, drawn on the driver from the strategy's generators: parent cells (N,), one seed per
           block of children (:func:`block_size` children, a power of two from the population alone, or one
           emitter's children for snes-elites: a size that never depends on how many workers there are);
  realise  the children of a plan, or of a piece of it cut on block boundaries (:meth:`Plan.piece`), from
           the seeds alone: block j varies with a torch Generator seeded by ``seeds[j]``, or, for MAP-Elites'
           and the GA's plans on the CPU, from counter-based draws keyed by it (:data:`COUNTER_VARIATION`); off
           the CPU MAP-Elites and the GA vary the generation at once from its first block's seed
           (:data:`WHOLE_VARIATION`).
The in-process run realises the whole plan; with ``--workers`` each Ray actor realises its own piece from the
same plan, parents read from its mirrored copy of the elites, so children, and the run, are the same bit for
bit for any number of workers (on CPU; on CUDA, as far as the device's kernels are deterministic).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..hostwork import on_host
from .noise import block_noise

VARY_BLOCK = 32  # the fewest children per seeded block of MAP-Elites / GA / random variation
MAX_BLOCKS = 16  # a generation is cut into at most about this many blocks (the per-block cost is fixed)
SEED_BOUND = 2**63 - 1
VARIATION = "blocks-1"  # recorded in checkpoints: the random stream of direct variation
# MAP-Elites' "vary" and the GA's "ga" plans on the CPU: the same blocks and seeds, each block's draws from the
# counter-based generator of :mod:`fooling.encodings.vary_cpu` instead of a torch Generator seeded by the block's seed
COUNTER_VARIATION = f"{VARIATION}+counters"
# the GA's "ga" plans off the CPU (CUDA) for a generation too big to vary at once (and runs begun so): each block's
# children at once, its crossovers in one batched SBX and its mutants in one batched mutation from the block's torch
# Generator, instead of a crossover or mutation per child
DENSE_VARIATION = f"{VARIATION}+dense"
# MAP-Elites' "vary" and the GA's "ga" plans off the CPU (CUDA): the generation's children varied at once, as one
# batch drawing from a torch Generator seeded by its first block's seed, instead of some 80 dense ops a block (a
# piece varies a generation-sized batch that holds its parents in its place, and keeps its rows: every draw and
# every op is a pair's, a child's or a gene's own, so the other rows' values change nothing of it)
WHOLE_VARIATION = f"{VARIATION}+whole"
# ... for generations of at most this many genes (children x genes per child): the dense ops' temporaries come to
# about eight times the children (some 4 GB at this size); bigger generations (say 2,000 children at 256 px) are
# varied block by block (VARIATION), as before, so that a GPU of modest memory still runs them. A pure function of
# the run's settings, so a resumed run takes the same path.
WHOLE_MAX_GENES = 1 << 27


def varies_whole(counters: bool, children: int, genes: int) -> bool:
    """Whether a strategy's generations of ``children`` device genomes of ``genes`` genes are varied at once
    (:data:`WHOLE_VARIATION`): off the CPU (where its counter-based passes are not used), up to
    :data:`WHOLE_MAX_GENES`."""
    return not counters and children * genes <= WHOLE_MAX_GENES


@dataclass
class Plan:
    """One generation (or a piece of it) of direct children, cheap to ship.

    kind: "random" (uniform genes), "vary" (crossover + mutation of elites ``parents`` (n,) int64 cells),
    "ga" (child i: ``ops[i]`` 0 crossover of parents[i, 0] and parents[i, 1] (the first child kept), 1 mutation
    of parents[i, 0], 2 a copy of it; parents index the GA's population; DEAP's varOr: child after child, or
    ``counters`` on the CPU, ``whole`` (the generation at once) or ``dense`` (a block's crossovers, then its
    mutants, at once) elsewhere) or
    "snes" (emitter ``cells`` (k,) sample ``per`` mirrored children each around ``mean`` (k, G) with step
    sizes ``sigma`` (k, D) on a grid ``scale`` times coarser; or, for an in-process plan on the CPU,
    around rows read where they lie: ``in_place``). seeds (blocks,) int64: one per block of ``block``
    children (the last may be short).
    """

    kind: str
    n: int
    block: int
    seeds: np.ndarray
    generation: int = 0
    parents: Any = None  # "vary": (n,) cells, a host array or a device tensor; "ga": (n, 2), -1: none
    ops: Any = None  # "ga": (n,) int8
    cells: Any = None  # "snes": (k,) emitter cells
    mean: Any = None  # "snes": (k, G) float32
    sigma: Any = None  # "snes": (k, D) float32
    scale: int = 1
    in_place: Optional["InPlace"] = None  # "snes" without ``mean`` and ``sigma``: never cut into pieces
    counters: bool = False  # "vary", "ga": blocks varied on the CPU from counter-based draws (else by torch, per block)
    dense: bool = False  # "ga" off the CPU: each block's children varied at once (else child after child)
    whole: bool = False  # "vary", "ga" off the CPU: the generation's children varied at once (else by block)
    extra: dict = field(default_factory=dict)
    # "snes" on a device that draws a generation's noise at once (:mod:`.noise`): where this piece's blocks
    # start among the generation's, how many it has, and its first block seed (None: this is the whole plan)
    first_block: int = 0
    total_blocks: Optional[int] = None
    draw_seed: Optional[int] = None
    total: Optional[int] = None  # a piece's generation: its children (None: this is the whole plan)

    def piece(self, start: int, stop: int) -> "Plan":
        """The part of the plan for children [start, stop): start a multiple of :attr:`block`, stop too or n;
        host arrays only (what travels)."""
        if start % self.block or (stop % self.block and stop != self.n):
            raise ValueError(f"piece [{start}, {stop}) is not on blocks of {self.block}")
        if self.in_place is not None:
            raise ValueError("a plan that reads its rows in place is not cut into pieces: gather them")
        first, last = start // self.block, -(-stop // self.block)
        out = replace(self, n=stop - start, seeds=np.asarray(self.seeds[first:last]),
                      first_block=self.first_block + first, total_blocks=self.total_blocks or len(self.seeds),
                      draw_seed=self.draw_seed if self.draw_seed is not None or not len(self.seeds)
                      else int(self.seeds[0]), total=self.total or self.n)
        if self.kind in ("vary", "ga"):
            out.parents = _host(self.parents[start:stop])
        if self.kind == "ga":
            out.ops = _host(self.ops[start:stop])
        elif self.kind == "snes":
            out.cells = _host(self.cells[first:last])
            out.mean = _host(self.mean[first:last])
            out.sigma = _host(self.sigma[first:last])
        return out

    def nbytes(self) -> int:
        """Bytes of the plan's arrays (what dominates its serialised size)."""
        return sum(int(np.asarray(_host(a)).nbytes) for a in (self.seeds, self.parents, self.ops, self.cells,
                                                               self.mean, self.sigma) if a is not None)


@dataclass(frozen=True)
class InPlace:
    """Where the rows of an in-process "snes" plan lie, read there by the CPU's compiled pass instead of gathered
    (:func:`one_pass`): emitter i (of cell ``cells[i]``) samples around ``elites[elite_rows[i]]`` where that is
    >= 0 (a restarting emitter: its cell's elite) and ``means[cells[i]]`` otherwise, with step sizes
    ``sigma[cells[i]]``. means (cells, G), sigma (cells, D), elites (R, G) float32; elite_rows (k,) int64."""

    means: torch.Tensor
    sigma: torch.Tensor
    elites: torch.Tensor
    elite_rows: np.ndarray


def _host(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def block_size(n: int) -> int:
    """Children per block for a generation of ``n``: the least power of two >= VARY_BLOCK that cuts it into at
    most MAX_BLOCKS blocks (even, so crossover pairs stay inside; a power of two, so CPU chunks of 256
    images cut on block boundaries; a block is also the least piece an actor is given)."""
    block = VARY_BLOCK
    while block * MAX_BLOCKS < n:
        block *= 2
    return block


def blocked(kind: str, n: int, rng: np.random.Generator, generation: int, **fields: Any) -> Plan:
    """A plan of ``n`` children in blocks of :func:`block_size`, one seed each from ``rng``."""
    block = block_size(n)
    return Plan(kind, n, block, seeds(rng, n, block), generation, **fields)


def seeds(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """(ceil(n / block),) int64 seeds drawn from the driver's numpy generator."""
    return rng.integers(SEED_BOUND, size=-(-n // block), dtype=np.int64)


def block_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def realise(plan: Plan, encoding: Any, elites: Optional[Callable[[Any], torch.Tensor]] = None
            ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(children (n, G) float32 on the encoding's device, snes noise (k, per, D) or None) of ``plan``; an
    in-place "snes" plan's noise is its draws alone (k, per / 2, D), the mirrored half unwritten (nothing reads it).

    elites: parent indices -> a fresh (len, G) batch of those parents (the archive's elites or the GA's
    population; an actor's mirror), for "vary" and "ga".
    """
    device = encoding.device
    if plan.kind == "snes":
        return _snes(plan, encoding, device)
    bounds = [(j * plan.block, min(plan.n, (j + 1) * plan.block)) for j in range(len(plan.seeds))]
    if plan.kind == "random":
        parts = [encoding.random(b - a, block_generator(s, device)) for (a, b), s in zip(bounds, plan.seeds)]
        return _cat(parts, encoding), None
    if plan.kind == "vary" and plan.counters:
        children = elites(plan.parents)  # a fresh batch: varied in place (on the CPU, wherever it lies)
        here = children if on_host(children.device) else children.cpu()
        varied = encoding.vary_blocks(here.contiguous(), plan.seeds, plan.block, plan.generation)
        return varied.to(device), None
    if plan.kind == "vary" and plan.whole:
        return _vary_whole(plan, encoding, elites), None
    if plan.kind == "vary":
        children = elites(plan.parents)  # a fresh batch: varied in place, block by block
        for (a, b), s in zip(bounds, plan.seeds):
            block = children[a:b]
            varied = encoding.vary_owned(block, block_generator(s, device), plan.generation)
            if varied.data_ptr() != block.data_ptr():  # varied a copy (the batch was not as the encoding wants it)
                block.copy_(varied)
        return children, None
    if plan.kind == "ga" and plan.counters:
        parents = np.asarray(plan.parents, dtype=np.int64)
        used = np.unique(parents[parents >= 0])  # each parent fetched once, then indexed by its place in ``used``
        places = np.where(parents >= 0, np.searchsorted(used, parents), -1)
        population = elites(used)
        here = population if on_host(population.device) else population.cpu()
        children = encoding.ga_blocks(here, np.asarray(plan.ops), places, plan.seeds, plan.block, plan.generation)
        return children.to(device), None
    if plan.kind == "ga" and plan.whole:
        return _ga_whole(plan, encoding, elites), None
    if plan.kind == "ga" and plan.dense:
        parts = [_ga_block(np.asarray(plan.ops[a:b]), np.asarray(plan.parents[a:b], dtype=np.int64),
                           block_generator(s, device), encoding, elites, plan.generation)
                 for (a, b), s in zip(bounds, plan.seeds)]
        return _cat(parts, encoding), None
    if plan.kind == "ga":
        parts = []
        for (a, b), s in zip(bounds, plan.seeds):
            generator = block_generator(s, device)
            for op, (i, j) in zip(plan.ops[a:b], plan.parents[a:b]):
                if op == 0:
                    child = encoding.crossover(elites([i]), elites([j]), generator)[0]
                elif op == 1:
                    child = encoding.mutate(elites([i]), generator, plan.generation)
                else:
                    child = elites([i])
                parts.append(child)
        return _cat(parts, encoding), None
    raise ValueError(f"unknown plan kind {plan.kind!r}")


def _whole_generator(plan: Plan, device: torch.device) -> torch.Generator:
    """The Generator a plan varied at once draws from: seeded by its generation's first block seed."""
    return block_generator(plan.seeds[0] if plan.draw_seed is None else plan.draw_seed, device)


def _in_generation(plan: Plan, rows: torch.Tensor, fill: Any = 0) -> torch.Tensor:
    """``rows`` (n, ...) of a piece in a batch of its generation's size (:attr:`Plan.total`), at the piece's place,
    ``fill`` elsewhere; ``rows`` itself for the whole plan."""
    total = plan.total or plan.n
    if total == plan.n:
        return rows
    start = plan.first_block * plan.block
    batch = torch.full((total, *rows.shape[1:]), fill, dtype=rows.dtype, device=rows.device)
    batch[start:start + plan.n] = rows
    return batch


def _piece_rows(plan: Plan, batch: torch.Tensor) -> torch.Tensor:
    """The piece's rows of a generation-sized ``batch`` (:func:`_in_generation`); ``batch`` for the whole plan."""
    if (plan.total or plan.n) == plan.n:
        return batch
    start = plan.first_block * plan.block
    return batch[start:start + plan.n]


def _vary_whole(plan: Plan, encoding: Any, elites: Callable[[Any], torch.Tensor]) -> torch.Tensor:
    """(n, G) children of a "vary" plan whose generation is varied at once (:data:`WHOLE_VARIATION`), from a
    Generator seeded by the generation's first block seed; a piece varies a batch of the generation's size holding
    its parents at its place (the other rows zeros: their values change nothing of its rows) and keeps its rows."""
    children = elites(plan.parents)  # a fresh batch: varied in place
    if not len(plan.seeds):
        return children
    batch = _in_generation(plan, children)
    return _piece_rows(plan, encoding.vary_owned(batch, _whole_generator(plan, encoding.device), plan.generation))


def _ga_whole(plan: Plan, encoding: Any, elites: Callable[[Any], torch.Tensor]) -> torch.Tensor:
    """(n, G) children of a "ga" plan whose generation is varied at once (:data:`WHOLE_VARIATION`): one SBX of every
    child's two parents (its first parent twice but for a crossover: parents that do not differ cross no gene),
    keeping the first children, then one mutation of them all, kept for the mutants; every row draws the same
    numbers whatever its operator, so a piece (its rows in a generation-sized batch, as :func:`_vary_whole`'s)
    keeps the whole plan's children."""
    ops = np.asarray(plan.ops)
    parents = np.asarray(plan.parents, dtype=np.int64)
    firsts = elites(parents[:, 0])  # a fresh batch
    if not len(plan.seeds):
        return firsts
    cross = np.flatnonzero(ops == 0)
    seconds = firsts.clone()
    if cross.size:
        seconds[torch.as_tensor(cross, device=seconds.device)] = elites(parents[cross, 1]).to(seconds.dtype)
    generator = _whole_generator(plan, encoding.device)
    crossed, _ = encoding.crossover(_in_generation(plan, firsts), _in_generation(plan, seconds), generator)
    mutated = encoding.mutate(crossed, generator, plan.generation)
    mutants = _in_generation(plan, torch.as_tensor(ops == 1, device=mutated.device), fill=False)
    return _piece_rows(plan, torch.where(mutants.unsqueeze(1), mutated, crossed))


def _ga_block(ops: np.ndarray, parents: np.ndarray, generator: torch.Generator, encoding: Any,
              elites: Callable[[Any], torch.Tensor], generation: int) -> torch.Tensor:
    """(m, G) children of one block of a "ga" plan, varied at once: the crossovers' first children from one batched
    SBX of their parents' rows, then the mutants from one batched mutation (both drawing from ``generator``); the
    copies as they are. ops (m,), parents (m, 2) host arrays."""
    children = elites(parents[:, 0])  # a fresh batch
    cross, mutate = np.flatnonzero(ops == 0), np.flatnonzero(ops == 1)
    if cross.size:
        rows = torch.as_tensor(cross, device=children.device)
        firsts, _ = encoding.crossover(children.index_select(0, rows), elites(parents[cross, 1]), generator)
        children.index_copy_(0, rows, firsts.to(children.dtype))
    if mutate.size:
        rows = torch.as_tensor(mutate, device=children.device)
        children.index_copy_(0, rows, encoding.mutate(children.index_select(0, rows), generator, generation))
    return children


def _cat(parts: list[torch.Tensor], encoding: Any) -> torch.Tensor:
    return torch.cat(parts) if parts else torch.empty((0, encoding.num_genes), device=encoding.device)


def _snes(plan: Plan, encoding: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    per, k = plan.block, len(plan.seeds)
    rows = plan.in_place
    dims = (rows.sigma if rows is not None else plan.sigma).shape[1]
    noise = torch.empty((k, per, dims), device=device)  # (k, per, D): mirrored pairs
    if not k:
        return torch.empty((0, encoding.num_genes), device=device), noise
    first = block_noise(plan.seeds, (per // 2, dims), device, plan.first_block, plan.total_blocks,
                        plan.draw_seed, out=noise[:, :per // 2])  # each block's draws, then their mirror
    if rows is not None:
        # the compiled pass reads only the first half, and the tell of an in-place plan (one mirrored pair an
        # emitter, its mean moved onto the better child) reads no draw: the mirror is never written (6 MB for a 256
        # px generation of 64), and the draws alone go back (k, per / 2, D). The pass converts the children's HLS
        # images too where decode would do it on the CPU, each row while in cache. Together: a 256 px generation of
        # 64's ask and decode 16.6-17.6 -> 14.8-16.7 ms in the ImageNet loop (scripts/bench_imagenet_phases.py)
        from .snes_children_cpu import snes_children, snes_children_rgb  # numba loads on first use

        cells = np.asarray(plan.cells)
        args = (rows.means, cells, rows.sigma, cells, noise, plan.scale, encoding.image_shape, rows.elites,
                rows.elite_rows)
        if not encoding.decodes_hls_on_cpu:
            return snes_children(*args), first
        children, images = snes_children_rgb(*args)
        encoding.keep_decoded(children, images)
        return children, first
    if on_host(device):
        # numpy's negation (the same bits): torch's would run on PyTorch's OpenMP threads, which then spin for
        # milliseconds beside the threads that make the children next and halve their share of a 2-core CPU (ask
        # 15.6-16.8 -> 12.3-12.8 ms a generation of 64 at 256 px: scripts/bench_imagenet_phases.py)
        np.negative(first.numpy(), out=noise[:, per // 2:].numpy())
    else:
        torch.neg(first, out=noise[:, per // 2:])
    shape = encoding.image_shape
    if one_pass(shape, plan.scale, device):
        from .snes_children_cpu import snes_children

        mean, sigma = (torch.as_tensor(x, device=device) for x in (plan.mean, plan.sigma))
        drawn = np.arange(k)
        return snes_children(mean, drawn, sigma, drawn, noise, plan.scale, shape), noise
    mean = torch.as_tensor(plan.mean, device=device)
    sigma = torch.as_tensor(plan.sigma, device=device)
    children = mean_plus_step(mean, sigma, noise, plan.scale, shape)
    return children.reshape(-1, mean.shape[1]).clamp_(0.0, 1.0), noise


def one_pass(shape: tuple[int, int, int], scale: int, device: torch.device) -> bool:
    """Whether snes children of images ``shape`` (C, H, W) with noise blocks ``scale`` pixels wide are made on
    ``device`` by the compiled CPU pass (:mod:`.snes_children_cpu`, the same bits as :func:`mean_plus_step` then
    a clamp): on the host, for rows of at least :data:`SHORT_ROWS` pixels in whole blocks."""
    _, h, w = shape
    if not on_host(device) or w < SHORT_ROWS or h % scale or w % scale:
        return False
    from .snes_children_cpu import COMPILED

    return COMPILED


def noise_grid(shape: tuple[int, int, int], scale: int) -> tuple[int, int, int]:
    """The coarse grid (C, ceil(H / scale), ceil(W / scale)) snes-elites draws its noise on."""
    c, h, w = shape
    return c, -(-h // scale), -(-w // scale)


def upsample(x: torch.Tensor, scale: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """(..., D) on the noise grid -> (..., G) on the image ``shape`` (nearest-neighbour upsampling)."""
    if scale == 1:
        return x
    lead = x.shape[:-1]
    c, h, w = noise_grid(shape, scale)
    x = x.reshape(-1, c, h, 1, w, 1).expand(-1, c, h, scale, w, scale).reshape(-1, c, h * scale, w * scale)  # one copy
    return x[:, :, :shape[1], :shape[2]].reshape(*lead, -1)


def _widened(x: torch.Tensor, scale: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """(..., D) on the noise grid -> (..., C, H / scale, 1, W): each block widened along its row (a copy
    ``scale`` times smaller than the image), to broadcast over the ``scale`` image rows of the block."""
    c, _, w = shape
    _, gh, gw = noise_grid(shape, scale)
    lead = x.shape[:-1]
    return x.reshape(*lead, c, gh, gw, 1).expand(*lead, c, gh, gw, scale).reshape(*lead, c, gh, 1, w)


def plus_upsampled(base: torch.Tensor, x: torch.Tensor, scale: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """``base + upsample(x)``: base (..., G) on the image, x (..., D) on the noise grid, leading dimensions
    broadcast. When the image divides into whole blocks, the blocks are widened along their rows and broadcast
    over the block's image rows in the addition itself (whole image rows at a time, no upsampled copy of x:
    1.8x faster for MNIST's 200 children, 1.2x for 64 at 256 px); the values are the same either way."""
    c, h, w = shape
    if scale == 1:
        return base + x
    if h % scale or w % scale:
        return base + upsample(x, scale, shape)
    _, gh, _ = noise_grid(shape, scale)
    total = base.reshape(*base.shape[:-1], c, gh, scale, w) + _widened(x, scale, shape)
    return total.reshape(*total.shape[:-4], c * h * w)  # the leading dimensions, broadcast


SHORT_ROWS = 128  # image rows narrower than this: mean_plus_step gathers the products into whole images


@functools.lru_cache(maxsize=16)
def grid_cells(shape: tuple[int, int, int], scale: int, device: torch.device) -> torch.Tensor:
    """(G,) int64: the noise-grid cell of each pixel of an image ``shape`` (cached: read only)."""
    c, h, w = shape
    _, gh, gw = noise_grid(shape, scale)
    rows = torch.arange(h, device=device) // scale
    cols = torch.arange(w, device=device) // scale
    channels = torch.arange(c, device=device)
    return ((channels.view(c, 1, 1) * gh + rows.view(1, h, 1)) * gw + cols.view(1, 1, w)).reshape(-1)


def mean_plus_step(mean: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor, scale: int,
                   shape: tuple[int, int, int]) -> torch.Tensor:
    """(k, n, G) ``mean[i] + upsample(sigma[i] * noise[i, j])``: mean (k, G) on the image, sigma (k, D) and noise
    (k, n, D) on the noise grid; the values of :func:`plus_upsampled` of the product.

    Images with rows narrower than :data:`SHORT_ROWS` (MNIST's 28): the (k, n, D) products are gathered into
    whole images, then the means added along whole image rows (a broadcast addition over rows this short runs
    as many short loops: 2x slower for MNIST's 200 children). Wider images that divide into whole blocks: the
    product is formed straight into blocks widened along their rows (no (k, n, D) product and no widened copy
    of it), then broadcast over each block's image rows in the addition (for 256 px the gather is no faster)."""
    c, h, w = shape
    if scale > 1 and w < SHORT_ROWS:
        k, n, d = noise.shape
        step = torch.mul(sigma.unsqueeze(1), noise).reshape(k * n, d)  # a view for contiguous noise
        return step.index_select(1, grid_cells(shape, scale, step.device)).view(k, n, -1).add_(mean.unsqueeze(1))
    if scale == 1 or h % scale or w % scale:
        return plus_upsampled(mean.unsqueeze(1), sigma.unsqueeze(1) * noise, scale, shape)
    k, n, _ = noise.shape
    _, gh, gw = noise_grid(shape, scale)
    step = torch.mul(sigma.reshape(k, 1, c, gh, gw, 1).expand(k, 1, c, gh, gw, scale),
                     noise.reshape(k, n, c, gh, gw, 1).expand(k, n, c, gh, gw, scale))  # (k, n, C, H / scale, W)
    total = mean.reshape(k, 1, c, gh, scale, w) + step.reshape(k, n, c, gh, 1, w)  # views for contiguous noise
    return total.reshape(k, n, c * h * w)


def add_upsampled_(base: torch.Tensor, x: torch.Tensor, scale: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """``base += upsample(x)`` in place and returned: base (k, G) contiguous on the image, x (k, D) on the noise
    grid; the same float32 sums as :func:`plus_upsampled` (short rows: as :func:`mean_plus_step`, gathered)."""
    c, h, w = shape
    if scale == 1:
        return base.add_(x)
    if w < SHORT_ROWS:
        return base.add_(x.index_select(1, grid_cells(shape, scale, x.device)))
    if h % scale or w % scale:
        return base.add_(upsample(x, scale, shape))
    _, gh, _ = noise_grid(shape, scale)
    base.view(len(base), c, gh, scale, w).add_(_widened(x, scale, shape))
    return base
