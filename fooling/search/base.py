"""The ask/tell contract every evolutionary strategy follows.

A strategy proposes genomes (``ask``) and learns their confidences (``tell``);
it never decodes or scores anything itself. The run loop does that for the whole
batch at once, which is what lets evaluation run as one forward pass on a GPU.

Random numbers: ``rng`` (numpy) for host work (CPPN genomes), ``generator`` (a
``torch.Generator`` on the encoding's device) for encodings whose genomes are device
tensors (``encoding.rng_kind == "torch"``: the direct encoding). Both states go into
the checkpoint (the generator's as a uint8 array).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional, Union

import numpy as np
import torch

from ..archive import Archive
from ..errors import FoolingError
from ..hostwork import on_host
from .blocks import COUNTER_VARIATION, VARIATION, Plan

Scores = Union[torch.Tensor, np.ndarray]


class Strategy(ABC):
    """ask() -> genome batch; tell(batch, confidence (N, cells)) updates the archive."""

    def __init__(self, archive: Archive, rng: np.random.Generator,
                 generator: Optional[torch.Generator] = None) -> None:
        self.archive = archive
        self.encoding = archive.encoding
        self.rng = rng
        if generator is None:  # seeded from rng (callers outside the run loop)
            generator = torch.Generator(device=archive.device).manual_seed(int(rng.integers(2**63 - 1)))
        self.generator = generator
        self.generation = 0  # the generation the next ask() produces; 0 = the initial population
        # direct children on the CPU varied in compiled passes from counter-based draws (fooling.encodings.vary_cpu),
        # where the strategy's plans can be; a run checkpointed with PyTorch's per-block generators keeps them
        self.counters = self.counted and self.on_device and on_host(archive.device)

    @property
    def on_device(self) -> bool:
        """True when genomes are device tensors varied with :attr:`generator` (else host objects and :attr:`rng`)."""
        return self.encoding.rng_kind == "torch"

    @property
    def vary_rng(self) -> Union[np.random.Generator, torch.Generator]:
        """What the encoding's random / vary / mutate / crossover draw from."""
        return self.generator if self.on_device else self.rng

    planned = False  # True: direct genomes are varied in seeded blocks (plan() / take(), see .blocks)
    counted = False  # True: those blocks are varied from counter-based draws on the CPU (Plan.counters)

    @abstractmethod
    def ask(self) -> Any:
        """The next batch of genomes to evaluate."""

    def plan(self) -> Optional[Plan]:
        """The next generation as a small :class:`~fooling.search.blocks.Plan` (parent cells, per-block seeds)
        that :meth:`take` (or a Ray actor, for its piece) realises; None when this strategy does not plan (host
        genomes, the GA): then :meth:`ask` gives the genomes. ask() is ``take(plan())`` when it plans."""
        return None

    def take(self, plan: Plan) -> Any:
        """The genomes of ``plan`` (from this strategy's last :meth:`plan`), as ask() would return them."""
        raise NotImplementedError(f"{type(self).__name__} does not plan its generations")

    @abstractmethod
    def tell(self, genomes: Any, confidence: Scores, scores: Optional[Scores] = None) -> None:
        """Confidences (N, cells) of the batch from the last ask(), a tensor on the archive's device (numpy is
        accepted); ends the generation."""

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, JSON-able values) to checkpoint; the archive is saved separately."""
        arrays = {"generator": self.generator.get_state().numpy().copy()}
        values = {"generation": self.generation, "rng": self.rng.bit_generator.state,
                  "generator_device": self.generator.device.type}
        if self.planned and self.on_device:
            values["variation"] = self.variation
        return arrays, values

    @property
    def variation(self) -> str:
        """The random stream of this strategy's planned variation, recorded in checkpoints (a resume checks it)."""
        return COUNTER_VARIATION if self.counters else VARIATION

    def load_state_dict(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        if self.counters and values.get("variation") == VARIATION:
            self.counters = False  # begun with PyTorch's per-block generators on the CPU: continued on them
        kind = values.get("generator_device", "cpu")  # first: another device draws another stream, whatever else
        if "generator" in arrays and kind != self.generator.device.type:
            raise FoolingError(f"this run's random state is for device {kind}, not {self.generator.device.type}: "
                               f"resume it with --device {kind} to continue it bit-identically")
        if self.planned and self.on_device and values.get("variation") != self.variation:
            raise FoolingError(
                f"this run was checkpointed by an older fooling whose {self.encoding.name} variation drew another "
                f"random stream (not {self.variation}); it cannot continue bit-identically: start it "
                "again, or finish it with the fooling version that began it")
        self.generation = int(values["generation"])
        self.rng.bit_generator.state = values["rng"]
        if "generator" not in arrays:
            if self.on_device and self.generation > 0:
                raise FoolingError(
                    f"this run was checkpointed by an older fooling whose {self.encoding.name} genomes varied on the "
                    "host (numpy random state); it cannot continue bit-identically: start it again, or finish it "
                    "with the fooling version that began it")
            return
        self.generator.set_state(torch.from_numpy(np.ascontiguousarray(arrays["generator"], dtype=np.uint8)))
