"""`fool gallery` never destroys what it did not make, escapes everything on the page, and reports
broken images as one line (issue 10)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fooling.cli import main


def fool(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, relative path -> bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def oracle_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two tiny test-oracle runs (well under a second each)."""
    root = tmp_path_factory.mktemp("oracle-runs")
    paths = []
    for seed in (0, 1):
        path = root / f"s{seed}"
        result = fool("evolve", "--model", "test-oracle", "--generations", "2", "--population", "8",
                      "--seed", seed, "--device", "cpu", "--quiet", "--out", path)
        assert result.exit_code == 0, result.output
        paths.append(path)
    return paths


@pytest.fixture
def workdir(oracle_runs, tmp_path, monkeypatch) -> Path:
    """A folder holding runs/s0 and runs/s1 (the user's data), and the current directory."""
    for run in oracle_runs:
        shutil.copytree(run, tmp_path / "runs" / run.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_out_dot_beside_runs_destroys_nothing(workdir):
    before = snapshot(workdir / "runs")
    one_line_error(fool("gallery", "runs/s0", "--out", "."), "did not make")
    assert snapshot(workdir / "runs") == before
    # --force only adds beside foreign content; a foreign runs/ is never replaced
    one_line_error(fool("gallery", "runs/s0", "--out", ".", "--force"), "runs", "never replaced")
    assert snapshot(workdir / "runs") == before
    assert sorted(p.name for p in workdir.iterdir()) == ["runs"]  # no temporary folder left behind


def test_input_inside_what_a_rebuild_replaces(workdir):
    result = fool("gallery", "runs/s0", "--out", "gallery", "--quiet")
    assert result.exit_code == 0, result.output
    before = snapshot(workdir / "gallery")
    one_line_error(fool("gallery", "gallery/runs/s0", "--out", "gallery"), "would replace")
    assert snapshot(workdir / "gallery") == before


def test_rebuild_into_its_own_output(workdir):
    assert fool("gallery", "runs/s0", "runs/s1", "--out", "g", "--quiet").exit_code == 0
    assert sorted(p.name for p in (workdir / "g" / "runs").iterdir()) == ["s0", "s1"]
    marker = json.loads((workdir / "g" / ".fooling-gallery").read_text())
    assert marker["entries"] == ["index.html", "runs"]
    result = fool("gallery", "runs/s1", "--out", "g", "--quiet")  # no --force needed: all of it is ours
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (workdir / "g" / "runs").iterdir()) == ["s1"]
    assert sorted(p.name for p in (workdir / "g").iterdir()) == [".fooling-gallery", "index.html", "runs"]


def test_foreign_files_refused_then_kept_with_force(workdir):
    out = workdir / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "index.html").write_text("my page")
    one_line_error(fool("gallery", "runs/s0", "--out", out), "index.html", "never replaced")
    (out / "index.html").unlink()
    one_line_error(fool("gallery", "runs/s0", "--out", out), "notes.txt", "--force")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    result = fool("gallery", "runs/s0", "--out", out, "--force", "--quiet")
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "my notes" and (out / "index.html").is_file()
    result = fool("gallery", "runs/s1", "--out", out, "--force", "--quiet")  # a rebuild keeps them too
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "my notes"
    assert [p.name for p in (out / "runs").iterdir()] == ["s1"]


def test_a_forged_marker_does_not_license_deleting(workdir):
    """The marker names only the gallery's own entries; a run given as input is never replaced."""
    (workdir / ".fooling-gallery").write_text(json.dumps({"entries": ["index.html", "runs", "config.json"]}))
    before = snapshot(workdir / "runs")
    one_line_error(fool("gallery", "runs/s0", "--out", "."), "would replace")
    assert snapshot(workdir / "runs") == before


def test_out_in_or_inside_a_run_is_refused(workdir):
    before = snapshot(workdir / "runs")
    one_line_error(fool("gallery", "runs/s0", "--out", "runs/s1", "--force"), "run directory")
    one_line_error(fool("gallery", "runs/s0", "--out", "runs/s1/elites/g"), "run directory")
    one_line_error(fool("gallery", "runs/s0", "--out", "runs/s0/g"), "run directory")
    (workdir / "file").write_text("x")
    one_line_error(fool("gallery", "runs/s0", "--out", "file"), "is a file")
    assert snapshot(workdir / "runs") == before


def test_a_failed_build_leaves_nothing(workdir, monkeypatch):
    import fooling.gallery.build as build

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "render_page", boom)
    with pytest.raises(RuntimeError):
        build.build_gallery(["runs/s0"], "new")
    assert sorted(p.name for p in workdir.iterdir()) == ["runs"]


def test_broken_elite_png_names_the_file(workdir):
    png = sorted((workdir / "runs" / "s0" / "elites").glob("*.png"))[0]
    png.write_bytes(png.read_bytes()[:40])  # truncated
    one_line_error(fool("gallery", "runs/s0", "--out", "g"), png.name)
    assert not (workdir / "g").exists()
    png.write_bytes(b"not a png at all")
    one_line_error(fool("gallery", "runs/s0", "--out", "g"), png.name)


def test_progress_lines_on_a_non_terminal(workdir):
    result = CliRunner().invoke(main, ["gallery", "runs/s0", "runs/s1", "--out", "g"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[1/2] run ") and "left" in lines[0], result.stderr
    assert "\r" not in result.stderr
    quiet = CliRunner().invoke(main, ["gallery", "runs/s0", "--out", "g", "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


EVIL = "<script>alert(1)</script>"


def test_every_value_on_the_page_is_escaped(workdir):
    run = workdir / "runs" / "s0"
    summary = json.loads((run / "summary.json").read_text())
    for key in ("seed", "generation", "evaluations", "model", "encoding", "strategy"):
        summary[key] = EVIL
    for c in summary["classes"]:
        c["label"] = EVIL
        c["generation_found"] = EVIL
        c["confidence"] = c.get("confidence") or 0.5
    (run / "summary.json").write_text(json.dumps(summary))
    report = workdir / "transfer"
    result = fool("transfer", "runs/s1", "--models", "test-oracle", "--out", report, "--quiet")
    assert result.exit_code == 0, result.output
    data = json.loads((report / "transfer.json").read_text())
    for pair in data["pairs"]:
        for key in ("runs", "images", "source", "encoding", "target"):
            pair[key] = EVIL
    (report / "transfer.json").write_text(json.dumps(data))
    result = fool("gallery", "runs/s0", "--transfer", report, "--title", EVIL, "--out", "g", "--quiet")
    assert result.exit_code == 0, result.output
    html = (workdir / "g" / "index.html").read_text()
    assert html.count("<script") == 1  # the page's own filter script, nothing else
    assert re.search(r"<script[ >]", html.replace("<script>" + "\n(function", "", 1)) is None
    assert "&lt;script&gt;" in html
