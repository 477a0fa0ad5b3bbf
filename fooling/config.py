"""Every setting of an evolution run, in one dataclass (saved as config.json).

Presets fill in the operator settings: ``paper`` is the 2015 code's, ``default``
is ours (tuned to need fewer evaluations; see README). Any field can still be
set explicitly; ``None`` means "take it from the preset".
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .errors import FoolingError

ENCODINGS = ("direct", "cppn")
STRATEGIES = ("map-elites", "ga")
PRESETS = ("default", "paper")
COLOURS = ("hls", "rgb")
MUTATIONS = ("unscaled", "bounded")
CPPN_COORDS = ("scaled", "pixel")
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")  # the devices a run can use (see classifiers.resolve_device)

# Limits on the size of a run, checked before anything is created (see check_run_size).
MAX_IMAGE_SIDE = 4096  # pixels: the largest --image-size
BYTES_PER_VALUE = 4  # genes and pixels are float32
MEMORY_FRACTION = 0.5  # a run's estimated working set may use at most this share of the machine's memory

# The settings that may change when a run resumes (the budget and how it is watched); every
# other setting is the run's own and comes from its config.json.
RESUME_SETTINGS = ("generations", "until", "checkpoint_every")


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
        """Raise :class:`FoolingError` for settings no run can use (types, ranges, choices; nothing loaded)."""
        check_types(self.to_json(), "setting ")
        if not self.model:
            raise FoolingError("--model must name a model")
        if self.models is not None and (not self.models or not all(self.models)):
            raise FoolingError("--models must name at least one model, with no empty names")
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise FoolingError(f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N")
        if self.seed < 0:
            raise FoolingError(f"--seed must be 0 or positive, got {self.seed}")
        if self.image_size is not None and not 0 < self.image_size <= MAX_IMAGE_SIDE:
            raise FoolingError(f"--image-size must lie in 1-{MAX_IMAGE_SIDE} (leave it out for the network's own "
                               f"input size), got {self.image_size}")
        for name in FLOAT_FIELDS:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise FoolingError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
        for name, choices in (("colour", COLOURS), ("mutation", MUTATIONS), ("cppn_coords", CPPN_COORDS)):
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise FoolingError(f"--{name.replace('_', '-')} must be one of {', '.join(choices)}, not {value!r}")
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
        for name in PROBABILITY_FIELDS:
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise FoolingError(f"--{name.replace('_', '-')} must lie in [0, 1], got {value}")
        for name in ("mutation_eta", "crossover_eta", "cppn_weight_eta", "rate_halving_every", "cppn_max_hidden"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise FoolingError(f"--{name.replace('_', '-')} must be 0 or positive, got {value}")

    @property
    def model_names(self) -> list[str]:
        """The networks scored against: ``models`` if given, else ``[model]``."""
        return list(self.models) if self.models else [self.model]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EvolveConfig":
        """The config a config.json holds; a :class:`FoolingError` for unknown settings or wrong types."""
        if not isinstance(data, dict):
            raise FoolingError(f"config.json must hold an object of settings, not {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in names or v is not None}  # retired options left unset
        unknown = set(data) - names
        if unknown:
            raise FoolingError(f"config.json has unknown settings: {', '.join(sorted(unknown))}")
        return cls(**check_types(data, "config.json: "))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


def _type_hints() -> dict[str, Any]:
    return typing.get_type_hints(EvolveConfig)


def _describe(hint: Any) -> str:
    """'an integer', 'a list of integers or null', … for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0]).split(' ', 1)[1]}s" if args else "a list"
    if origin is dict:
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint; bool is not an int and not a float here."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def check_types(data: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Check each setting in ``data`` against :class:`EvolveConfig`'s annotations; returns ``data``
    with integers given for float settings made floats. A wrong type is a one-line :class:`FoolingError`."""
    hints = _type_hints()
    out = dict(data)
    for name, value in data.items():
        hint = hints.get(name)
        if hint is None:
            continue
        if not _matches(value, hint):
            raise FoolingError(f"{where}{name} must be {_describe(hint)}, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and float in (hint, *typing.get_args(hint)):
            out[name] = float(value)
    return out


FLOAT_FIELDS = tuple(f.name for f in dataclasses.fields(EvolveConfig)
                     if f.type in ("float", "Optional[float]"))
PROBABILITY_FIELDS = ("mutation_rate", "crossover_rate", "ga_cxpb", "ga_mutpb", "laggard_bias",
                      "cppn_add_connection", "cppn_delete_connection", "cppn_rewire_connection", "cppn_add_node",
                      "cppn_delete_node", "cppn_weight_rate", "cppn_function_rate")


def physical_memory() -> Optional[int]:
    """Bytes of memory this machine has (MemTotal of /proc/meminfo, else sysconf), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def estimate_bytes(config: EvolveConfig, image_shape: Sequence[int], cells: int) -> int:
    """Bytes a run holds at once, roughly: the largest generation's decoded images (N, C, H, W) and, for
    the direct encoding, its parents and children (N, C·H·W genes each) plus the archive's ``cells`` elites."""
    values = math.prod(int(v) for v in image_shape)
    batch = max(config.population, config.initial_population or config.population)
    copies = 3 * batch + cells if config.encoding == "direct" else 2 * batch  # cppn: images + resize workspace
    return copies * values * BYTES_PER_VALUE


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.1f} GiB"


def check_run_size(config: EvolveConfig, image_shape: Sequence[int], cells: int, min_side: int = 1,
                   memory: Optional[int] = None) -> None:
    """Refuse images smaller than the networks take (``min_side``) or a run whose estimated memory
    (:func:`estimate_bytes`) exceeds MEMORY_FRACTION of ``memory`` (default: :func:`physical_memory`)."""
    c, h, w = image_shape
    if min(h, w) < min_side:
        raise FoolingError(f"--image-size {min(h, w)} is too small for {', '.join(config.model_names)}: "
                           f"the smallest image side it takes is {min_side}")
    memory = physical_memory() if memory is None else memory
    need = estimate_bytes(config, image_shape, cells)
    if memory and need > MEMORY_FRACTION * memory:
        raise FoolingError(f"a run of {max(config.population, config.initial_population or 0)} images of "
                           f"{c}x{h}x{w} ({config.encoding}, {cells} classes) needs about {_gib(need)} of memory, "
                           f"more than {MEMORY_FRACTION:.0%} of this machine's {_gib(memory)}; "
                           f"lower --image-size or --population")


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
