"""What `fool sweep` runs: a grid of evolution runs over fixed settings, recorded in DIR/sweep.json.

The grid's axes are seeds x models x encodings [x strategies] [x presets] [x combines]; every other setting is
one value for all points, under its :class:`~fooling.settings.evolve.EvolveSettings` name (the options and
``--set`` of ``fool evolve``). A models entry is one network or an ensemble (a list); ``combines`` applies
to the ensemble entries only (a single network has nothing to combine). On the command line entries are
separated by ',' and an ensemble's networks joined by '+': ``--models mnist-lenet,mnist-lenet+mnist-lenet-b``.
Over a grid of strategies, ``target`` is the ga points' class and ``classes`` the other points' classes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..errors import FoolingError
from ..limits import MAX_SEEDS
from .evolve import (COMBINE, ENCODINGS, PLACEMENT_SETTINGS, PRESETS, RESUME_SETTINGS, STRATEGIES, EvolveSettings,
                     check_types, encoding_refusal)

SWEEP_FILE = "sweep.json"
# EvolveSettings fields a sweep sets per point (its axes) or itself (out): never among the fixed settings
AXIS_SETTINGS = ("model", "models", "encoding", "encodings", "strategy", "preset", "combine", "seed", "seeds", "out")
AXIS_OPTIONS = {"model": "--models", "models": "--models", "encoding": "--encodings", "encodings": "--encodings",
                "strategy": "--strategies", "preset": "--presets", "combine": "--combines", "seed": "--seeds",
                "seeds": "--seeds", "out": "--out"}

# axes that older sweeps kept among their fixed settings as null (a --config file's): a null one is dropped
RECORDED_NULL = ("encodings",)


def split_list(values: Sequence[str], option: str, separator: str = ",") -> list[str]:
    """Repeated option values, each split on ``separator``: ('a,b', 'c') -> ['a', 'b', 'c']; repeats refused."""
    out = [part.strip() for value in values for part in value.split(separator) if part.strip()]
    if len(set(out)) != len(out):
        raise FoolingError(f"{option} names {next(v for v in out if out.count(v) > 1)!r} twice")
    return out


def parse_models(values: Sequence[str]) -> list[list[str]]:
    """``--models`` values -> entries, each a list of networks: entries separated by ',' (or given as repeated
    --models), an ensemble's networks joined by '+'. ('a,b+c',) -> [['a'], ['b', 'c']]."""
    entries = split_list(values, "--models")
    models = [[name.strip() for name in entry.split("+")] for entry in entries]
    for entry, names in zip(entries, models):
        if not all(names):
            raise FoolingError(f"--models {entry!r}: an ensemble joins network names with '+', one on each side")
    return models


@dataclass
class SweepSettings:
    """A sweep: the grid's axes, the fixed settings of every run, and where and how to run them.

    settings: EvolveSettings values by name (none of :data:`AXIS_SETTINGS`). strategies / presets None: not
    axes (each point takes the preset's strategy, the default preset) and not part of the run names.
    combines None: the ensembles take ``settings["combine"]`` (default mean).
    workers / ray_address: Ray tasks on a local instance of N concurrent runs / on that cluster; neither: the
    runs one after another in this process. cpus_per_run / gpus_per_run: each task's Ray resources
    (gpus_per_run None: 1 where the cluster has GPUs, else 0).
    """

    out: str
    seeds: list[int] = field(default_factory=lambda: [0])
    models: list[list[str]] = field(default_factory=lambda: [[EvolveSettings.model]])
    encodings: list[str] = field(default_factory=lambda: ["direct"])
    strategies: Optional[list[str]] = None
    presets: Optional[list[str]] = None
    combines: Optional[list[str]] = None
    settings: dict[str, Any] = field(default_factory=dict)
    workers: Optional[int] = None
    ray_address: Optional[str] = None
    cpus_per_run: float = 1.0
    gpus_per_run: Optional[float] = None

    def validate(self) -> None:
        """One-line :class:`FoolingError` for the first axis or setting no sweep can use."""
        if not self.out:
            raise FoolingError("fool sweep needs --out DIR (the folder of its run directories)")
        for name, values in (("--seeds", self.seeds), ("--models", self.models), ("--encodings", self.encodings),
                             ("--strategies", self.strategies), ("--presets", self.presets),
                             ("--combines", self.combines)):
            if values is not None and not isinstance(values, (list, tuple)):  # a hand-edited sweep.json
                raise FoolingError(f"{name} must be a list of values, got {values!r}")
            if values is not None and not values:
                raise FoolingError(f"{name} needs at least one value")
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in self.seeds):
            raise FoolingError(f"--seeds must be integers 0 or above, got {self.seeds}")
        if len(self.seeds) > MAX_SEEDS:
            raise FoolingError(f"--seeds names {len(self.seeds):,} seeds, more than {MAX_SEEDS:,}")
        for option, values, allowed in (("--encodings", self.encodings, ENCODINGS),
                                        ("--strategies", self.strategies, STRATEGIES),
                                        ("--presets", self.presets, tuple(PRESETS)),
                                        ("--combines", self.combines, COMBINE)):
            for value in values or ():
                if value not in allowed:
                    raise FoolingError(f"{option}: unknown value {value!r}; choose from {', '.join(allowed)}")
        for strategy in self.strategies or ():  # without --strategies each point's preset picks one that fits
            for encoding in self.encodings:
                refusal = encoding_refusal(strategy, encoding, strategy_option="--strategies",
                                           encoding_option="--encodings")  # the sweep's options, not fool evolve's
                if refusal:
                    raise FoolingError(refusal)
        for entry in self.models:
            if not isinstance(entry, (list, tuple)) or not entry or any(not isinstance(m, str) or not m for m in entry):
                raise FoolingError(f"--models entries must each be a list of model names, none empty: {self.models}")
            if len(set(entry)) != len(entry):
                raise FoolingError(f"--models entry {','.join(entry)} names a network twice")
        # sweeps of a run's config.json made before encodings was an axis recorded its null among the settings
        self.settings = {k: v for k, v in self.settings.items() if not (k in RECORDED_NULL and v is None)}
        fixed = [k for k in self.settings if k in AXIS_SETTINGS]
        if fixed:
            raise FoolingError(f"{fixed[0]} is an axis of the sweep; give it with {AXIS_OPTIONS[fixed[0]]}")
        placed = [k for k in self.settings if k in PLACEMENT_SETTINGS]
        if placed:  # a sweep places whole runs (one Ray task each); a run's own actor pool would nest Ray
            raise FoolingError(f"{placed[0]} places one run's evaluations; a sweep places whole runs: use "
                               f"--workers N (runs at a time) or --ray-address")
        self.settings = check_types(dict(self.settings), where="the sweep's settings")
        if self.workers is not None and self.workers <= 0:
            raise FoolingError(f"--workers must be positive, got {self.workers}")
        if self.workers is not None and self.ray_address:
            raise FoolingError("give either --workers (a local Ray instance) or --ray-address (a cluster), not both")
        if not self.cpus_per_run > 0:
            raise FoolingError(f"--cpus-per-run must be positive, got {self.cpus_per_run}")
        if self.gpus_per_run is not None and self.gpus_per_run < 0:
            raise FoolingError(f"--gpus-per-run must be 0 or positive, got {self.gpus_per_run}")

    @property
    def uses_ray(self) -> bool:
        return self.workers is not None or bool(self.ray_address)

    # --- sweep.json ---------------------------------------------------------------------------
    def grid_json(self) -> dict[str, Any]:
        """What sweep.json records: the axes and the fixed settings (not where or how the runs ran)."""
        return {"seeds": list(self.seeds), "models": [list(e) for e in self.models],
                "encodings": list(self.encodings), "strategies": self.strategies, "presets": self.presets,
                "combines": self.combines, "settings": dict(self.settings)}

    @classmethod
    def from_grid_json(cls, data: Any, out: str, where: str) -> "SweepSettings":
        """The sweep recorded in sweep.json (``data``: its "grid"); one line if it is not one."""
        keys = ("seeds", "models", "encodings", "strategies", "presets", "combines", "settings")
        if not isinstance(data, dict) or set(data) != set(keys):
            raise FoolingError(f"{where} is not a sweep record (it needs {', '.join(keys)})")
        try:
            sweep = cls(out=out, **{k: data[k] for k in keys})
            sweep.validate()
        except FoolingError as err:
            raise FoolingError(f"{where}: {err}") from None
        except TypeError:
            raise FoolingError(f"{where} is not a sweep record") from None
        return sweep

    def extends(self, recorded: "SweepSettings") -> Optional[str]:
        """None if this grid is ``recorded``'s or adds points to it (more values on the same axes, the same fixed
        settings but the budget's: :data:`~fooling.settings.evolve.RESUME_SETTINGS`); else why not, in words."""
        for axis in ("strategies", "presets", "combines"):
            if (getattr(self, axis) is None) != (getattr(recorded, axis) is None):
                given = "names" if getattr(recorded, axis) is not None else "does not name"
                return f"it {given} --{axis}"
        for axis in ("seeds", "models", "encodings", "strategies", "presets", "combines"):
            mine, theirs = getattr(self, axis) or [], getattr(recorded, axis) or []
            missing = [v for v in theirs if v not in mine]
            if missing:
                value = ",".join(missing[0]) if isinstance(missing[0], list) else missing[0]
                return f"it has {axis} {value} that this one lacks"
        defaults = EvolveSettings().to_json()
        for key in sorted(set(self.settings) | set(recorded.settings)):
            if key in RESUME_SETTINGS:
                continue
            mine, theirs = self.settings.get(key, defaults.get(key)), recorded.settings.get(key, defaults.get(key))
            if mine != theirs:
                return f"it was made with {key} = {theirs!r}, this one has {mine!r}"
        return None

    def replace(self, **changes: Any) -> "SweepSettings":
        return dataclasses.replace(self, **changes)
