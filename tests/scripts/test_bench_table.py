"""scripts/bench_table.py: each row's cell and values from its benchmark's JSON lines; failures are reported."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "scripts" / "bench_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_table"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_table", None)


PHASES = {"label": "table", "cpu_ms_per_generation": {"ask": 1.0, "forward": 18.7}, "overhead_ms": 2.08,
          "ratio": 0.897, "run_ratio": 0.896}
LOOP = {"loop_evals_per_s": 79.68, "forward_evals_per_s": 91.52, "ratio": 0.871, "checkpoint_s": 1.51,
        "ratio_with_checkpoints": 0.733, "default_checkpoint_generations": 80,
        "ratio_with_default_checkpoints": 0.827, "image_shape": [3, 256, 256], "strategy": "snes-elites"}
OUTPUTS = {
    "mnist-direct-200": [PHASES],
    "mnist-direct-1000": [PHASES],
    "mnist-cppn-200": [PHASES],
    "mnist-wall": [{"config": "machine"}, {"config": "mnist-direct-200", "ratio": 0.83},
                   {"config": "mnist-direct-1000", "ratio": 0.93}, {"config": "mnist-direct-5seeds-200", "ratio": 0.9}],
    "imagenet-direct": [{"loops": {"direct": LOOP}}],
    "imagenet-cppn": [{"loops": {"cppn": LOOP}}],
    "cppn-render": [{"images_per_s_28px": 12400.5, "images_per_s_256px": 150.2}],
    "checkpoint": [{"cached_first_s": 3.1, "cached_next_s": 0.9, "cached_next_written_mb": 640.2,
                    "cached_same_s": 0.04, "cached_load_s": 2.2}],
    "memory": [{"memory": {"peak_rss_mb": 3230.0}}],
}


def test_every_row_reads_its_benchmarks_last_line(table):
    assert [r.name for r in table.ROWS] == list(OUTPUTS)
    for row in table.ROWS:
        cell, values = row.figure(OUTPUTS[row.name]), row.values(OUTPUTS[row.name])
        assert cell and "|" not in cell and json.dumps(values)
        assert row.command.startswith(("python scripts/", "OMP_WAIT_POLICY=PASSIVE python scripts/"))
        assert (ROOT / row.command.split("python ")[1].split()[0]).is_file()
    assert table.ROWS[3].figure(OUTPUTS["mnist-wall"]) == "0.830 / 0.930 / 0.900"
    assert table.ROWS[4].values(OUTPUTS["imagenet-direct"])["ratio_with_checkpoints"] == 0.733
    assert table.ROWS[8].figure(OUTPUTS["memory"]) == "3.23 GB peak RSS"


def test_a_failing_or_unexpected_command_is_reported_in_its_cell(table):
    row = table.Row("broken", "what", "echo oops >&2; exit 3", lambda lines: "x", lambda lines: {})
    cell, values = table.measure(row)
    assert cell == "failed (exit 3: oops)" and values["error"] == "oops"
    row = table.ROWS[0].__class__("odd", "what", "echo '{\"other\": 1}'", table.ROWS[0].figure, table.ROWS[0].values)
    cell, values = table.measure(row)
    assert cell.startswith("failed (unexpected output") and "error" in values


def test_list_and_unknown_rows():
    script = [sys.executable, str(ROOT / "scripts" / "bench_table.py")]
    listed = subprocess.run([*script, "--list"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "imagenet-direct" in listed.stdout
    unknown = subprocess.run([*script, "--only", "nope"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "unknown row nope" in unknown.stderr


def test_main_prints_the_table_then_one_json_line(table, monkeypatch, capsys):
    fast = table.Row("fast", "a fast row", "echo '{\"a\": 1}'", lambda lines: f"a = {lines[-1]['a']}",
                     lambda lines: {"a": lines[-1]["a"]})
    broken = table.Row("broken", "a broken row", "exit 4", lambda lines: "", lambda lines: {})
    monkeypatch.setattr(table, "ROWS", [fast, broken])
    monkeypatch.setattr(sys, "argv", ["bench_table.py"])
    assert table.main() == 1  # a row failed
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["| what | figure | command |", "|---|---|---|", "| a fast row | a = 1 | `echo '{\"a\": 1}'` |"]
    assert out[3].startswith("| a broken row | failed (exit 4")
    last = json.loads(out[-1])
    assert last["rows"]["fast"]["a"] == 1 and "error" in last["rows"]["broken"] and len(last["load_average"]) == 3
    monkeypatch.setattr(sys, "argv", ["bench_table.py", "--only", "fast"])
    assert table.main() == 0 and json.loads(capsys.readouterr().out.splitlines()[-1])["rows"].keys() == {"fast"}


def test_the_readmes_current_figures_are_the_tables_rows(table):
    """README's "Current figures" table lists every row of the script, each with its exact command beside it."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Current figures"):readme.index("### Other figures")]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    assert len(rows) == len(table.ROWS)
    for line, row in zip(rows, table.ROWS):
        assert line.startswith(f"| {row.what} |") and line.endswith(f"| `{row.command}` |"), line
