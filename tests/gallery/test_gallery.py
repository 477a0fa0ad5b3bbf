"""`fool gallery`: a self-contained static page, contact sheets, snapshot progression, errors."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fooling.cli import main
from fooling.gallery.build import unique_slugs
from helpers import read_png

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def fool(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


class Links(HTMLParser):
    """Every href/src, every id, and the confidence of every card."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.cards: list[float] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("href", "src"):
            if values.get(key) is not None:
                self.links.append(values[key])
        if values.get("id"):
            self.ids.add(values["id"])
        if "data-confidence" in values:
            self.cards.append(float(values["data-confidence"]))
        if tag == "script":
            self.scripts += 1
            assert "src" not in values  # inline only


def parse(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def runs(mnist_lenet: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny direct run (with two fake snapshots) and a tiny CPPN run, both against mnist-lenet."""
    root = tmp_path_factory.mktemp("gallery-runs")
    out = {}
    for encoding in ("direct", "cppn"):
        path = root / encoding / "s0"
        result = fool("evolve", "--model", mnist_lenet, "--encoding", encoding, "--generations", "2",
                      "--population", "16", "--device", "cpu", "--quiet", "--out", path)
        assert result.exit_code == 0, result.output
        out[encoding] = path
    for generation in (0, 1):  # the layout a runner that keeps snapshots would write
        shutil.copytree(out["direct"] / "elites", out["direct"] / "snapshots" / str(generation))
    return out


@pytest.fixture(scope="module")
def gallery(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gallery")
    transfer = out.parent / "transfer-report"
    result = fool("transfer", runs["direct"], runs["cppn"], "--models", "mnist-lenet,mnist-digitcnn",
                  "--out", transfer, "--quiet")
    assert result.exit_code == 0, result.output
    (out / "README.md").write_text("kept")  # the user's: --force adds the gallery beside it
    result = fool("gallery", runs["direct"], runs["cppn"], "--transfer", transfer, "--out", out, "--force",
                  "--quiet")
    assert result.exit_code == 0, result.output
    return out


def test_every_link_resolves(gallery):
    page = parse(gallery / "index.html")
    assert page.links
    for link in page.links:
        assert "://" not in link and not link.startswith("/"), link  # nothing external, nothing absolute
        if link.startswith("#"):
            assert link[1:] in page.ids, link
        else:
            assert (gallery / unquote(link)).is_file(), link
    assert page.scripts == 1


def test_links_to_a_run_folder_named_with_url_characters_resolve(runs, tmp_path):
    run = tmp_path / "r #1?%41 x"  # '#' began a fragment, '?' a query, %41 read as 'A': the images did not show
    shutil.copytree(runs["cppn"], run)
    result = fool("gallery", run, "--out", tmp_path / "g", "--quiet")
    assert result.exit_code == 0, result.output
    page = parse(tmp_path / "g" / "index.html")
    for link in page.links:
        if link.startswith("#"):
            assert unquote(link[1:]) in page.ids, link
        else:
            assert "#" not in link and "?" not in link and (tmp_path / "g" / unquote(link)).is_file(), link


def test_page_shows_every_class(gallery, runs):
    page = parse(gallery / "index.html")
    assert len(page.cards) == 20  # 10 digits × 2 runs
    html = (gallery / "index.html").read_text()
    for slug in ("direct-s0", "cppn-s0"):
        assert f'id="{slug}"' in html
    assert 'class="pixelated"' in html and "image-rendering:pixelated" in html
    assert "mnist-lenet" in html and "cppn" in html and "generation" in html
    assert html.count(">genome<") == 10  # the CPPN run's genomes, none for direct
    assert 'id="threshold"' in html and "Progression over generations" in html
    assert "<th>0</th><th>1</th><th>2</th>" in html  # two snapshots, then the final elites
    assert 'transfer_heatmap.png' in html


def test_an_ascent_run_counts_steps(mnist_lenet, tmp_path):
    run = tmp_path / "ascent"
    result = fool("ascend", "--model", mnist_lenet, "--classes", "3,5", "--steps", "4", "--stop-at", "0",
                  "--device", "cpu", "--out", run, "--quiet")
    assert result.exit_code == 0, result.output
    result = fool("gallery", run, "--out", tmp_path / "g")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "g" / "index.html").read_text()
    assert "optimised against <b>mnist-lenet</b>" in html and "4 steps" in html and " · step " in html
    assert "generation" not in html.split("<h2", 1)[1]  # only the page's general text speaks of generations


def test_files_are_copied(gallery):
    runs_dir = gallery / "runs"
    assert sorted(p.name for p in runs_dir.iterdir()) == ["cppn-s0", "direct-s0"]
    assert len(list((runs_dir / "cppn-s0" / "elites").glob("*.json"))) == 10
    assert sorted(p.name for p in (runs_dir / "direct-s0" / "snapshots").iterdir()) == ["0", "1"]
    assert (gallery / "README.md").read_text() == "kept"
    assert (gallery / "transfer" / "transfer-report" / "transfer.md").is_file()


def test_contact_sheet(gallery):
    sheet = read_png(gallery / "runs" / "direct-s0" / "contact_sheet.png").convert("L")
    assert sheet.width >= 5 * 112 and sheet.height >= 2 * 112
    pixels = np.asarray(sheet)
    assert pixels.std() > 20  # images and text on white


def test_rebuild_replaces_old_runs(gallery, runs, tmp_path):
    again = tmp_path / "gallery"
    shutil.copytree(gallery, again)
    result = fool("gallery", runs["cppn"], "--out", again, "--force")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (again / "runs").iterdir()] == ["s0"]
    assert not (again / "transfer").exists() and (again / "README.md").is_file()
    assert len(parse(again / "index.html").cards) == 10


def test_long_folder_names_give_short_distinct_slugs():
    """Two runs whose last folders are 200 characters each joined into a name over 255 bytes: the gallery
    stopped with 'File name too long'."""
    a, b = Path("x" * 200) / ("y" * 200 + "1"), Path("x" * 200) / ("y" * 200 + "2")
    slugs = unique_slugs([a, b])
    assert len(set(slugs)) == 2 and all(len(s) <= 120 for s in slugs)


def test_unique_slugs():
    assert unique_slugs([Path("a/direct/s0"), Path("a/cppn/s0")]) == ["direct-s0", "cppn-s0"]
    assert unique_slugs([Path("x/run1"), Path("x/run2")]) == ["run1", "run2"]
    assert unique_slugs([Path("x/run1"), Path("x/run1")])[1].endswith("-2")


def test_errors_are_one_line(tmp_path, runs):
    cases = [
        (fool("gallery", tmp_path, "--out", tmp_path / "g"), "not a run directory"),
        (fool("gallery", runs["direct"], "--transfer", tmp_path, "--out", tmp_path / "g"),
         "not a `fool transfer` output folder"),
    ]
    empty = tmp_path / "empty"
    shutil.copytree(runs["direct"], empty)
    for png in (empty / "elites").glob("*.png"):
        png.unlink()
    cases.append((fool("gallery", empty, "--out", tmp_path / "g"), "no elite images"))
    for result, fragment in cases:
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.output
    assert not (tmp_path / "g").exists()  # nothing written for bad input


def test_help_documents_every_option():
    result = fool("gallery", "--help")
    assert result.exit_code == 0
    for option in ("--out", "--transfer", "--title"):
        assert option in result.output


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium")
def test_renders_in_headless_chromium(gallery, tmp_path):
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tempfile.mkdtemp()}", "--window-size=1200,1400", f"--screenshot={shot}",
         (gallery / "index.html").as_uri()],
        check=True, capture_output=True, timeout=120)
    pixels = np.asarray(read_png(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 20  # not a blank page
    assert (pixels < 60).mean() > 0.02  # the dark MNIST images were drawn


def test_threshold_filter_and_contact_sheet_read_odd_confidences():
    """The filter's 0.9999 reads 99.99% (it read 99.990% once confidences were cut, not rounded); a contact sheet
    draws any number a hand-edited summary.json holds (-1e30 raised decimal.InvalidOperation: a traceback)."""
    from fooling.gallery.contact_sheet import contact_sheet
    from fooling.gallery.page import render_page

    page = render_page("t", [])
    assert ">99.99%</option>" in page and ">99.9%</option>" not in page and "99.990%" not in page
    images = [Image.new("RGB", (8, 8)) for _ in range(4)]
    sheet = contact_sheet(images, ["a", "b", "c", "d"], [-1e30, float("nan"), 2.0, -(10 ** 400)])
    assert sheet.width > 0
