"""The settings declaration: types, checks, presets, JSON round trip and the generated command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import click
import pytest
from click.testing import CliRunner

from fooling.cli.generated import GroupedCommand, collect, settings_options
from fooling.errors import FoolingError
from fooling.settings.fields import Settings, parse_assignments, positive, setting, unit_interval


@dataclass
class Example(Settings):
    PRESETS = {"paper": {"eta": 15.0}, "default": {"eta": 5.0}}

    population: int = setting(200, "Children per generation.", group="budget", check=positive)
    rate: Optional[float] = setting(None, "Per-gene rate.", group="operators", check=unit_interval)
    eta: Optional[float] = setting(None, "Distribution index.", group="operators", preset=True)
    preset: str = setting("default", "Operator preset.", group="how", choices=("default", "paper"))
    classes: Optional[list[int]] = setting(None, "Classes.", group="what")
    verbose: bool = setting(False, "Say more.", group="how")


@click.command(cls=GroupedCommand)
@settings_options(Example)
def command(**options):
    click.echo(collect(Example, options).resolved().dumps())


def invoke(*args: str):
    return CliRunner().invoke(command, list(args))


def test_presets_fill_only_what_was_not_given():
    assert Example().resolved().eta == 5.0
    assert Example(preset="paper").resolved().eta == 15.0
    assert Example(preset="paper", eta=3.0).resolved().eta == 3.0


@pytest.mark.parametrize("values, words", [
    ({"population": 0}, "--population must be positive, got 0"),
    ({"rate": 1.5}, "--rate must lie in [0, 1], got 1.5"),
    ({"preset": "fast"}, "--preset must be one of default, paper"),
    ({"population": True}, "--population must be an integer"),
    ({"rate": float("nan")}, "--rate must be a finite number"),
])
def test_validation_names_the_option(values, words):
    with pytest.raises(FoolingError, match=None) as err:
        Example(**values).validate()
    assert words in str(err.value)


def test_json_round_trip_and_type_errors():
    settings = Example(population=7, classes=[1, 2], verbose=True)
    assert Example.from_json(settings.to_json()) == settings
    with pytest.raises(FoolingError, match="population must be an integer"):
        Example.from_json({"population": "7"})
    with pytest.raises(FoolingError, match="unknown settings: colour"):
        Example.from_json({"colour": "hls"})
    with pytest.raises(FoolingError, match="JSON object"):
        Example.from_json([1, 2])


def test_set_parses_to_declared_types():
    assert parse_assignments(Example, ["eta=9", "classes=1,2", "rate=none", "verbose=yes"]) == {
        "eta": 9.0, "classes": [1, 2], "rate": None, "verbose": True}
    with pytest.raises(FoolingError, match="unknown setting"):
        parse_assignments(Example, ["etta=9"])
    with pytest.raises(FoolingError, match="--population must be an integer"):
        parse_assignments(Example, ["population=many"])


def test_generated_cli_options_set_and_config(tmp_path):
    result = invoke("--population", "5", "--set", "eta=9", "--verbose")
    assert result.exit_code == 0, result.output
    assert '"eta": 9.0' in result.output and '"population": 5' in result.output and '"verbose": true' in result.output
    config = tmp_path / "config.json"
    config.write_text('{"population": 11, "preset": "paper", "run": {"command": "evolve"}}')
    result = invoke("--config", str(config))
    assert '"population": 11' in result.output and '"eta": 15.0' in result.output
    assert '"population": 3' in invoke("--config", str(config), "--population", "3").output


def test_help_groups_options_and_shows_defaults():
    text = invoke("--help").output
    assert "Budget options:" in text and "Operators options:" in text
    assert "[default: 200]" in text and "[default: preset]" in text
    assert "--set KEY=VALUE" in text


def test_non_finite_numbers_are_refused():
    result = invoke("--rate", "nan")
    assert result.exit_code != 0 and "finite" in result.output
