"""Every setting of an evolution run, in one dataclass (saved as config.json).

Presets fill in the operator settings: ``paper`` is the 2015 code's, ``default``
is ours (tuned to need fewer evaluations; see README). Any field can still be
set explicitly; ``None`` means "take it from the preset".
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import FoolingError

ENCODINGS = ("direct", "cppn")
STRATEGIES = ("map-elites", "ga")
PRESETS = ("default", "paper")


@dataclass
class EvolveConfig:
    """One run of ``fool evolve``. Operator fields left at None come from the preset."""

    # what to fool
    model: str = "mnist-lenet"
    models: Optional[list[str]] = None  # ensemble: several networks at once (None: just ``model``)
    combine: str = "mean"  # how an ensemble's confidences combine: mean | min
    classes: Optional[list[int]] = None  # the classes to evolve for (None: all)
    crops: int = 1  # 1, or 10 for the paper's ten-crop ImageNet scoring

    # how
    encoding: str = "direct"
    strategy: str = "map-elites"
    preset: str = "default"
    target: Optional[int] = None  # the class a single-target GA run fools
    image_size: Optional[int] = None  # evolved image side (None: the network's own input, 256 for ImageNet direct)

    # budget
    generations: int = 200
    population: int = 200
    initial_population: Optional[int] = None  # None: same as population
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 10
    snapshot_every: int = 0  # also keep the elites of every Nth generation in snapshots/<gen>/ (0: never)
    until: Optional[float] = None  # stop early once every class reaches this confidence

    # direct encoding
    colour: Optional[str] = None  # how 3-channel genes read: hls (paper) | rgb
    mutation: Optional[str] = None  # polynomial variant: unscaled (paper) | bounded (DEAP)
    mutation_rate: Optional[float] = None  # per-gene probability
    mutation_eta: Optional[float] = None
    rate_halving_every: Optional[int] = None  # halve mutation_rate every K generations (0: never)
    crossover_rate: Optional[float] = None  # SBX probability per pair of children
    crossover_eta: Optional[float] = None

    # MAP-Elites
    laggard_bias: Optional[float] = None  # share of parents drawn by 1 - confidence instead of uniformly

    # GA (single target)
    ga_cxpb: Optional[float] = None
    ga_mutpb: Optional[float] = None

    # CPPN encoding
    cppn_coords: Optional[str] = None  # scaled ([-1, 1]) | pixel (the original's raw pixel indices for x, y)
    cppn_add_connection: Optional[float] = None
    cppn_delete_connection: Optional[float] = None
    cppn_rewire_connection: Optional[float] = None
    cppn_add_node: Optional[float] = None
    cppn_delete_node: Optional[float] = None
    cppn_weight_rate: Optional[float] = None
    cppn_weight_eta: Optional[float] = None
    cppn_function_rate: Optional[float] = None
    cppn_max_hidden: Optional[int] = None

    # bookkeeping
    out: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> "EvolveConfig":
        """A copy with every None operator field filled from the preset, validated."""
        self.validate()
        values = dataclasses.asdict(self)
        for key, value in PRESET_VALUES[self.preset].items():
            if values.get(key) is None:
                values[key] = value
        if values["initial_population"] is None:
            values["initial_population"] = values["population"]
        return EvolveConfig(**values)

    def validate(self) -> None:
        """Raise :class:`FoolingError` for settings no run can use."""
        if self.encoding not in ENCODINGS:
            raise FoolingError(f"unknown encoding {self.encoding!r}; choose from {', '.join(ENCODINGS)}")
        if self.strategy not in STRATEGIES:
            raise FoolingError(f"unknown strategy {self.strategy!r}; choose from {', '.join(STRATEGIES)}")
        if self.preset not in PRESETS:
            raise FoolingError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        if self.combine not in ("mean", "min"):
            raise FoolingError(f"--combine must be mean or min, not {self.combine!r}")
        for name in ("generations", "population", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise FoolingError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.initial_population is not None and self.initial_population <= 0:
            raise FoolingError(f"--initial-population must be positive, got {self.initial_population}")
        if self.strategy == "ga" and self.target is None:
            raise FoolingError("--strategy ga needs --target CLASS")
        if self.snapshot_every < 0:
            raise FoolingError(f"--snapshot-every must be 0 or positive, got {self.snapshot_every}")
        if self.until is not None and not 0.0 < self.until <= 1.0:
            raise FoolingError(f"--until must lie in (0, 1], got {self.until}")
        if self.crops not in (1, 10):
            raise FoolingError(f"--crops must be 1 or 10, got {self.crops}")
        for name in ("mutation_rate", "crossover_rate", "ga_cxpb", "ga_mutpb", "laggard_bias"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise FoolingError(f"--{name.replace('_', '-')} must lie in [0, 1], got {value}")

    @property
    def model_names(self) -> list[str]:
        """The networks scored against: ``models`` if given, else ``[model]``."""
        return list(self.models) if self.models else [self.model]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EvolveConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in names or v is not None}  # retired options left unset
        unknown = set(data) - names
        if unknown:
            raise FoolingError(f"config.json has unknown settings: {', '.join(sorted(unknown))}")
        return cls(**data)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


# The operator settings of each preset. "paper": the 2015 code (PAPER.md).
# "default": ours; see README "Beating the paper" for why each differs.
PRESET_VALUES: dict[str, dict[str, Any]] = {
    "paper": {
        "colour": "hls",
        "mutation": "unscaled",
        "mutation_rate": 0.1,
        "mutation_eta": 15.0,
        "rate_halving_every": 1000,
        "crossover_rate": 0.5,
        "crossover_eta": 10.0,
        "laggard_bias": 0.0,
        "ga_cxpb": 0.5,
        "ga_mutpb": 0.5,
        "cppn_coords": "pixel",
        "cppn_add_connection": 0.5,
        "cppn_delete_connection": 0.3,
        "cppn_rewire_connection": 0.5,
        "cppn_add_node": 0.5,
        "cppn_delete_node": 0.2,
        "cppn_weight_rate": 0.1,
        "cppn_weight_eta": 15.0,
        "cppn_function_rate": 0.1,
        "cppn_max_hidden": 200,
    },
    "default": {
        "colour": "hls",
        "mutation": "unscaled",
        "mutation_rate": 0.1,
        "mutation_eta": 5.0,
        "rate_halving_every": 0,
        "crossover_rate": 0.5,
        "crossover_eta": 10.0,
        "laggard_bias": 0.0,
        "ga_cxpb": 0.5,
        "ga_mutpb": 0.5,
        "cppn_coords": "scaled",
        "cppn_add_connection": 0.5,
        "cppn_delete_connection": 0.3,
        "cppn_rewire_connection": 0.5,
        "cppn_add_node": 0.5,
        "cppn_delete_node": 0.2,
        "cppn_weight_rate": 0.1,
        "cppn_weight_eta": 15.0,
        "cppn_function_rate": 0.1,
        "cppn_max_hidden": 200,
    },
}
