"""MAP-Elites over CPPNs with a SNES on the weights of each unfinished class's elite.

The CPPN's structural search (the paper's MAP-Elites: parents drawn among the cells, the encoding's
mutation) finds a network shape that draws something a class likes; pushing that class's confidence
from 99.9 % to 99.99 % is then fine tuning of the network's real-valued weights, which random
polynomial mutation of 10 % of them does slowly. So every generation splits its ``population``
children in two:

- ``population - es_children`` MAP-Elites children (uniform parents plus ``laggard_bias``, as
  :mod:`.map_elites`), and
- ``es_children`` split evenly among the weight searches (emitters) of the *unfinished* classes
  (fitness below ``focus``; ``emitters`` per class, each with at least ``MIN_CHILDREN``): an emitter,
  a separable natural evolution strategy (SNES; Schaul et al. 2011) over the weight vector of one
  fixed network, samples mirrored pairs ``w = clip(mean ± sigma * eps, -R, R)`` (R: the genome's
  weight range), ranks them by their fitness for its class alone (ranks: blind to the softmax
  flattening near certainty) and takes one SNES step on mean and step sizes.

Every child, of either kind, is offered to every cell. A class's first emitter tunes its elite: when
the elite changes to a network none of the class's emitters is tuning (a structural child), it
restarts there (mean from its weights, step sizes ``sigma`` times R); the other emitters start on
mutants of the elite. An emitter with no better child for ``patience`` generations moves to a new
mutant of its class's elite. Once every class is at ``focus``, all children go to MAP-Elites.

Measured on ``mnist-lenet`` (README "The default CPPN search"), this does not beat MAP-Elites alone
with 50 children per generation: it is an option (``--strategy cppn-weight-es``), not the default.

Random numbers: parents and the encoding's mutation draw from the numpy Generator (host genomes);
the SNES noise from the run's torch Generator on the archive's device, where mean and step sizes
live. State (each emitter's network, mean, step sizes and stall count) is checkpointed as arrays, so a resumed
run continues bit-identically.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch

from ..archive import Archive
from ..encodings.cppn.genome import WEIGHT_RANGE, Genome
from ..errors import FoolingError
from .base import Scores, Strategy

MIN_CHILDREN = 8  # fewest children an emitter samples a generation
EMITTER_PREFIX = "emitter/"  # checkpoint keys of the emitters' topologies (the encoding's own array format)


def snes_utilities(n: int, device: torch.device) -> torch.Tensor:
    """(n,) SNES fitness shaping: the utility of rank r (0 = best), zero-sum, decreasing."""
    ranks = torch.arange(1, n + 1, dtype=torch.float64, device=device)
    raw = torch.clamp(math.log(n / 2 + 1) - torch.log(ranks), min=0.0)
    return (raw / raw.sum() - 1.0 / n).to(torch.float32)


class CppnWeightEs(Strategy):
    """Ask/tell: MAP-Elites children plus weight-space SNES emitters per unfinished class; CPPN genomes only.

    Emitter slot s belongs to cell ``s // emitters``; slot 0 of each cell follows its elite."""

    def __init__(self, archive: Archive, rng: np.random.Generator, population: int, initial_population: int,
                 es_children: int = 100, sigma: float = 0.05, focus: float = 0.9999, laggard_bias: float = 0.0,
                 lr_sigma: float = 0.0, patience: int = 5, emitters: int = 1,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__(archive, rng, generator)
        if self.encoding.name != "cppn" or self.on_device:
            raise FoolingError(f"strategy cppn-weight-es evolves CPPN weights, not {self.encoding.name} genomes: "
                               "use --encoding cppn (or another strategy)")
        if not 0 < es_children <= population:
            raise FoolingError(f"cppn-weight-es needs 1-{population} weight-search children per generation, "
                               f"not {es_children}")
        self.bound = float(WEIGHT_RANGE)
        self.population = population
        self.initial_population = initial_population
        self.es_children = es_children
        self.sigma0 = float(sigma) * self.bound
        self.focus = focus
        self.laggard_bias = laggard_bias
        self.lr_sigma = lr_sigma  # 0: SNES's default for each emitter's dimension
        self.patience = patience  # generations without a better child before an emitter moves (0: never)
        self.emitters = max(1, int(emitters))
        slots = len(archive) * self.emitters
        self.stale = [0] * slots  # each emitter's generations without a new best child
        self.best = [-1.0] * slots  # each emitter's best child's fitness since it (re)started
        self.base: list[Any] = [None] * slots  # each emitter's network (a Genome), None until started
        self.mean: list[Optional[torch.Tensor]] = [None] * slots  # (E_s,) float64 on the device
        self.sigma: list[Optional[torch.Tensor]] = [None] * slots  # (E_s,)
        self._parents: Optional[np.ndarray] = None  # (N,) parent cell of each child (MAP-Elites, then emitters)
        self._slots: list[int] = []  # the emitters sampled this generation
        self._noise: list[torch.Tensor] = []  # (per, E_s) their standard normal draws
        self._per = 0

    # --- which emitters get children ------------------------------------------------------------------------
    def active_slots(self) -> list[int]:
        """Emitters of the cells below ``focus`` with at least one weight: every cell's first emitter, then
        every cell's second, and so on, as many as get at least ``MIN_CHILDREN`` children each."""
        fitness = self.archive.fitness
        open_cells = np.flatnonzero(fitness < self.focus)
        slots = [k * self.emitters + j for j in range(self.emitters) for k in open_cells.tolist()
                 if self.mean[k * self.emitters + j] is not None and self.mean[k * self.emitters + j].numel() > 0]
        return slots[:max(1, self.es_children // MIN_CHILDREN)] if self.es_children >= 2 else []

    def _restart(self, slot: int, genome: Any) -> None:
        self.base[slot] = genome
        weights = torch.as_tensor(np.asarray(genome.weights, dtype=np.float64), device=self.archive.device)
        self.mean[slot] = weights.clone()
        self.sigma[slot] = torch.full_like(weights, self.sigma0)
        self.stale[slot], self.best[slot] = 0, -1.0

    def _elite(self, cell: int) -> Any:
        return self.archive.elites([cell])[0]

    def _mutant(self, cell: int) -> Any:
        """A mutation (structure, weights, functions: the encoding's own) of the cell's elite."""
        return self.encoding.mutate([self._elite(cell)], self.rng, self.generation)[0]

    # --- ask / tell -----------------------------------------------------------------------------------------
    def ask(self) -> Any:
        occupied = self.archive.occupied
        self._slots, self._noise, self._per = [], [], 0
        if self.generation == 0 or occupied.size == 0:
            self._parents = None
            return self.encoding.random(self.initial_population, self.vary_rng)
        active = self.active_slots()
        per = (self.es_children // len(active)) // 2 * 2 if active else 0
        if per < 2:
            active, per = [], 0
        mapel = self.population - per * len(active)
        parents = occupied[self.rng.integers(occupied.size, size=mapel)]
        if self.laggard_bias > 0:
            gap = 1.0 - self.archive.fitness[occupied]
            if gap.sum() > 0:
                chosen = self.rng.random(mapel) < self.laggard_bias
                parents[chosen] = self.rng.choice(occupied, size=int(chosen.sum()), p=gap / gap.sum())
        children = list(self.encoding.vary_owned(self.archive.elites(parents), self.vary_rng, self.generation)) \
            if mapel else []
        owners = [parents]
        for slot in active:
            mean, sigma, base = self.mean[slot], self.sigma[slot], self.base[slot]
            half = torch.randn((per // 2, mean.numel()), generator=self.generator, device=mean.device,
                               dtype=torch.float64)
            noise = torch.cat([half, -half], dim=0)
            weights = (mean + sigma * noise).clamp_(-self.bound, self.bound).cpu().numpy()
            children.extend(Genome(base.hidden, base.outputs, base.sources, base.targets, w.copy())
                            for w in weights)
            owners.append(np.full(per, slot // self.emitters, dtype=np.int64))
            self._slots.append(slot)
            self._noise.append(noise)
        self._per = per
        self._parents = np.concatenate(owners)
        return self.encoding.stack(children)

    def tell(self, genomes: Any, confidence: Scores, scores: Optional[Scores] = None) -> None:
        before = self.archive.fitness.copy()
        self.archive.add(genomes, confidence, self.generation, parents=self._parents, scores=scores)
        after = self.archive.fitness
        if self._slots:
            own = torch.as_tensor(confidence, device=self.archive.device).to(torch.float64)
            start = len(self._parents) - self._per * len(self._slots)
            utility = snes_utilities(self._per, own.device).to(torch.float64)
            for i, (slot, noise) in enumerate(zip(self._slots, self._noise)):
                fit = own[start + i * self._per: start + (i + 1) * self._per, slot // self.emitters]
                top = float(fit.max())
                self.stale[slot] = 0 if top > self.best[slot] else self.stale[slot] + 1
                self.best[slot] = max(self.best[slot], top)
                order = torch.argsort(fit, descending=True, stable=True)
                u = torch.empty_like(utility).scatter_(0, order, utility)
                dims = noise.shape[1]
                lr_sigma = self.lr_sigma or (3 + math.log(dims)) / (5 * math.sqrt(dims))
                sigma = self.sigma[slot]
                self.mean[slot] = (self.mean[slot] + sigma * (u @ noise)).clamp_(-self.bound, self.bound)
                self.sigma[slot] = sigma * torch.exp(0.5 * lr_sigma * (u @ (noise * noise - 1.0)))
        for k in range(len(after)):
            if not np.isfinite(after[k]):
                continue
            first = k * self.emitters
            if self.mean[first] is None:  # start: the first emitter on the elite, the others on mutants of it
                self._restart(first, self._elite(k))
                for j in range(1, self.emitters):
                    self._restart(first + j, self._mutant(k))
                continue
            if after[k] > before[k] and not self._from_an_emitter(k):
                self._restart(first, self._elite(k))  # a new network won the cell: the first emitter tunes it
            for slot in range(first, first + self.emitters):
                if slot in self._slots and self.patience and self.stale[slot] >= self.patience:
                    self._restart(slot, self._mutant(k))  # stalled: tune a new mutant of the elite
        self.generation += 1

    def _from_an_emitter(self, cell: int) -> bool:
        """Whether the cell's elite has the network of one of its emitters (their own child, or a MAP-Elites
        child that changed only weights)."""
        elite = self._elite(cell)
        return any(self.base[s] is not None and self._same_network(elite, self.base[s])
                   for s in range(cell * self.emitters, (cell + 1) * self.emitters))

    @staticmethod
    def _same_network(a: Any, b: Any) -> bool:
        """Same topology and node functions (weights may differ)."""
        return all(np.array_equal(getattr(a, name), getattr(b, name)) for name in ("hidden", "outputs", "sources",
                                                                                    "targets"))

    # --- checkpoint ---------------------------------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super().state_dict()
        started = [s for s in range(len(self.base)) if self.base[s] is not None]
        values["emitters"] = started
        values["stale"], values["best"] = list(self.stale), list(self.best)
        if started:
            for key, value in self.encoding.to_arrays([self.base[s] for s in started]).items():
                arrays[EMITTER_PREFIX + key] = value
            arrays["es_mean"] = torch.cat([self.mean[s] for s in started]).cpu().numpy()
            arrays["es_sigma"] = torch.cat([self.sigma[s] for s in started]).cpu().numpy()
        return arrays, values

    def load_state_dict(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        super().load_state_dict(arrays, values)
        started = [int(s) for s in values.get("emitters", [])]
        slots = len(self.base)
        if any(not 0 <= s < slots for s in started) or len(values.get("stale", [])) != slots:
            raise FoolingError("checkpoint's cppn-weight-es emitters do not fit this run's classes: it belongs to "
                               "another run")
        self.base = [None] * slots
        self.stale = [int(v) for v in values["stale"]]
        self.best = [float(v) for v in values["best"]]
        self.mean = [None] * slots
        self.sigma = [None] * slots
        if not started:
            return
        bases = self.encoding.from_arrays({key[len(EMITTER_PREFIX):]: value for key, value in arrays.items()
                                           if key.startswith(EMITTER_PREFIX)})
        mean = torch.as_tensor(np.asarray(arrays["es_mean"], dtype=np.float64), device=self.archive.device)
        sigma = torch.as_tensor(np.asarray(arrays["es_sigma"], dtype=np.float64), device=self.archive.device)
        sizes = [b.num_connections for b in bases]
        if len(bases) != len(started) or sum(sizes) != mean.numel() or mean.shape != sigma.shape:
            raise FoolingError("checkpoint's cppn-weight-es state is inconsistent: it belongs to another run")
        offset = 0
        for s, base, size in zip(started, bases, sizes):
            self.base[s] = base
            self.mean[s] = mean[offset:offset + size].clone()
            self.sigma[s] = sigma[offset:offset + size].clone()
            offset += size
