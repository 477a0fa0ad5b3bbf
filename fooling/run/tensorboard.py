"""A :class:`~fooling.run.hooks.Hook` that writes TensorBoard event files: ``tensorboard --logdir runs/``.

Scalars each generation (confidence/median, confidence/max, coverage, classes/>=99%, >=99.9%, >=99.99%,
evals_per_s) and, at each checkpoint, a grid of the elites (at most :data:`MAX_IMAGES`, the first classes).
Attach it from the API (``fooling.evolve(settings, hooks=[TensorBoard()])``) or with ``fool evolve
--tensorboard``; it needs the ``tensorboard`` package (``pip install 'fooling[tensorboard]'``).

The events are an observer's view, not part of the run's crash-safe record: on a resume the writer purges
events after the checkpoint the run continues from (SummaryWriter's ``purge_step``), so TensorBoard shows one
curve, not the redone generations twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..errors import FoolingError
from .hooks import GenerationRecord, Hook

if TYPE_CHECKING:
    from .evolve import EvolutionRun

THRESHOLDS = (0.99, 0.999, 0.9999)
MAX_IMAGES = 100  # elites in the image grid (ImageNet runs have 1000 classes)
SUBFOLDER = "tensorboard"


def summary_writer_class() -> Any:
    """torch's SummaryWriter; a :class:`FoolingError` saying what to install if tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise FoolingError("--tensorboard needs the tensorboard package: pip install 'fooling[tensorboard]'") \
            from None
    return SummaryWriter


def image_grid(images: np.ndarray, padding: int = 2) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] -> one (C, rows * (H + padding) + padding, ...) grid on white, about square."""
    n, c, h, w = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.ones((c, rows * (h + padding) + padding, cols * (w + padding) + padding), dtype=np.float32)
    for i in range(n):
        y, x = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[:, y:y + h, x:x + w] = images[i]
    return grid


class TensorBoard(Hook):
    """Write TensorBoard events to ``logdir`` (default RUN_DIR/tensorboard/)."""

    def __init__(self, logdir: Optional[str | Path] = None, max_images: int = MAX_IMAGES) -> None:
        self.logdir = None if logdir is None else Path(logdir)
        self.max_images = max_images
        self.writer: Any = None
        self._last_elapsed = 0.0
        self._checkpointed_at: Optional[float] = None
        self._writer_class = summary_writer_class()  # fail when attached, not in the middle of a run

    def on_start(self, run: "EvolutionRun") -> None:
        logdir = self.logdir or run.rundir.path / SUBFOLDER
        done = run.strategy.generation - 1
        self.writer = self._writer_class(log_dir=str(logdir), purge_step=done + 1 if done >= 0 else None)
        self._last_elapsed = run.elapsed
        self._checkpointed_at = run.checkpointed_at

    def after_generation(self, run: "EvolutionRun", record: GenerationRecord) -> None:
        w, g = self.writer, record.generation
        if w is None:
            return
        w.add_scalar("confidence/median", record.median_confidence, g)
        w.add_scalar("confidence/max", record.max_confidence, g)
        w.add_scalar("coverage", record.coverage, g)
        fitness = np.where(np.isfinite(run.archive.fitness), run.archive.fitness, 0.0)
        for t in THRESHOLDS:
            w.add_scalar(f"classes/>={t * 100:g}%", int((fitness >= t).sum()), g)
        seconds = record.elapsed_s - self._last_elapsed
        if seconds > 0:
            w.add_scalar("evals_per_s", record.new_evaluations / seconds, g)
        self._last_elapsed = record.elapsed_s
        if record.last or run.checkpointed_at != self._checkpointed_at:  # images and a flush at each checkpoint
            self._checkpointed_at = run.checkpointed_at
            self._images(run, g)
            w.flush()

    def _images(self, run: "EvolutionRun", generation: int) -> None:
        import torch

        cells = run.archive.occupied[: self.max_images]
        if not len(cells):
            return
        with torch.inference_mode():
            images = run.encoding.decode(run.archive.elites(cells), run.device).float().clamp(0, 1).cpu().numpy()
        self.writer.add_image("elites", image_grid(images), generation)

    def on_end(self, run: "EvolutionRun", stop_reason: Optional[str]) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
