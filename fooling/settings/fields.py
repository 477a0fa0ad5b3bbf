"""Declare a setting once; get its type check, validation, JSON round trip, preset filling and CLI from it.

A settings class is a dataclass whose fields are made with :func:`setting`::

    @dataclass
    class EvolveSettings(Settings):
        population: int = setting(200, "Children per generation.", group="budget", check=positive)

The field's annotation is its type (``int``, ``float``, ``str``, ``bool``, ``Optional[...]``,
``list[int]``, ``list[str]``); ``check`` returns an error message or None; ``choices`` limits a
string; ``preset=True`` marks a field whose ``None`` means "take it from the preset".
``fooling.cli.generated`` turns the same metadata into click options.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Optional, Sequence, TypeVar

from ..errors import FoolingError, shown

Check = Callable[[Any], Optional[str]]
S = TypeVar("S", bound="Settings")


def setting(
    default: Any,
    help: str,
    *,
    group: str,
    check: Optional[Check] = None,
    choices: Optional[Sequence[str]] = None,
    preset: bool = False,
    cli: bool = True,
    flag: Optional[str] = None,
    metavar: Optional[str] = None,
) -> Any:
    """A dataclass field carrying everything the rest of the package needs to know about one setting.

    default: its value when not given (for ``preset=True`` fields: None, filled from the preset).
    cli: False keeps it out of the generated options (still reachable with ``--set``/``--config``).
    flag: the option's name when not ``--<name-with-dashes>``.
    """
    meta = {"help": help, "group": group, "check": check, "choices": tuple(choices) if choices else None,
            "preset": preset, "cli": cli, "flag": flag, "metavar": metavar}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# --- checks ---------------------------------------------------------------------------------------
def positive(value: Any) -> Optional[str]:
    return None if value > 0 else "must be positive"


def non_negative(value: Any) -> Optional[str]:
    return None if value >= 0 else "must be 0 or positive"


def unit_interval(value: Any) -> Optional[str]:
    return None if 0.0 <= value <= 1.0 else "must lie in [0, 1]"


def at_most(limit: float) -> Check:
    def check(value: Any) -> Optional[str]:
        return None if value <= limit else f"must be at most {limit:g}"
    return check


def between(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Check:
    def check(value: Any) -> Optional[str]:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if above and below:
            return None
        return f"must lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return check


def distinct(value: Any) -> Optional[str]:
    """For a list of classes: none named twice, and at least one (leave the setting unset for all)."""
    if not len(value):
        return "must name at least one class (leave it unset for all of them)"
    return None if len(set(value)) == len(value) else "must not name a class twice"


def all_of(*checks: Check) -> Check:
    def check(value: Any) -> Optional[str]:
        for c in checks:
            message = c(value)
            if message:
                return message
        return None
    return check


# --- types ------------------------------------------------------------------------------------------
def _base(tp: Any) -> tuple[Any, bool]:
    """(the type inside Optional, whether None is allowed)."""
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), type(None) in typing.get_args(tp)
    return tp, False


def describe(tp: Any) -> str:
    """'an integer', 'a list of integers or null', ... for messages."""
    base, optional = _base(tp)
    nouns = {int: "integer", float: "number", str: "string", bool: "boolean"}
    if typing.get_origin(base) is list:
        text = f"a list of {nouns.get(typing.get_args(base)[0], 'value')}s"
    elif base in nouns:
        text = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[base]
    else:
        text = "an object" if typing.get_origin(base) is dict or base is dict else str(base)
    return f"{text} or null" if optional else text


def type_error(value: Any, tp: Any) -> str:
    """Why ``value`` is not a ``tp``: 'must be a finite number' for NaN and infinities, else 'must be <type>'."""
    base, _ = _base(tp)
    if base is float and isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return f"must be {describe(tp)}"


def conforms(value: Any, tp: Any) -> bool:
    """Whether a JSON value has type ``tp`` (bools are not numbers; ints are floats; no NaN or inf)."""
    base, optional = _base(tp)
    if value is None:
        return optional
    if base is bool:
        return isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if base is str:
        return isinstance(value, str)
    origin = typing.get_origin(base)
    if origin is list:
        item = typing.get_args(base)[0]
        return isinstance(value, list) and all(conforms(v, item) for v in value)
    if origin is dict or base is dict:
        return isinstance(value, dict)
    return isinstance(value, base)


def parse_text(text: str, tp: Any, name: str) -> Any:
    """A command-line string as a value of ``tp``: '7' -> 7, 'none' -> None, '0-2,5' stays for lists."""
    base, optional = _base(tp)
    stripped = text.strip()
    if optional and stripped.lower() in ("none", "null", ""):
        return None
    try:
        if base is bool:
            lowered = stripped.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int:
            return int(stripped)
        if base is float:
            value = float(stripped)
            if not math.isfinite(value):
                raise ValueError
            return value
        if base is str:
            return stripped
        if typing.get_origin(base) is list:
            item = typing.get_args(base)[0]
            return [parse_text(part, item, name) for part in stripped.split(",") if part.strip()]
        if typing.get_origin(base) is dict or base is dict:
            value = json.loads(stripped)
            if not isinstance(value, dict):
                raise ValueError
            return value
    except ValueError:
        pass
    if base is float and stripped.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise FoolingError(f"{flag_of(name)} must be a finite number, not {shown(text)}")
    raise FoolingError(f"{flag_of(name)} must be {describe(tp)}, not {shown(text)}")


def flag_of(name: str, field: Optional[dataclasses.Field] = None) -> str:
    custom = field.metadata.get("flag") if field is not None else None
    return custom or f"--{name.replace('_', '-')}"


# --- the base class ---------------------------------------------------------------------------
class Settings:
    """Mixin for settings dataclasses: typed JSON round trip, validation, presets.

    Subclasses may define ``PRESETS = {"name": {field: value, ...}}`` (with a field ``preset``
    naming the chosen one) and ``check_together()`` for rules that involve several fields.
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    FILE: ClassVar[str] = "config.json"  # what messages call the JSON form
    RETIRED: ClassVar[tuple[str, ...]] = ()  # keys older versions wrote; ignored when read

    def __post_init__(self) -> None:
        """Whole numbers given for number settings become floats (so config.json says 9.0, not 9)."""
        for name, tp in self.types().items():
            value = getattr(self, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and _base(tp)[0] is float:
                setattr(self, name, float(value))

    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def types(cls) -> dict[str, Any]:
        cache = cls.__dict__.get("_types_cache")
        if cache is None:
            cache = typing.get_type_hints(cls)
            cache = {f.name: cache[f.name] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
            setattr(cls, "_types_cache", cache)
        return cache

    @classmethod
    def field(cls, name: str) -> dataclasses.Field:
        for f in cls.fields():
            if f.name == name:
                return f
        raise FoolingError(f"unknown setting {name!r}; `--help` lists them")

    # --- validation -------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`FoolingError` (one line, naming the option) for the first value no run can use."""
        types = self.types()
        for f in self.fields():
            value = getattr(self, f.name)
            flag = flag_of(f.name, f)
            if not conforms(value, types[f.name]):
                raise FoolingError(f"{flag} {type_error(value, types[f.name])}, got {shown(value)}")
            if value is None:
                continue
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise FoolingError(f"unknown {f.name.replace('_', ' ')} {value!r}; "
                                   f"{flag} must be one of {', '.join(choices)}")
            check = f.metadata.get("check")
            message = check(value) if check else None
            if message:
                raise FoolingError(f"{flag} {message}, got {shown(value)}")
        if self.PRESETS and getattr(self, "preset", None) not in self.PRESETS:
            raise FoolingError(f"unknown preset {getattr(self, 'preset', None)!r}; choose from "
                               f"{', '.join(self.PRESETS)}")
        self.check_together()

    def check_together(self) -> None:
        """Rules over several fields; raise :class:`FoolingError`. Subclasses override."""

    # --- presets ----------------------------------------------------------------------------
    def resolved(self: S) -> S:
        """A validated copy with every preset field left at None filled from the chosen preset."""
        self.validate()
        if not self.PRESETS:
            return dataclasses.replace(self)  # type: ignore[type-var]
        values = self.PRESETS[getattr(self, "preset")]
        filled = {f.name: values[f.name] for f in self.fields()
                  if f.metadata.get("preset") and getattr(self, f.name) is None and f.name in values}
        out = dataclasses.replace(self, **filled)  # type: ignore[type-var]
        out.validate()
        return out

    # --- JSON and text ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls: type[S], data: Any, where: Optional[str] = None, retired: Sequence[str] = ()) -> S:
        """Settings from a JSON object; one-line errors for unknown keys and wrong types.

        retired: keys older versions wrote that are ignored when present (besides ``RETIRED``);
        unknown keys holding null (options an older version had, left unset) are ignored too.
        """
        where = where or cls.FILE
        if not isinstance(data, dict):
            raise FoolingError(f"{where} must hold a JSON object of settings, not {type(data).__name__}")
        names = {f.name for f in cls.fields()}
        dropped = set(retired) | set(cls.RETIRED)
        data = {k: v for k, v in data.items() if k not in dropped and (k in names or v is not None)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise FoolingError(f"{where} has unknown settings: {', '.join(unknown)}")
        types = cls.types()
        for key, value in data.items():
            if not conforms(value, types[key]):
                raise FoolingError(f"{where}: {key} {type_error(value, types[key])}, got {shown(value)}")
        return cls(**data)  # type: ignore[call-arg]

    @classmethod
    def read(cls: type[S], path: str | Path, retired: Sequence[str] = ()) -> dict[str, Any]:
        """The settings part of a JSON file (a previous run's config.json works: its "run" record is dropped, and
        so are the settings :meth:`left_to_run` names)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as err:
            raise FoolingError(f"cannot read {path}: {err.strerror or err}") from None
        except (ValueError, RecursionError):
            raise FoolingError(f"{path} is not valid JSON") from None
        if not isinstance(data, dict):
            raise FoolingError(f"{path} must hold a JSON object of settings")
        record = data.pop("run", None)
        settings = cls.from_json(data, where=str(path), retired=retired)  # type-checks every key
        left = set(cls.left_to_run(settings, record, str(path)))
        return {k: getattr(settings, k) for k in data if k in {f.name for f in cls.fields()} and k not in left}

    @classmethod
    def left_to_run(cls: type[S], settings: S, record: Any, where: str) -> Sequence[str]:
        """Settings of a file read by :meth:`read` (``settings``, with ``record``, its "run" record if any) that the
        run it starts decides anew (e.g. those a previous run resolved for its own networks); none here."""
        return ()

    def replace(self: S, **changes: Any) -> S:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def parse_assignments(cls: type[Settings], pairs: Sequence[str]) -> dict[str, Any]:
    """``--set key=value`` strings as typed values: ['mutation_eta=9'] -> {'mutation_eta': 9.0}."""
    types = cls.types()
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise FoolingError(f"--set takes key=value, not {shown(pair)}")
        cls.field(key)  # unknown keys: one line
        out[key] = parse_text(text, types[key], key)
    return out
