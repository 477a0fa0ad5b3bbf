"""MAP-Elites over CPPNs with a SNES on the weights of each unfinished class's elite.

The CPPN's structural search (the paper's MAP-Elites: parents drawn among the cells, the encoding's
mutation) finds a network shape that draws something a class likes; pushing that class's confidence
from 99.9 % to 99.99 % is then fine tuning of the network's real-valued weights, which random
polynomial mutation of 10 % of them does slowly. So every generation splits its ``population``
children in two:

- ``population - es_children`` MAP-Elites children (uniform parents plus ``laggard_bias``, as
  :mod:`.map_elites`), and
- ``es_children`` split evenly among the *unfinished* classes (fitness below ``focus``): class k's
  emitter, a separable natural evolution strategy (SNES; Schaul et al. 2011) over the weight vector
  of a fixed topology (its cell's elite when the emitter last restarted), samples mirrored pairs
  ``w = clip(mean_k ± sigma_k * eps, -R, R)`` (R: the genome's weight range), ranks them by
  their fitness for class k alone (ranks: blind to the softmax flattening near certainty) and
  takes one SNES step on mean and step sizes.

Every child, of either kind, is offered to every cell. When a cell's elite changes to a genome that
is not its own emitter's child (a structural child, or another emitter's), the emitter restarts
there: topology and mean from the new elite, step sizes ``sigma`` (a share of R). Once every class
is at ``focus``, all children go to MAP-Elites.

Random numbers: parents and the encoding's mutation draw from the numpy Generator (host genomes);
the SNES noise from the run's torch Generator on the archive's device, where mean and step sizes
live. State (each emitter's topology, mean and step sizes) is checkpointed as arrays, so a resumed
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

EMITTER_PREFIX = "emitter/"  # checkpoint keys of the emitters' topologies (the encoding's own array format)


def snes_utilities(n: int, device: torch.device) -> torch.Tensor:
    """(n,) SNES fitness shaping: the utility of rank r (0 = best), zero-sum, decreasing."""
    ranks = torch.arange(1, n + 1, dtype=torch.float64, device=device)
    raw = torch.clamp(math.log(n / 2 + 1) - torch.log(ranks), min=0.0)
    return (raw / raw.sum() - 1.0 / n).to(torch.float32)


class CppnWeightEs(Strategy):
    """Ask/tell: MAP-Elites children plus a weight-space SNES per unfinished class; CPPN genomes only."""

    def __init__(self, archive: Archive, rng: np.random.Generator, population: int, initial_population: int,
                 es_children: int = 100, sigma: float = 0.05, focus: float = 0.9999, laggard_bias: float = 0.0,
                 lr_sigma: float = 0.0, generator: Optional[torch.Generator] = None) -> None:
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
        cells = len(archive)
        self.base: list[Any] = [None] * cells  # each emitter's topology (a Genome), None until started
        self.mean: list[Optional[torch.Tensor]] = [None] * cells  # (E_k,) float64 on the device
        self.sigma: list[Optional[torch.Tensor]] = [None] * cells  # (E_k,)
        self._parents: Optional[np.ndarray] = None  # (N,) parent cell of each child (MAP-Elites, then emitters)
        self._cells: list[int] = []  # the emitters sampled this generation
        self._noise: list[torch.Tensor] = []  # (per, E_k) their standard normal draws
        self._per = 0

    # --- which classes get weight-search children -------------------------------------------------------------
    def active_cells(self) -> np.ndarray:
        """The cells below ``focus`` whose emitter has a topology with at least one weight."""
        fitness = self.archive.fitness
        return np.array([k for k in np.flatnonzero(fitness < self.focus)
                         if self.mean[k] is not None and self.mean[k].numel() > 0], dtype=np.int64)

    def _restart(self, cell: int) -> None:
        elite = self.archive.elites([cell])[0]
        self.base[cell] = elite
        weights = torch.as_tensor(np.asarray(elite.weights, dtype=np.float64), device=self.archive.device)
        self.mean[cell] = weights.clone()
        self.sigma[cell] = torch.full_like(weights, self.sigma0)

    # --- ask / tell -----------------------------------------------------------------------------------------
    def ask(self) -> Any:
        occupied = self.archive.occupied
        self._cells, self._noise, self._per = [], [], 0
        if self.generation == 0 or occupied.size == 0:
            self._parents = None
            return self.encoding.random(self.initial_population, self.vary_rng)
        active = self.active_cells()
        per = (self.es_children // len(active)) // 2 * 2 if active.size else 0
        if per < 2:
            active, per = active[:0], 0
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
        for k in active.tolist():
            mean, sigma, base = self.mean[k], self.sigma[k], self.base[k]
            half = torch.randn((per // 2, mean.numel()), generator=self.generator, device=mean.device,
                               dtype=torch.float64)
            noise = torch.cat([half, -half], dim=0)
            weights = (mean + sigma * noise).clamp_(-self.bound, self.bound).cpu().numpy()
            children.extend(Genome(base.hidden, base.outputs, base.sources, base.targets, w.copy())
                            for w in weights)
            owners.append(np.full(per, k, dtype=np.int64))
            self._cells.append(k)
            self._noise.append(noise)
        self._per = per
        self._parents = np.concatenate(owners)
        return self.encoding.stack(children)

    def tell(self, genomes: Any, confidence: Scores, scores: Optional[Scores] = None) -> None:
        before = self.archive.fitness.copy()
        self.archive.add(genomes, confidence, self.generation, parents=self._parents, scores=scores)
        after, parent = self.archive.fitness, self.archive.parent
        if self._cells:
            own = torch.as_tensor(confidence, device=self.archive.device).to(torch.float64)
            start = len(self._parents) - self._per * len(self._cells)
            utility = snes_utilities(self._per, own.device).to(torch.float64)
            for i, (k, noise) in enumerate(zip(self._cells, self._noise)):
                fit = own[start + i * self._per: start + (i + 1) * self._per, k]
                order = torch.argsort(fit, descending=True, stable=True)
                u = torch.empty_like(utility).scatter_(0, order, utility)
                dims = noise.shape[1]
                lr_sigma = self.lr_sigma or (3 + math.log(dims)) / (5 * math.sqrt(dims))
                sigma = self.sigma[k]
                self.mean[k] = (self.mean[k] + sigma * (u @ noise)).clamp_(-self.bound, self.bound)
                self.sigma[k] = sigma * torch.exp(0.5 * lr_sigma * (u @ (noise * noise - 1.0)))
        # a cell whose elite is new and not its own emitter's child (or whose emitter never started) restarts
        for k in range(len(after)):
            if not np.isfinite(after[k]):
                continue
            if self.mean[k] is None or (after[k] > before[k] and not self._own_child(k, parent[k])):
                self._restart(k)
        self.generation += 1

    def _own_child(self, cell: int, parent: int) -> bool:
        """Whether the cell's new elite came from its own emitter (not from MAP-Elites or another emitter).

        A MAP-Elites child of the cell's own elite also has parent == cell: the emitter restarts on it only
        when it changed the network (topology or functions), since a weight change alone is its own search."""
        if parent != cell or self.base[cell] is None:
            return False
        elite, base = self.archive.elites([cell])[0], self.base[cell]
        return all(np.array_equal(getattr(elite, name), getattr(base, name))
                   for name in ("hidden", "outputs", "sources", "targets"))

    # --- checkpoint ---------------------------------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super().state_dict()
        started = [k for k in range(len(self.base)) if self.base[k] is not None]
        values["emitters"] = started
        if started:
            for key, value in self.encoding.to_arrays([self.base[k] for k in started]).items():
                arrays[EMITTER_PREFIX + key] = value
            arrays["es_mean"] = torch.cat([self.mean[k] for k in started]).cpu().numpy()
            arrays["es_sigma"] = torch.cat([self.sigma[k] for k in started]).cpu().numpy()
        return arrays, values

    def load_state_dict(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        super().load_state_dict(arrays, values)
        started = [int(k) for k in values.get("emitters", [])]
        cells = len(self.base)
        if any(not 0 <= k < cells for k in started):
            raise FoolingError("checkpoint's cppn-weight-es emitters do not fit this run's classes: it belongs to "
                               "another run")
        self.base = [None] * cells
        self.mean = [None] * cells
        self.sigma = [None] * cells
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
        for k, base, size in zip(started, bases, sizes):
            self.base[k] = base
            self.mean[k] = mean[offset:offset + size].clone()
            self.sigma[k] = sigma[offset:offset + size].clone()
            offset += size
