"""Per-row digests an owner of a big array keeps, so a checkpoint rehashes only the rows that changed.

A checkpoint (format 4 on) stores a big (R, ...) array as content-addressed blocks; when a row is a block, the
block's name is the BLAKE3 digest of the bytes stored for the row (the row's own, or an image row's at a coarser
resolution: then the cache keeps the factor with the digest, as ``digest/factor``). The owner of such an array
(the archive's bank of elites, the snes-elites means and step sizes) keeps a :class:`RowDigests` beside it and
calls :meth:`RowDigests.forget` next to EVERY write of its rows; its ``state_dict`` hands the checkpoint a
:class:`Rows` instead of an ndarray.
The checkpoint then reads (and hashes) only rows whose digest is unknown or whose block is not on disk, and
records the digests it computed only after the state that names them is durable, and (a checkpoint written in
another thread while the owner goes on) only for rows not forgotten since it read them. A stale digest would make a
checkpoint name an old block (which loads and verifies fine): ``FOOLING_VERIFY_DIGESTS=1`` makes every
checkpoint rehash the rows it trusted and raise on a mismatch (the test suite runs with it).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .hostwork import on_host

VERIFY = "FOOLING_VERIFY_DIGESTS"  # "1": checkpoints rehash every row whose digest they would trust

RowIndex = Union[torch.Tensor, np.ndarray, Sequence[int]]


def verifying() -> bool:
    """Whether ``$FOOLING_VERIFY_DIGESTS`` asks checkpoints to check every cached digest."""
    return os.environ.get(VERIFY, "") == "1"


class RowDigests:
    """For each of ``rows`` rows: the name a checkpoint stored its block by (the digest in hex, with ``/factor``
    for a coarsened image row), or unknown (None); opaque here.

    Which digests are known is a (rows,) bool tensor on the owner's ``device``, so :meth:`forget` with device
    indices never waits for the device; the digests themselves are host strings, read once per checkpoint.
    """

    def __init__(self, rows: int, device: Optional[torch.device] = None) -> None:
        self._known = torch.zeros(rows, dtype=torch.bool, device=device)
        self._hex: list[Optional[str]] = [None] * rows
        # when each row was last forgotten, on a clock that every forget() advances: a checkpoint committed in
        # another thread caches a digest only for rows not written since it read them (see set_many's since)
        self.clock = 0
        self._stamp = torch.zeros(rows, dtype=torch.long, device=device)

    def __len__(self) -> int:
        return len(self._hex)

    def _index(self, rows: RowIndex) -> torch.Tensor:
        if isinstance(rows, torch.Tensor):
            return rows.to(device=self._known.device, dtype=torch.long)
        return torch.as_tensor(np.asarray(rows, dtype=np.int64).reshape(-1), device=self._known.device)

    def forget(self, rows: Optional[RowIndex] = None) -> None:
        """The digests of ``rows`` (indices; None: all rows) are unknown: call next to every write of them."""
        self.clock += 1
        if rows is None:
            self._known.fill_(False)
            self._stamp.fill_(self.clock)
        else:
            index = self._index(rows)
            self._known.index_fill_(0, index, False)
            self._stamp.index_fill_(0, index, self.clock)

    def known(self, i: int) -> Optional[str]:
        """Row ``i``'s digest, or None if unknown."""
        return self._hex[i] if bool(self._known[i]) else None

    def known_many(self, rows: np.ndarray) -> list[Optional[str]]:
        """The digests of ``rows`` (host int64 indices), None where unknown: one read of the known flags."""
        known = self._known.cpu().numpy()
        return [self._hex[i] if known[i] else None for i in np.asarray(rows, dtype=np.int64).tolist()]

    def set_many(self, rows: Sequence[int], digests: Sequence[str], since: Optional[int] = None) -> None:
        """Rows ``rows`` have these ``digests``: as they are now, or (``since``: a past :attr:`clock`) as they
        were then; rows forgotten after ``since`` stay unknown."""
        rows = [int(i) for i in rows]
        if since is not None and since < self.clock and rows:
            unchanged = (self._stamp[self._index(rows)] <= since).cpu().tolist()
            rows, digests = [i for i, keep in zip(rows, unchanged) if keep], \
                [d for d, keep in zip(digests, unchanged) if keep]
        for i, digest in zip(rows, digests):
            self._hex[i] = digest
        if rows:
            self._known.index_fill_(0, self._index(rows), True)


class Rows:
    """A big array handed to a checkpoint as rows of an owner's tensor, not copied whole.

    source: (S, ...) C-contiguous tensor on any device, with ``digests`` over its S rows. index: (R,) host
    int64, which source row each row of this array is (None: all S in order). The array is (R, ...) of
    source's dtype; row i is ``source[index[i]]``. Valid until the owner next writes ``source``.
    image: (C, H, W) when each row is an image in C order: a checkpoint then stores a row whose pixels repeat in
    squares at a coarser resolution (:mod:`fooling.rundir.coarse`, lossless).
    """

    def __init__(self, source: torch.Tensor, digests: RowDigests, index: Optional[np.ndarray] = None,
                 image: Optional[tuple[int, int, int]] = None) -> None:
        if not source.is_contiguous() or source.dim() < 1 or len(digests) != source.shape[0]:
            raise ValueError("Rows needs a C-contiguous tensor with one digest per row")
        if image is not None and (len(image) != 3 or int(np.prod(image)) * source.shape[0] != source.numel()):
            raise ValueError(f"rows of {tuple(source.shape[1:])} values are not images {image}")
        self.image = None if image is None else (int(image[0]), int(image[1]), int(image[2]))
        self.source, self.digests = source.detach(), digests
        self.index = np.arange(source.shape[0], dtype=np.int64) if index is None else \
            np.asarray(index, dtype=np.int64).reshape(-1)
        self.shape: tuple[int, ...] = (len(self.index), *source.shape[1:])
        self.dtype = np.dtype(torch.empty(0, dtype=source.dtype).numpy().dtype)
        self.ndim = len(self.shape)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self._whole = index is None

    def __len__(self) -> int:
        return self.shape[0]

    def known(self) -> list[Optional[str]]:
        """(R,) each row's cached digest, None where unknown."""
        return self.digests.known_many(self.index)

    def host_rows(self, positions: Sequence[int]) -> list[memoryview]:
        """The C-order bytes of rows ``positions`` on the host: views of the source on the CPU; on another
        device only these rows are copied (one gather, one transfer)."""
        if not on_host(self.source.device):
            return self.copied_rows(positions)
        host = self.source.numpy()
        return [memoryview(host[i]).cast("B") for i in self.index[np.asarray(positions, dtype=np.int64)].tolist()]

    def copied_rows(self, positions: Sequence[int]) -> list[memoryview]:
        """As :meth:`host_rows`, but always of a host copy (one gather): they stay as they are while the owner
        goes on writing its tensor."""
        if not len(positions):
            return []
        rows = torch.as_tensor(self.index[np.asarray(positions, dtype=np.int64)], device=self.source.device)
        taken = self.source.index_select(0, rows).cpu().numpy()
        return [memoryview(row).cast("B") for row in taken]

    def clock(self) -> int:
        """The digests' clock now: hand it to :meth:`remember` when the rows were read now and hashed later."""
        return self.digests.clock

    def remember(self, positions: Sequence[int], digests: Sequence[str], since: Optional[int] = None) -> None:
        """Rows ``positions`` have these digests (call only once a durable state names their blocks); ``since``:
        the :meth:`clock` when they were read (rows the owner wrote after that stay unknown)."""
        self.digests.set_many(self.index[np.asarray(positions, dtype=np.int64)].tolist(), digests, since)

    def materialise(self) -> np.ndarray:
        """The (R, ...) array on the host (a view of a whole CPU source; else a copy)."""
        if self._whole:
            return self.source.cpu().numpy()
        return self.source.index_select(0, torch.as_tensor(self.index, device=self.source.device)).cpu().numpy()

    def __array__(self, dtype: Optional[np.dtype] = None, copy: Optional[bool] = None) -> np.ndarray:
        array = self.materialise()
        if dtype is not None and np.dtype(dtype) != array.dtype:
            return array.astype(dtype)
        return array.copy() if copy else array
