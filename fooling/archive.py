"""MAP-Elites archive over classes: one elite (the most confident image) per class.

Cells are the classes being evolved for. Every candidate is offered to every cell (the paper's
rule): for each cell, the best candidate of the batch replaces the elite if it is strictly better.
One image may be the elite of several classes; the archive knows which cells share an image (a key
per cell) and a checkpoint stores such an image once.

Where things live:
- fitness (cells,) float64, parent cells and per-model scores are tensors on the archive's device;
  :attr:`Archive.fitness` is their host copy (per-class best values), refreshed once per
  :meth:`Archive.add`: the only read-back of a generation.
- genomes live in a store behind one interface: a :class:`TensorStore` (one preallocated
  (cells, G) tensor on the device, for tensor batches: the direct encoding) where an insertion is
  one vectorised indexed copy, or a :class:`ListStore` (a list, for host objects: CPPN networks).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from .encodings.base import Encoding
from .hostwork import on_host
from .milestones import THRESHOLDS, Milestones
from .rowcopy import gather_rows, scatter_rows_
from .rowdigests import RowDigests, Rows

__all__ = ["THRESHOLDS", "Archive", "ListStore", "TensorStore"]

Index = Union[np.ndarray, torch.Tensor, Sequence[int]]


class TensorStore:
    """Elites of a tensor encoding: a bank of distinct genomes and, per cell, the bank row it holds.

    genes (cells, G) float32, slot (cells,) and keys (cells,) int64, on ``device``. Cell c's elite is
    ``genes[slot[c]]`` (-1: empty); two cells with the same key hold the same candidate (and the same row).
    A child that becomes the elite of many classes is copied once: an insertion copies at most one row per
    distinct winning child (at most the batch size), never one per improved cell, which matters when a
    generation improves hundreds of 1000 ImageNet cells (786 kB a row at 256 px). At most ``cells`` rows
    are ever live, so the bank needs no more rows than the archive has cells.

    digests: the digest of each bank row as a checkpoint last stored it (:mod:`fooling.rowdigests`); a bank
    row is not written while a cell holds it, and every write of ``genes`` forgets the rows written.
    """

    def __init__(self, cells: int, num_genes: int, device: torch.device,
                 image: Optional[tuple[int, int, int]] = None) -> None:
        self.device = device
        self.image = image  # (C, H, W) when a genome is an image in C order: a checkpoint may store it coarser
        # rows not in use are never read: uninitialised memory (on the CPU, pages are touched only as elites arrive)
        self.genes = torch.empty((cells, num_genes), dtype=torch.float32, device=device)
        self.slot = torch.full((cells,), -1, dtype=torch.long, device=device)
        self.keys = torch.full((cells,), -1, dtype=torch.long, device=device)
        self.digests = RowDigests(cells, device)

    def put(self, cells: Index, batch: torch.Tensor, rows: Index, keys: Index) -> None:
        """Cell ``cells[j]`` gets ``batch[rows[j]]`` under key ``keys[j]``: each distinct row of ``batch`` is
        copied once, into bank rows that no cell will hold any longer. Indices: device tensors, or host int64
        arrays (a CPU store keeps its books in numpy, on views of its tensors)."""
        if len(cells) == 0:
            return
        batch = torch.as_tensor(batch, device=self.device)
        if on_host(self.device):
            self._put_host(np.asarray(cells), batch, np.asarray(rows), np.asarray(keys))
        else:
            cells, rows, keys = (torch.as_tensor(x, device=self.device) for x in (cells, rows, keys))
            self._put_device(cells, batch, rows, keys)

    def _put_device(self, cells: torch.Tensor, batch: torch.Tensor, rows: torch.Tensor, keys: torch.Tensor) -> None:
        """:meth:`put` in device tensors (a CUDA store: no per-row host work)."""
        winners, which = torch.unique(rows, return_inverse=True)  # (k,) distinct rows; which (len(cells),)
        rest = self.slot.index_fill(0, cells, -1)  # the rows still held once these cells are replaced
        taken = torch.zeros(len(self.slot) + 1, dtype=torch.bool, device=self.device)
        taken[torch.where(rest >= 0, rest, len(self.slot))] = True
        free = torch.nonzero(~taken[:-1]).squeeze(1)[:len(winners)]  # at least k: k <= len(cells) rows freed
        scatter_rows_(self.genes, free, batch, winners)  # one copy of each winner, no gathered batch
        self.digests.forget(free)
        self.slot = rest.index_copy_(0, cells, free.index_select(0, which))
        self.keys.index_copy_(0, cells, keys)

    def _put_host(self, cells: np.ndarray, batch: torch.Tensor, rows: np.ndarray, keys: np.ndarray) -> None:
        """:meth:`put` with the bookkeeping in numpy (the same bank rows chosen: the lowest free ones, in order)."""
        winners = np.unique(rows)
        which = np.searchsorted(winners, rows)  # (len(cells),) each cell's winner
        rest = self.slot.numpy().copy()
        rest[cells] = -1  # the rows still held once these cells are replaced
        taken = np.zeros(len(rest), dtype=bool)
        taken[rest[rest >= 0]] = True
        free = np.flatnonzero(~taken)[:len(winners)]
        scatter_rows_(self.genes, torch.from_numpy(free), batch, torch.from_numpy(winners))
        self.digests.forget(free)
        rest[cells] = free[which]
        self.slot = torch.from_numpy(rest)
        self.keys.numpy()[cells] = keys

    def get(self, cells: Index) -> torch.Tensor:
        """A fresh batch (len(cells), G) of the elites of ``cells``."""
        cells = torch.as_tensor(np.asarray(cells) if not isinstance(cells, torch.Tensor) else cells,
                                dtype=torch.long, device=self.device)
        return gather_rows(self.genes, self.slot.index_select(0, cells))

    def one(self, cell: int) -> torch.Tensor:
        """(G,) cell ``cell``'s elite: a view, valid until the next :meth:`put` (which reuses freed rows)."""
        return self.genes[int(self.slot[cell])]

    def host_keys(self) -> np.ndarray:
        return self.keys.cpu().numpy()

    def load(self, batch: torch.Tensor, index: np.ndarray) -> None:
        """Cell c gets ``batch[index[c]]`` (index -1: empty); the key of a cell is its index."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.device)
        batch = torch.as_tensor(batch, device=self.device)
        if len(batch) > len(self.slot):
            raise ValueError(f"checkpoint archive holds {len(batch)} elites for {len(self.slot)} cells")
        self.keys = index.clone()
        self.slot = index.clone()  # distinct elites go to bank rows 0..len(batch)-1, in order
        self.genes[:len(batch)] = batch
        self.digests.forget()

    def rows(self, cells: np.ndarray) -> Rows:
        """(len(cells), G) the elites of ``cells`` (host indices, occupied) as rows of the bank, not gathered."""
        return Rows(self.genes, self.digests, self.slot.cpu().numpy()[np.asarray(cells, dtype=np.int64)],
                    image=self.image)


class ListStore:
    """Elites of an encoding whose genomes are host objects: a list (cells) and keys (cells,) int64 on the host."""

    def __init__(self, cells: int, encoding: Encoding) -> None:
        self.encoding = encoding
        self.genomes: list[Any] = [None] * cells
        self.keys = np.full(cells, -1, dtype=np.int64)

    def put(self, cells: torch.Tensor, batch: Any, rows: torch.Tensor, keys: torch.Tensor) -> None:
        picked: dict[int, Any] = {}
        for cell, i, key in zip(cells.tolist(), rows.tolist(), keys.tolist()):  # at most once per class
            if i not in picked:
                picked[i] = self.encoding.pick(batch, i)
            self.genomes[cell] = picked[i]
            self.keys[cell] = key

    def get(self, cells: Index) -> Any:
        return self.encoding.stack([self.genomes[c] for c in np.asarray(cells).tolist()])

    def one(self, cell: int) -> Any:
        return self.genomes[cell]

    def host_keys(self) -> np.ndarray:
        return self.keys.copy()

    def load(self, batch: Any, index: np.ndarray) -> None:
        shared = [self.encoding.pick(batch, i) for i in range(self.encoding.size(batch))]
        self.genomes = [shared[i] if i >= 0 else None for i in np.asarray(index).tolist()]
        self.keys = np.asarray(index, dtype=np.int64).copy()


class Archive:
    """Per-class elites: genome, confidence, generation found and the parent cell it came from.

    classes: the class indices (into the classifier's K outputs) that have cells. The archive lives
    on ``encoding.device`` for encodings whose batches are tensors (``rng_kind == "torch"``), else on
    ``device`` (default CPU).
    """

    def __init__(self, encoding: Encoding, classes: Sequence[int], labels: Sequence[str],
                 device: Optional[torch.device] = None) -> None:
        self.encoding = encoding
        self.classes = np.asarray(classes, dtype=np.int64)
        self.labels = [labels[k] for k in self.classes]
        n = len(self.classes)
        self.device = torch.device(encoding.device if encoding.rng_kind == "torch" else (device or "cpu"))
        self.store: Union[TensorStore, ListStore]
        if encoding.rng_kind == "torch":
            genes, image = int(getattr(encoding, "num_genes")), tuple(encoding.image_shape)
            self.store = TensorStore(n, genes, self.device, image if int(np.prod(image)) == genes else None)
        else:
            self.store = ListStore(n, encoding)
        self.fitness_tensor = torch.full((n,), -np.inf, dtype=torch.float64, device=self.device)  # -inf: empty
        self.parent_tensor = torch.full((n,), -1, dtype=torch.long, device=self.device)  # -1: a random parent
        self.scores_tensor: Optional[torch.Tensor] = None  # (cells, M): each model's confidence, for ensembles
        self.better: Optional[torch.Tensor] = None  # (cells,) bool: the cells the last add improved (None: none)
        self.fitness = np.full(n, -np.inf)  # host copy of fitness_tensor (refreshed by add)
        self.generation_found = np.full(n, -1, dtype=np.int64)
        self.milestones = Milestones.empty(n, top1=False)  # the generation each threshold was first passed
        self._next_key = 0
        pinned = self.device.type == "cuda"
        self._host = torch.empty(n, dtype=torch.float64, pin_memory=pinned)  # fitness read back here

    @property
    def passed(self) -> np.ndarray:
        """(cells, len(THRESHOLDS)) the generation each threshold was first passed (-1: never)."""
        return self.milestones.passed

    @property
    def parent(self) -> np.ndarray:
        """(cells,) the cell whose elite was each elite's parent (-1: a random genome), on the host."""
        return self.parent_tensor.cpu().numpy()

    @property
    def scores(self) -> Optional[np.ndarray]:
        """(cells, M) each model's confidence in each elite (ensembles; NaN: empty), on the host; None: one model."""
        return None if self.scores_tensor is None else self.scores_tensor.cpu().numpy()

    @property
    def genomes(self) -> list[Any]:
        """Each cell's genome (None: empty); cells that share an elite share an object for host genomes. Tensor
        genomes are views of the store's rows, valid until the next :meth:`add` (``.clone()`` to keep one)."""
        keys = self.store.host_keys()
        return [self.store.one(c) if keys[c] >= 0 else None for c in range(len(self))]

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def occupied(self) -> np.ndarray:
        """Indices of the cells that hold an elite."""
        return np.flatnonzero(np.isfinite(self.fitness))

    @property
    def coverage(self) -> float:
        return float(np.isfinite(self.fitness).mean())

    def add(
        self,
        genomes: Any,
        confidence: Union[torch.Tensor, np.ndarray],
        generation: int,
        parents: Optional[Union[torch.Tensor, np.ndarray]] = None,
        scores: Optional[Union[torch.Tensor, np.ndarray]] = None,
    ) -> np.ndarray:
        """Offer a batch to every cell; returns the indices of the cells that improved (host int64).

        confidence: (N, cells) fitness of each candidate for each cell (a tensor, ideally on the
        archive's device; numpy is accepted). parents: (N,) the cell each candidate's parent came
        from (-1 for random ones). scores: optional (N, cells, M) per-model confidences, kept for the
        elites. No per-cell Python for tensor genomes: a max over candidates, one indexed copy. On the CPU the
        choosing (best rows, improved cells, bank slots) runs in numpy on views of the tensors (a few µs a call
        against tens for torch's small ops); elsewhere in device tensors; the same choices either way.
        """
        confidence = torch.as_tensor(confidence, device=self.device).to(torch.float64)
        first_key, self._next_key = self._next_key, self._next_key + int(confidence.shape[0])
        if scores is not None and self.scores_tensor is None:
            self.scores_tensor = torch.full((len(self), scores.shape[-1]), np.nan, dtype=torch.float64,
                                            device=self.device)
        if on_host(self.device):  # the same selection on numpy views of the tensors: a few µs, not tens
            cells, rows = self._offer_host(confidence, parents)
        else:
            cells, rows = self._offer_device(confidence, parents)
        if len(cells):
            self.store.put(cells, genomes, rows, rows + first_key)
            if scores is not None:
                cells, rows = (torch.as_tensor(x, device=self.device) for x in (cells, rows))
                scores = torch.as_tensor(scores, device=self.device).to(torch.float64)
                self.scores_tensor.index_copy_(0, cells, scores[rows, cells])
        if on_host(self.device):
            fitness = self.fitness_tensor.numpy().copy()
        else:
            self._host.copy_(self.fitness_tensor)  # the per-class best values: all the host reads
            fitness = self._host.numpy().copy()
        improved = np.flatnonzero(fitness != self.fitness)
        self.fitness = fitness
        if len(improved):
            self.generation_found[improved] = generation
            self.milestones.update(improved, generation, fitness[improved])
        return improved

    def _offer_device(self, confidence: torch.Tensor, parents: Optional[Union[torch.Tensor, np.ndarray]]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(cells, rows) the cells that improved and the row of ``confidence`` (N, cells) each takes (device
        tensors); updates fitness, parents and :attr:`better` (not the elites)."""
        best_fit, best = confidence.max(dim=0)  # (cells,) the best candidate for each cell (first of ties)
        better = best_fit > self.fitness_tensor
        cells = torch.nonzero(better).squeeze(1)  # the generation's one synchronisation
        self.better = better if len(cells) else None
        rows = best.index_select(0, cells)
        if len(cells):  # else nothing on the device changes (most late generations)
            self.fitness_tensor = torch.where(better, best_fit, self.fitness_tensor)
            if parents is None:
                self.parent_tensor.index_fill_(0, cells, -1)
            else:
                parents = torch.as_tensor(parents, dtype=torch.long, device=self.device)
                self.parent_tensor.index_copy_(0, cells, parents.index_select(0, rows))
        return cells, rows

    def _offer_host(self, confidence: torch.Tensor, parents: Optional[Union[torch.Tensor, np.ndarray]]
                    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_offer_device` for an archive on the CPU, on numpy views of its tensors (host int64 cells and
        rows): the same choices (the first of ties, strict improvements), each step a numpy call of a few µs."""
        values = confidence.numpy()
        if not len(values):
            self.better = None
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        best = values.argmax(axis=0)  # (cells,) the first best candidate, as torch's max
        best_fit = values[best, np.arange(values.shape[1])]
        fitness = self.fitness_tensor.numpy()
        better = best_fit > fitness
        cells = np.flatnonzero(better)
        rows = best[cells]
        self.better = torch.from_numpy(better) if len(cells) else None
        if len(cells):
            self.fitness_tensor = torch.from_numpy(np.where(better, best_fit, fitness))
            held = self.parent_tensor.numpy()  # the tensor's memory: written in place
            held[cells] = -1 if parents is None else np.asarray(parents, dtype=np.int64)[rows]
        return cells, rows

    def elites(self, cells: Index) -> Any:
        """A fresh batch of the elites of ``cells`` (which must be occupied; host indices or a tensor)."""
        return self.store.get(cells)

    def elite_rows(self, cells: np.ndarray) -> Rows:
        """The elites of occupied ``cells`` (host indices) of a tensor encoding as rows of the bank, not gathered:
        ``source[index]``, valid until the next :meth:`add`."""
        if not isinstance(self.store, TensorStore):
            raise TypeError(f"the {self.encoding.name} encoding's elites are not rows of a bank")
        return self.store.rows(cells)

    def elite_keys(self) -> np.ndarray:
        """(cells,) int64: cells with equal keys hold the same elite (-1: empty)."""
        return self.store.host_keys()

    # --- checkpointing: plain arrays (or Rows of the bank, for a checkpoint) ---------
    def state_dict(self, rows: bool = False) -> dict[str, Union[np.ndarray, Rows]]:
        """Arrays describing the archive; shared elites are stored once.

        rows: give tensor elites as ``elite.genes``, a :class:`~fooling.rowdigests.Rows` over the store's bank
        (no gathered copy; its rows' digests are cached), for a checkpoint; False: plain ndarrays only.
        """
        keys = self.elite_keys()
        unique: dict[int, int] = {}
        firsts: list[int] = []
        index = np.full(len(self), -1, dtype=np.int64)
        for cell, key in enumerate(keys.tolist()):  # once per checkpoint, not per generation
            if key < 0:
                continue
            if key not in unique:
                unique[key] = len(firsts)
                firsts.append(cell)
            index[cell] = unique[key]
        state = {
            "classes": self.classes, "fitness": self.fitness, "generation_found": self.generation_found,
            "parent": self.parent, "passed": self.passed, "elite_index": index,
        }
        if self.scores_tensor is not None:
            state["scores"] = self.scores
        if firsts and rows and isinstance(self.store, TensorStore):
            state["elite.genes"] = self.store.rows(np.array(firsts))  # what the direct encoding's to_arrays gives
        elif firsts:
            for key, value in self.encoding.to_arrays(self.elites(np.array(firsts))).items():
                state[f"elite.{key}"] = value
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if not np.array_equal(state["classes"], self.classes):
            raise ValueError("checkpoint archive has different classes")
        fitness = state["fitness"].astype(np.float64)
        if fitness.shape != (len(self),):
            raise ValueError(f"checkpoint archive fitness has shape {fitness.shape}, not ({len(self)},)")
        self.fitness = fitness
        self.fitness_tensor = torch.tensor(fitness, device=self.device)
        self.generation_found = state["generation_found"].astype(np.int64)
        self.parent_tensor = torch.tensor(state["parent"].astype(np.int64), device=self.device)
        self.milestones = Milestones(state["passed"].astype(np.int64))
        self.scores_tensor = (torch.tensor(state["scores"].astype(np.float64), device=self.device)
                              if "scores" in state else None)
        index = np.asarray(state["elite_index"], dtype=np.int64)
        arrays = {k[len("elite."):]: v for k, v in state.items() if k.startswith("elite.")}
        if arrays:
            batch = self.encoding.from_arrays(arrays)
            if index.max(initial=-1) >= self.encoding.size(batch):
                raise IndexError("checkpoint archive elite_index points past its elites")
            self.store.load(batch, index)
        else:
            self.store.load(self.encoding.stack([]), np.full(len(self), -1, dtype=np.int64))
        self._next_key = int(index.max(initial=-1)) + 1
