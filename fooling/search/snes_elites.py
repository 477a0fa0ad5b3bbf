"""SNES emitters inside MAP-Elites: one separable natural evolution strategy per class (CMA-ME-style).

Each class (archive cell) has an emitter: a Gaussian search distribution with a mean image and one
step size per gene of a coarse noise grid (``scale`` x ``scale`` pixel blocks: 14x14 for MNIST at
scale 2, which the SNES adapts 4x faster than 784 single pixels). Every emitter starts at a flat
image of grey level ``start`` (0: black; < 0: at its cell's elite of ``initial_population`` random
genomes, as MAP-Elites starts). Every generation splits ``population`` children evenly among the
*unfinished* classes (cell fitness below ``focus``; all classes once every one is there; when there
are fewer than two children per such class, among ``population // 2`` of them drawn uniformly): emitter k
samples mirrored pairs ``mean_k ± up(sigma_k * eps)`` (``up``: nearest upsampling to the image;
children clipped to [0, 1]), and every child is still offered to every cell (the archive's rule).
Emitter k then ranks its own children by their fitness for class k alone and takes one SNES step
(Schaul et al. 2011; Wierstra et al. 2014): rank utilities u_i, mean_k += lr_mean * up(sigma_k *
sum u_i eps_i), sigma_k *= exp(lr_sigma / 2 * sum u_i (eps_i^2 - 1)). Ranks make the update blind
to the softmax flattening near certainty (any monotone transform, logits or log-probabilities,
ranks the same).

When another emitter's child becomes a cell's new elite (it beat that cell's own emitter), the
cell's emitter restarts its mean there (``restart``; its step sizes are kept).

Direct encoding only (genomes are (N, G) device tensors); the CPPN encoding stays on MAP-Elites.
Children are sampled in seeded blocks (:mod:`.blocks`): plan() draws one seed per emitter from the numpy
Generator and take() draws emitter k's noise from a torch Generator seeded with its seed, so a Ray actor
given the emitters' mean and step-size rows samples its own piece exactly; ask() reads back only the
archive's host fitness (already on the host). On the CPU, for images of wide rows, the in-process ask gathers
nothing: a compiled pass reads each emitter's rows where they lie (:mod:`.snes_children_cpu`). State (means, step
sizes) is checkpointed as arrays.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Optional

import numpy as np
import torch

from ..archive import Archive
from ..errors import FoolingError
from ..hostwork import on_host
from ..rowcopy import gather_rows, scatter_rows_
from ..rowdigests import RowDigests, Rows
from .base import Scores, Strategy
from .blocks import VARIATION, InPlace, Plan, add_upsampled_, blocked, noise_grid, one_pass, realise, seeds
from .noise import one_draw


EMITTER_CHOICE = "sampled"  # checkpointed: emitters are sampled when the population is below two per class


@functools.lru_cache(maxsize=16)
def snes_utilities(n: int, device: torch.device) -> torch.Tensor:
    """(n,) SNES fitness shaping: the utility of rank r (0 = best), zero-sum, decreasing (cached: read only)."""
    ranks = torch.arange(1, n + 1, dtype=torch.float64, device=device)
    raw = torch.clamp(math.log(n / 2 + 1) - torch.log(ranks), min=0.0)
    return (raw / raw.sum() - 1.0 / n).to(torch.float32)


def rank_utilities(confidence: torch.Tensor, cells: torch.Tensor, per: int) -> torch.Tensor:
    """(k, 1, per) float32: the SNES utility of each of emitter i's ``per`` children by its rank for cell
    ``cells[i]`` (best first; ties keep the children's order). confidence (k * per, cells) float64: emitter i's
    children are rows [i * per, (i + 1) * per). On the CPU the ranks are found in numpy (without NaN: NumPy orders
    NaN last, torch first), elsewhere on the device; the same utilities either way."""
    k = len(cells)
    table = snes_utilities(per, confidence.device)
    if on_host(confidence.device):
        values = confidence.numpy().reshape(k, per, -1)
        own = values[np.arange(k)[:, None], np.arange(per), np.asarray(cells)[:, None]]  # (k, per)
        if not np.isnan(own).any():
            order = np.argsort(-own, axis=1, kind="stable")  # descending, ties in order
            utility = np.empty((k, 1, per), dtype=np.float32)
            utility[np.arange(k)[:, None], 0, order] = table.numpy()  # child order[i, r] gets rank r's utility
            return torch.from_numpy(utility)
    own = confidence.view(k, per, -1).gather(2, cells.view(k, 1, 1).expand(k, per, 1)).squeeze(2)  # (k, per)
    order = torch.argsort(own, dim=1, descending=True, stable=True)
    utility = torch.empty((k, 1, per), dtype=torch.float32, device=own.device)
    utility.squeeze(1).scatter_(1, order, table.expand(k, per))
    return utility


class SnesElites(Strategy):
    """Ask/tell: a SNES emitter per class feeding a MAP-Elites archive; one cell per class in ``archive``."""

    def __init__(self, archive: Archive, rng: np.random.Generator, population: int, initial_population: int,
                 sigma: float = 0.07, lr_mean: float = 1.0, lr_sigma: float = 0.0, focus: float = 0.9999,
                 start: float = 0.0, scale: int = 2, restart: bool = True,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__(archive, rng, generator)
        if not self.on_device:
            raise FoolingError(f"strategy snes-elites works on direct genomes, not {self.encoding.name}: "
                               "use --strategy map-elites for the CPPN encoding")
        self.population = population
        self.initial_population = initial_population
        self.sigma0 = sigma
        self.lr_mean = lr_mean
        genes = int(self.encoding.num_genes)
        c, h, w = self.encoding.image_shape
        self.scale = int(scale)
        self.shape = (c, h, w)
        self.grid = noise_grid((c, h, w), self.scale)  # the grid the noise is drawn on
        dims = int(np.prod(self.grid))
        self.lr_sigma = lr_sigma or (3 + math.log(dims)) / (5 * math.sqrt(dims))  # SNES's default
        self.focus = focus
        self.restart = restart
        cells, device = len(archive), archive.device
        self.mean = torch.zeros((cells, genes), dtype=torch.float32, device=device)
        self.sigma = torch.full((cells, dims), float(sigma), dtype=torch.float32, device=device)
        # the digest of each row as last checkpointed: every write of mean or sigma forgets the rows it writes
        self.mean_digests, self.sigma_digests = RowDigests(cells, device), RowDigests(cells, device)
        # (cells,) bool: the emitter restarts at its cell's elite, copied into ``mean`` only when it is next
        # sampled or checkpointed (until then the cell changes only by other emitters' children, each a restart
        # again): a generation that improves hundreds of ImageNet cells copies no rows for them
        self.restarting = torch.zeros(cells, dtype=torch.bool, device=device)
        self._all_cells = torch.arange(cells, device=device)
        self.start = start
        self.started = start >= 0  # False: the means are set from the archive after generation 0
        if self.started:
            self.mean.fill_(float(start))
        self._cells: Optional[torch.Tensor] = None  # (k,) the cells that got children this generation
        self._owner: Optional[torch.Tensor] = None  # (N,) the emitter (cell) of each child
        # (k, n, D) the standard normal draws behind them (D: the noise grid); (k, n / 2, D) after an in-place
        # plan, whose mirrored -draws were never written (see blocks.realise)
        self._noise: Optional[torch.Tensor] = None
        self._per = 0  # n: the children of each emitter
        self._mean: Optional[torch.Tensor] = None  # (k, G) their emitters' means (the plan's copy; tell steps it)
        self._sigma: Optional[torch.Tensor] = None  # (k, D) and step sizes (likewise)

    def active_cells(self) -> np.ndarray:
        """The cells that get children: those below ``focus`` (all, once every cell is there)."""
        fitness = self.archive.fitness
        active = np.flatnonzero(fitness < self.focus)
        return active if active.size else np.arange(len(fitness))

    planned = True

    def plan(self, in_place: bool = False) -> Plan:
        """Generation 0 (``start`` < 0): random genomes in blocks; else emitter k of the active ``cells``
        samples ``per`` mirrored children (one block, one seed each) from its ``mean`` and ``sigma`` rows.

        The plan carries copies of those rows (what a Ray actor is sent). in_place: where the CPU's compiled pass
        makes the children and the tell needs no copy of the drawn means (one mirrored pair an emitter: the mean
        moves onto the better child), it reads the rows where they lie instead (:class:`.blocks.InPlace`: no
        copies, and a restarting emitter's mean is read from its cell's elite, written by the tell); such a plan
        is not cut into pieces."""
        if not self.started:
            n = self.initial_population
            return blocked("random", n, self.rng, self.generation)
        active = self.active_cells()
        if self.population < 2 * len(active):  # fewer children than emitters x 2: a sample of the emitters
            active = np.sort(self.rng.choice(active, size=max(1, self.population // 2), replace=False))
        per = max(2, (self.population // len(active)) // 2 * 2)  # mirrored pairs: an even number per emitter
        cells = torch.as_tensor(active, dtype=torch.long, device=self.mean.device)
        n = len(active) * per
        block_seeds = seeds(self.rng, n, per)
        if in_place and self._onto_better_child(per) and one_pass(self.shape, self.scale, self.mean.device):
            due = self.restarting.numpy()[active]
            bank, elite_rows = self.mean, np.full(len(active), -1, dtype=np.int64)
            if due.any():
                elites = self.archive.elite_rows(active[due])
                bank, elite_rows[due] = elites.source, elites.index
            return Plan("snes", n, per, block_seeds, self.generation, cells=cells, scale=self.scale,
                        in_place=InPlace(self.mean, self.sigma, bank, elite_rows))
        self._restart_means(cells)
        return Plan("snes", n, per, block_seeds, self.generation, cells=cells,
                    mean=gather_rows(self.mean, cells), sigma=gather_rows(self.sigma, cells), scale=self.scale)

    def _onto_better_child(self, per: int) -> bool:
        """Whether an SNES step of emitters with ``per`` children moves each mean onto its better child (one
        mirrored pair at lr_mean 1: see :meth:`_update`)."""
        return per == 2 and self.lr_mean == 1.0

    def take(self, plan: Plan) -> Any:
        children, noise = realise(plan, self.encoding)
        if plan.kind == "snes":
            self._cells, self._noise, self._per = plan.cells, noise, plan.block  # (k,), (k, per or per / 2, D)
            self._mean, self._sigma = plan.mean, plan.sigma  # gathered by plan(): copies, unchanged until tell
            cells = plan.cells  # (N,) each child's emitter: numpy's repeat on the CPU (torch's is several kernels)
            self._owner = (torch.from_numpy(np.repeat(cells.numpy(), plan.block)) if on_host(cells.device)
                           else cells.repeat_interleave(plan.block))
        else:
            self._cells = self._owner = self._noise = self._mean = self._sigma = None
        return children

    def ask(self) -> Any:
        return self.take(self.plan(in_place=True))

    def _restart_means(self, cells: Optional[torch.Tensor] = None) -> None:
        """Copy the elites into the means of the restarting emitters among ``cells`` (None: all)."""
        if cells is None:
            due = torch.nonzero(self.restarting).squeeze(1)
        elif on_host(cells.device):  # numpy views: a few µs
            due = torch.from_numpy(cells.numpy()[self.restarting.numpy()[cells.numpy()]])
        else:
            due = cells[self.restarting.index_select(0, cells)]  # ascending, as cells are
        if due.numel():
            scatter_rows_(self.mean, due, self.archive.elites(due))
            self.mean_digests.forget(due)
            self.restarting.index_fill_(0, due, False)

    def tell(self, genomes: Any, confidence: Scores, scores: Optional[Scores] = None) -> None:
        confidence = torch.as_tensor(confidence, device=self.archive.device).to(torch.float64)
        self.archive.add(genomes, confidence, self.generation, parents=self._owner, scores=scores)
        if self._cells is None:  # the initial population: every emitter starts at its cell's elite
            filled = np.flatnonzero(np.isfinite(self.archive.fitness))
            if filled.size == len(self.archive):
                self.mean.copy_(self.archive.elites(np.arange(len(self.archive))))
                self.mean_digests.forget()
                self.started = True
        else:
            self._update(confidence, genomes)
        self.generation += 1

    def _update(self, confidence: torch.Tensor, children: torch.Tensor) -> None:
        """One SNES step of each emitter that sampled this generation, from its own children's ranks (children
        (N, G): this generation's, emitter i's at rows [i * per, (i + 1) * per)); flags the emitters whose cells
        another emitter's child took in the archive's last add."""
        cells, noise, per = self._cells, self._noise, self._per  # noise (k, per / 2, D) after an in-place plan
        utility = rank_utilities(confidence, cells, per)  # (k, 1, per)
        sigma = self._sigma
        if self._onto_better_child(per):
            # one mirrored pair, eps and -eps, utilities +-0.5: the mean gradient is exactly the better child's
            # draw (0.5 eps + 0.5 eps), so the stepped and clipped mean is that child bit for bit (the same
            # product and sum its sampling made): copied, not computed again
            rows = torch.arange(0, 2 * len(cells), 2, device=utility.device) + (utility[:, 0, 1] > 0)
            children = torch.as_tensor(children, device=self.mean.device)
            scatter_rows_(self.mean, cells, children, rows.to(children.device))
        else:
            grad_mean = torch.bmm(utility, noise).squeeze(1)  # (k, D): what einsum("kn,kng->kg") computes
            step = sigma * grad_mean
            if self.lr_mean != 1.0:  # lr * x is x itself at 1
                step.mul_(self.lr_mean)
            # mean + lr * up(step), in place on the plan's copy of the drawn means: the same float32 sums
            mean = add_upsampled_(self._mean, step, self.scale, self.shape)
            scatter_rows_(self.mean, cells, mean.clamp_(0.0, 1.0))
        self.mean_digests.forget(cells)
        # restarted (an in-place plan read their means from the elites): numpy views on the CPU, a few µs
        if on_host(cells.device):
            self.restarting.numpy()[cells.numpy()] = False
        else:
            self.restarting.index_fill_(0, cells, False)
        # one mirrored pair: its squared draws are equal and its utilities +-u, so the step-size gradient is
        # exactly 0 and sigma * exp(0) is sigma: skipped, bit for bit the same, and the rows keep their digests
        if per > 2:
            grad_sigma = torch.bmm(utility, (noise * noise).sub_(1.0)).squeeze(1)
            scatter_rows_(self.sigma, cells, sigma.mul_(grad_sigma.mul_(0.5 * self.lr_sigma).exp_()))
            self.sigma_digests.forget(cells)
        self._mean = self._sigma = None
        # another emitter's child became a cell's elite (it beat that emitter's own children): restart there
        better = self.archive.better  # None: no cell improved
        if self.restart and better is not None:
            self.restarting |= better & (self.archive.parent_tensor != self._all_cells)

    @property
    def variation(self) -> str:
        """Seeded blocks; on a device that draws a generation's noise at once (CUDA), that stream instead."""
        return f"{VARIATION}+one-draw" if one_draw(self.mean.device) else VARIATION

    def state_dict(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, values = super().state_dict()
        # rows of the live tensors (np.asarray gives the array): a checkpoint reads only rows changed since the last
        # images (the step sizes on the noise grid): a checkpoint stores a row of repeating squares coarser (a mean
        # in 2 x 2 squares: a quarter of its bytes)
        arrays["mean"] = Rows(self.mean, self.mean_digests, image=self.shape)
        arrays["sigma"] = Rows(self.sigma, self.sigma_digests, image=self.grid)
        arrays["restarting"] = self.restarting.cpu().numpy()  # those means are copied from the elites when drawn
        values["started"] = self.started
        values["emitters"] = EMITTER_CHOICE
        return arrays, values

    def load_state_dict(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        if values.get("emitters") != EMITTER_CHOICE and self.population < 2 * len(self.archive):
            raise FoolingError(
                "this run was checkpointed by an older fooling whose snes-elites gave every unfinished class two "
                f"children a generation (more than --population {self.population}); it cannot continue "
                "bit-identically: start it again, or finish it with the fooling version that began it")
        super().load_state_dict(arrays, values)
        for name in ("mean", "sigma"):
            value = np.asarray(arrays[name], dtype=np.float32)
            if value.shape != tuple(getattr(self, name).shape):
                raise FoolingError(f"checkpoint's snes-elites {name} has shape {value.shape}, not "
                                   f"{tuple(getattr(self, name).shape)}: it belongs to another run")
            getattr(self, name).copy_(torch.from_numpy(value))
            getattr(self, f"{name}_digests").forget()
        restarting = np.asarray(arrays.get("restarting", np.zeros(len(self.archive), dtype=bool)), dtype=bool)
        if restarting.shape != (len(self.archive),):
            raise FoolingError(f"checkpoint's snes-elites restarting flags have shape {restarting.shape}, not "
                               f"({len(self.archive)},): it belongs to another run")
        self.restarting.copy_(torch.from_numpy(restarting))
        self.started = bool(values["started"])
