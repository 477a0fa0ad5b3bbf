"""Click options generated from a settings class (see :mod:`fooling.settings.fields`), grouped in --help.

``@settings_options(EvolveSettings)`` adds one option per setting (every value defaults to None
in click, so the command can tell what the user gave), plus ``--set key=value`` and
``--config FILE.json``. :func:`collect` turns what was given into a settings object: the
config file first, then the options given, then ``--set``.
"""

from __future__ import annotations

import math
import typing
from typing import Any, Callable, Optional, Sequence

import click

from ..errors import FoolingError
from ..settings.fields import Settings, _base, flag_of, parse_assignments

EXTRA_GROUP = "other"


class SettingOption(click.Option):
    """A click option that remembers the settings group it belongs to."""

    def __init__(self, *args: Any, group: str = EXTRA_GROUP, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group


class GroupedCommand(click.Command):
    """A command whose --help lists options under their settings group's heading."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(param, "group", EXTRA_GROUP), []).append(record)
        for name, rows in sections.items():
            with formatter.section(f"{name[:1].upper()}{name[1:]} options"):
                formatter.write_dl(rows)


class FiniteFloat(click.ParamType):
    """A float that is not NaN or infinite (refused in the settings' own words: '--until must be a finite number')."""

    name = "number"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> float:
        if isinstance(value, float) and math.isfinite(value):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            flag = param.opts[0] if param is not None and param.opts else "the value"
            raise click.ClickException(f"{flag} must be a finite number, got {value}")
        return number


def _click_type(tp: Any, choices: Optional[Sequence[str]]) -> Any:
    base, _ = _base(tp)
    if choices:  # checked by the settings class, so a wrong choice gets the same one line everywhere
        return str
    if base is int:
        return int
    if base is float:
        return FiniteFloat()
    return str  # str, and lists given as 'a,b,c' (parsed by the settings class's types)


def _default_text(cls: type[Settings], field: Any) -> str:
    if field.metadata.get("preset"):
        return "preset"
    default = field.default if field.default is not field.default_factory else None  # type: ignore[comparison-overlap]
    if default is None or default is __import__("dataclasses").MISSING:
        try:
            default = field.default_factory()
        except TypeError:
            default = None
    if default is None:
        return ""
    if isinstance(default, list):
        return ",".join(map(str, default)) or ""
    return str(default).lower() if isinstance(default, bool) else str(default)


def _example(cls: type[Settings]) -> str:
    """'mutation_eta=...' for --set's help: a preset field if the class has one."""
    fields = [f for f in cls.fields() if f.metadata.get("preset")] or cls.fields()
    return f"{fields[0].name}=..."


def settings_options(cls: type[Settings], skip: Sequence[str] = ()) -> Callable[[Callable], Callable]:
    """Decorate a click command with one option per setting of ``cls`` (``skip``: ones the command adds itself)."""
    types = cls.types()

    def decorate(function: Callable) -> Callable:
        params = []
        for field in cls.fields():
            if not field.metadata.get("cli", True) or field.name in skip:
                continue
            tp = types[field.name]
            base, _ = _base(tp)
            flag = flag_of(field.name, field)
            default = _default_text(cls, field)
            help_text = field.metadata["help"] + (f"  [default: {default}]" if default else "")
            if base is bool:
                params.append(SettingOption([f"{flag}/--no-{flag[2:]}", field.name], default=None,
                                            help=help_text, group=field.metadata["group"]))
            else:
                choices = field.metadata.get("choices")
                metavar = field.metadata.get("metavar") or (f"[{'|'.join(choices)}]" if choices else None)
                params.append(SettingOption([flag, field.name], type=_click_type(tp, choices),
                                            default=None, help=help_text, group=field.metadata["group"],
                                            metavar=metavar))
        params.append(SettingOption(["--set", "assignments"], multiple=True, metavar="KEY=VALUE", group=EXTRA_GROUP,
                                    help="Set any setting by its config.json name, e.g. --set "
                                         f"{_example(cls)} (repeatable; wins over the options above)."))
        params.append(SettingOption(["--config", "config_file"], type=click.Path(dir_okay=False), default=None,
                                    group=EXTRA_GROUP, help="Start from the settings in this JSON file (a previous "
                                                            "run's config.json works); options given win."))
        previous = getattr(function, "__click_params__", [])
        function.__click_params__ = previous + params[::-1]  # type: ignore[attr-defined]
        return function

    return decorate


def given_settings(cls: type[Settings], options: dict[str, Any]) -> dict[str, Any]:
    """The settings the user gave as options (not None), parsed to their declared types."""
    from ..settings.fields import parse_text

    types = cls.types()
    out: dict[str, Any] = {}
    for field in cls.fields():
        value = options.get(field.name)
        if value is None:
            continue
        tp = types[field.name]
        base, _ = _base(tp)
        if typing.get_origin(base) is list and isinstance(value, str):
            value = parse_text(value, tp, field.name)
        out[field.name] = value
    return out


def set_wins(options: dict[str, Any], key: str, given: Optional[str]) -> Optional[str]:
    """An option the command parses itself (``given``, e.g. --classes: names, indices, ranges), unless ``--set
    key=TEXT`` names it too: then TEXT (the last, if repeated), taken out of ``options``' assignments, as --set
    wins everywhere."""
    kept, text = [], None
    for pair in options.get("assignments") or ():
        name, sep, value = pair.partition("=")
        if sep and name.strip().replace("-", "_") == key:
            text = value
        else:
            kept.append(pair)
    options["assignments"] = tuple(kept)
    return given if text is None else text


def gather(cls: type[Settings], options: dict[str, Any], keep_from_file: Callable[[str], bool] = lambda k: True,
           extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The settings the user gave, by name: ``--config`` (keys passing ``keep_from_file``), then the
    options given, then ``extra``, then ``--set``; settings not given are absent."""
    values: dict[str, Any] = {}
    if options.get("config_file"):
        values.update({k: v for k, v in cls.read(options["config_file"]).items() if keep_from_file(k)})
    values.update(given_settings(cls, options))
    values.update(extra or {})
    values.update(parse_assignments(cls, options.get("assignments") or ()))
    return values


def collect(cls: type[Settings], options: dict[str, Any], keep_from_file: Callable[[str], bool] = lambda k: True,
            extra: Optional[dict[str, Any]] = None, values: Optional[dict[str, Any]] = None) -> Settings:
    """Settings from ``--config`` (keys passing ``keep_from_file``), then the given options, then ``--set``.

    options: the command's keyword arguments (``config_file`` and ``assignments`` included).
    extra: values the command computed itself (e.g. classes resolved from names); they win over options.
    values: what :func:`gather` returned, when the command looked at it first.
    """
    if values is None:
        values = gather(cls, options, keep_from_file, extra)
    try:
        return cls(**values)  # type: ignore[call-arg]
    except TypeError as err:  # pragma: no cover - fields are checked above
        raise FoolingError(str(err)) from None
