"""A run's config.json as --config: what the run left to its preset is chosen again for the new run's preset,
encoding and strategy (config.json's run.preset_filled); values given, or edited into the file, stand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fooling.cli import main
from fooling.errors import FoolingError
from fooling.run import EvolutionRun
from fooling.settings.evolve import PRESET_FILLED, PRESETS, EvolveSettings


def _evolve(out: Path, *args: str):
    return CliRunner().invoke(main, ["evolve", "--quiet", "--model", "test-oracle", "--generations", "1",
                                     "--device", "cpu", "--out", str(out), *args])


def _config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def _search(path: Path) -> tuple:
    c = _config(path)
    return c["encoding"], c["strategy"], c["population"], c["initial_population"], c["mutation_rate"]


@pytest.fixture
def direct_run(tmp_path) -> Path:
    """A default-preset direct run (snes-elites, 40 children) given mutation_eta (so not left to its preset)."""
    out = tmp_path / "direct"
    result = _evolve(out, "--set", "mutation_eta=7.5")
    assert result.exit_code == 0, result.output
    return out


def test_config_json_names_what_the_run_left_to_its_preset(direct_run):
    filled = _config(direct_run)["run"][PRESET_FILLED]
    assert {"strategy", "population", "initial_population", "mutation_rate", "crops"} <= set(filled)
    assert "mutation_eta" not in filled and "encoding" not in filled  # given; not a preset field
    assert set(filled) <= set(EvolveSettings.preset_fields())


def test_another_encoding_gets_its_own_search_not_the_files(direct_run, tmp_path):
    """The direct run's snes-elites (direct only) and its 40 children are the preset's choices for the direct
    encoding: with --encoding cppn the preset chooses the CPPN search (it was a one-line refusal)."""
    out = tmp_path / "cppn"
    result = _evolve(out, "--config", str(direct_run / "config.json"), "--encoding", "cppn")
    assert result.exit_code == 0, result.output
    expected = EvolveSettings(model="test-oracle", encoding="cppn", mutation_eta=7.5).resolved()
    assert _search(out)[:4] == ("cppn", expected.strategy, expected.population, expected.population)
    assert _config(out)["mutation_eta"] == 7.5  # given to the first run: it carries over


def test_another_strategy_gets_the_presets_population_for_it(direct_run, tmp_path):
    out = tmp_path / "map-elites"
    result = _evolve(out, "--config", str(direct_run / "config.json"), "--strategy", "map-elites")
    assert result.exit_code == 0, result.output
    assert _search(out)[1:4] == ("map-elites", 200, 200)


def test_the_same_config_reproduces_the_run_and_passes_on_what_the_preset_chose(direct_run, tmp_path):
    again, third = tmp_path / "again", tmp_path / "third"
    assert _evolve(again, "--config", str(direct_run / "config.json")).exit_code == 0
    before, after = _config(direct_run), _config(again)
    assert {k: v for k, v in after.items() if k not in ("out", "run")} == \
        {k: v for k, v in before.items() if k not in ("out", "run")}
    assert after["run"][PRESET_FILLED] == before["run"][PRESET_FILLED]  # so a config of a config works alike
    result = _evolve(third, "--config", str(again / "config.json"), "--encoding", "cppn")
    assert result.exit_code == 0, result.output
    assert _search(third)[1] == "map-elites"


def test_a_value_edited_into_the_file_or_chosen_by_an_older_preset_stands(direct_run, tmp_path):
    """A value the preset would not choose for the file's own settings was edited in, or chosen by another
    version's preset: it is the run's, and stays (the run is reproduced), and the new run no longer calls it the
    preset's."""
    record = _config(direct_run)
    record["mutation_rate"], record["population"] = 0.3, 64
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(record))
    out = tmp_path / "run"
    result = _evolve(out, "--config", str(path))
    assert result.exit_code == 0, result.output
    # the file's initial population 40 is no longer the preset's choice for its population 64: it stands too
    assert _search(out)[1:] == ("snes-elites", 64, 40, 0.3)
    assert not {"mutation_rate", "population", "initial_population"} & set(_config(out)["run"][PRESET_FILLED])


def test_a_value_that_follows_one_that_stands_is_compared_with_it_in_place(tmp_path, monkeypatch):
    """An older preset's strategy (map-elites) with the 40 children it chose: 40 is today's preset's population,
    but not its choice for the file's own map-elites (200), so it stands and the file reproduces the run (the
    40 were dropped and 200 children run). The same holds for a file whose strategy was edited to map-elites."""
    monkeypatch.setitem(PRESETS, "default", {**PRESETS["default"], "strategy": "map-elites"})
    older = tmp_path / "older"
    assert _evolve(older).exit_code == 0
    monkeypatch.undo()
    assert _search(older)[1:4] == ("map-elites", 40, 40)
    out = tmp_path / "run"
    result = _evolve(out, "--config", str(older / "config.json"))
    assert result.exit_code == 0, result.output
    assert _search(out)[1:4] == ("map-elites", 40, 40)
    assert {k: v for k, v in _config(out).items() if k not in ("out", "run")} == \
        {k: v for k, v in _config(older).items() if k not in ("out", "run")}


def test_a_config_recorded_before_is_taken_whole(direct_run, tmp_path):
    record = _config(direct_run)
    del record["run"][PRESET_FILLED]
    path = tmp_path / "before.json"
    path.write_text(json.dumps(record))
    result = _evolve(tmp_path / "run", "--config", str(path), "--encoding", "cppn")
    assert result.exit_code != 0 and "snes-elites searches the direct encoding only" in result.output


def test_resume_keeps_config_json_as_recorded(direct_run):
    record = _config(direct_run)
    EvolutionRun.resume(direct_run, generations=2).run(progress=False)
    assert _config(direct_run)["run"][PRESET_FILLED] == record["run"][PRESET_FILLED]


@pytest.mark.parametrize("value", ["strategy", ["strategy", "encoding"], [1], {"a": 1}])
def test_a_bad_preset_filled_is_one_line(direct_run, tmp_path, value):
    record = _config(direct_run)
    record["run"][PRESET_FILLED] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(record))
    with pytest.raises(FoolingError, match=rf"run\.{PRESET_FILLED} must be a list of setting names, got .*"
                                           r"\(settings a preset fills: crops, strategy, "):
        EvolveSettings.read(path)
    result = _evolve(tmp_path / "run", "--config", str(path))
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    (direct_run / "config.json").write_text(json.dumps(record))
    with pytest.raises(FoolingError, match=rf"run\.{PRESET_FILLED} must be"):
        EvolutionRun.resume(direct_run, generations=2)


def test_every_run_of_a_group_records_what_its_preset_chose(tmp_path):
    out = tmp_path / "group"
    result = _evolve(out, "--seeds", "0-1", "--encodings", "direct,cppn")
    assert result.exit_code == 0, result.output
    for member in ("direct_s0", "direct_s1", "cppn_s0", "cppn_s1"):
        assert {"strategy", "population"} <= set(_config(out / member)["run"][PRESET_FILLED])


def test_a_sweep_over_encodings_from_a_direct_runs_config(direct_run, tmp_path):
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["sweep", "--quiet", "--models", "test-oracle", "--encodings", "direct,cppn",
                                       "--generations", "1", "--device", "cpu", "--config",
                                       str(direct_run / "config.json"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    searches = {_config(p)["encoding"]: (_config(p)["strategy"], _config(p)["population"]) for p in out.iterdir()
                if (p / "config.json").exists()}
    cppn = EvolveSettings(model="test-oracle", encoding="cppn").resolved()
    assert searches == {"direct": ("snes-elites", 40), "cppn": (cppn.strategy, cppn.population)}  # not the file's 40
