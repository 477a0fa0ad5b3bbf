"""fool plot: the numbers drawn are the run's own (checked against its files), and the image is written."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

from fooling.cli import main  # noqa: E402
from fooling.plots.series import PLOT_POINTS, class_curves, run_series, smoothed_throughput, throughput  # noqa: E402
from fooling.run import evolve  # noqa: E402
from fooling.settings.evolve import EvolveSettings  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    base = tmp_path_factory.mktemp("plots")
    out = []
    for seed in (1, 2):
        path = base / f"run{seed}"
        evolve(EvolveSettings(model="test-oracle", generations=6, population=8, seed=seed, device="cpu",
                              checkpoint_every=3, checkpoint_seconds=0, out=str(path)))
        out.append(path)
    return out


def _metrics(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_class_curves_match_metrics_and_summary(runs):
    run = runs[0]
    generations, conf, indices, labels, exact = class_curves(run)
    metrics = _metrics(run)
    summary = json.loads((run / "summary.json").read_text())
    assert exact and list(generations) == [int(m["generation"]) for m in metrics]
    filled = np.nan_to_num(conf, nan=0.0)  # an empty class counts as 0, as in metrics.csv
    assert np.allclose(filled.max(axis=1), [float(m["max_confidence"]) for m in metrics], atol=1e-7)
    assert np.allclose(np.median(filled, axis=1), [float(m["median_confidence"]) for m in metrics], atol=1e-7)
    assert indices == [c["index"] for c in summary["classes"]]
    assert labels == [c["label"] for c in summary["classes"]]
    assert np.allclose(conf[-1], [c["confidence"] for c in summary["classes"]])


def test_threshold_counts_match_the_milestones(runs):
    s = run_series(runs[0])
    summary = json.loads((runs[0] / "summary.json").read_text())
    for t, counts in s.counts.items():
        first = [c["passed"][str(t)] for c in summary["classes"]]
        expected = [sum(p is not None and p <= g for p in first) for g in s.generations]
        assert list(counts) == expected


def test_without_classes_csv_the_curves_come_from_the_summary(runs, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(runs[0], old)
    (old / "classes.csv").unlink()
    s, exact = run_series(old), run_series(runs[0])
    assert not s.exact
    for t in s.counts:  # the milestones give the threshold counts exactly
        assert list(s.counts[t]) == list(exact.counts[t])
    assert np.allclose(s.confidence[-1], exact.confidence[-1])


def test_throughput_is_evaluations_over_seconds(runs):
    metrics = [{k: float(v) for k, v in m.items()} for m in _metrics(runs[0])]
    t, rate = throughput(metrics)
    kept, last = [], 0.0  # a row is skipped when no time passed since the last one kept
    for m in metrics:
        if m["elapsed_s"] > last:
            kept.append(m)
            last = m["elapsed_s"]
    assert len(t) == len(kept) >= 2 and list(t) == [m["elapsed_s"] for m in kept]
    assert rate[1] == pytest.approx((kept[1]["evaluations"] - kept[0]["evaluations"])
                                    / (kept[1]["elapsed_s"] - kept[0]["elapsed_s"]))
    rows = [{"evaluations": 100.0 * i, "elapsed_s": 2.0 * i} for i in range(1, 101)]
    s = run_series(runs[0])
    s = s.__class__(**{**s.__dict__, "elapsed_s": throughput(rows)[0], "evals_per_s": throughput(rows)[1]})
    assert np.allclose(smoothed_throughput(s)[1], 50.0) and len(smoothed_throughput(s)[0]) == 20


def test_fool_plot_writes_png_and_svg(runs, tmp_path):
    png = tmp_path / "one.png"
    result = CliRunner().invoke(main, ["plot", str(runs[0]), "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    svg = tmp_path / "two.svg"
    result = CliRunner().invoke(main, ["plot", *map(str, runs), "--out", str(svg)])
    assert result.exit_code == 0, result.output
    text = svg.read_text()
    assert "<svg" in text and "99.99%" in text


@pytest.mark.parametrize("label", ["$\\foo{$", "$5 bill, $10 bill", "x" * 400])
def test_labels_and_run_names_are_drawn_as_text(runs, tmp_path, label):
    run = tmp_path / "runs $\\x{$"  # matplotlib reads $...$ as mathtext: a bad formula raised a traceback
    shutil.copytree(runs[0], run)
    summary = json.loads((run / "summary.json").read_text())
    summary["classes"][0]["label"] = label
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "classes.csv").unlink()
    result = CliRunner().invoke(main, ["plot", str(run), str(runs[1]), "--out", str(tmp_path / "two.png")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["plot", str(run), "--out", str(tmp_path / "one.svg")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "one.svg").read_text()
    assert "x" * 400 not in text  # a long label is shortened in the legend


@pytest.mark.parametrize("case", ["missing", "not-a-run", "suffix", "exists", "inside-a-run"])
def test_bad_input_is_one_error_line(runs, tmp_path, case):
    out = tmp_path / "p.png"
    args = [str(runs[0]), "--out", str(out)]
    if case == "missing":
        args[0] = str(tmp_path / "nope")
    elif case == "not-a-run":
        args[0] = str(tmp_path)
    elif case == "suffix":
        args[2] = str(tmp_path / "p.jpg")
    elif case == "inside-a-run":  # with --force it replaced an elite's picture
        elite = sorted((runs[0] / "elites").glob("*.png"))[0]
        before = elite.read_bytes()
        args = [str(runs[0]), "--out", str(elite), "--force"]
    else:
        out.write_bytes(b"mine")
    result = CliRunner().invoke(main, ["plot", *args])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    if case == "exists":
        assert out.read_bytes() == b"mine"
    if case == "inside-a-run":
        assert "inside the run directory" in lines[0] and elite.read_bytes() == before


@pytest.mark.parametrize("file, row", [("classes.csv", "10000000000,0,a,0.5"),  # a damaged row: terabytes to plot
                                       ("metrics.csv", "99999999999999999999,8,1.0,0.1,0.6,0.1")])
def test_a_damaged_huge_generation_is_one_error_line(runs, tmp_path, file, row):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    with open(run / file, "a") as f:
        f.write(row + "\n")
    result = CliRunner().invoke(main, ["plot", str(run), "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "damaged" in result.output, \
        result.output


@pytest.mark.parametrize("generation", ["nan", "inf", "-inf", "1e400"])
def test_metrics_rows_with_a_generation_that_is_no_number_are_skipped(runs, tmp_path, generation):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    with open(run / "metrics.csv", "a") as f:
        f.write(f"{generation},8,1.0,0.1,0.6,0.1\n")
    assert list(run_series(run).generations) == list(run_series(runs[0]).generations)


def test_a_long_run_is_drawn_from_a_sample_of_its_generations(tmp_path):
    """Past PLOT_POINTS generations the curves hold each class's best confidence up to each sampled generation,
    exactly as the dense curves do there (a 1000-class run of 20,000 generations was refused)."""
    rng = np.random.default_rng(0)
    last = 20_000_000
    rows = sorted(zip(rng.integers(0, last + 1, 3000).tolist(), rng.integers(0, 5, 3000).tolist(),
                      rng.random(3000).tolist()))
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"generation": last, "classes": []}))
    with open(run / "classes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["generation", "index", "label", "confidence"])
        writer.writerows([g, k, f"c{k}", c] for g, k, c in rows)
    generations, confidence, indices, _, exact = class_curves(run)
    assert exact and indices == [0, 1, 2, 3, 4] and confidence.shape == (len(generations), 5)
    assert generations[0] == 0 and generations[-1] == last and len(generations) <= PLOT_POINTS
    assert np.all(np.diff(generations) > 0)
    for i in rng.integers(0, len(generations), 50).tolist() + [len(generations) - 1]:
        for k in indices:
            seen = [c for g, j, c in rows if j == k and g <= generations[i]]
            assert confidence[i, k] == max(seen) if seen else np.isnan(confidence[i, k])
    result = CliRunner().invoke(main, ["plot", str(run), "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output


def test_an_ascent_is_plotted_over_steps(tmp_path):
    """fool ascend counts steps, not generations: its series and its figure's axes say so."""
    from fooling.plots.figure import draw

    out = tmp_path / "ascent"
    result = CliRunner().invoke(main, ["ascend", "--model", "test-oracle", "--classes", "0,1", "--steps", "3",
                                       "--device", "cpu", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    series = run_series(out)
    assert series.iterates == "step" and series.exact  # from the ascent's classes.csv, not rebuilt from milestones
    summary = json.loads((out / "summary.json").read_text())
    assert series.indices == [0, 1] and list(series.generations) == list(range(4))
    for j, c in enumerate(summary["classes"]):  # step 0 holds the start, the last step the final confidence
        assert series.confidence[0, j] == pytest.approx(c["start_confidence"], abs=1e-6)
        assert series.confidence[-1, j] == pytest.approx(c["confidence"], abs=1e-6)
    assert np.all(np.diff(series.confidence, axis=0) >= 0)
    figure = draw([series])
    assert [ax.get_xlabel() for ax in figure.axes[:2]] == ["step", "step"]


def test_overlaid_runs_are_drawn_as_staircases(runs):
    """With several runs each class's line is a staircase, as one run's are: a confidence holds until the
    generation it rises at (a straight line between two points read as a gradual climb)."""
    from matplotlib.collections import LineCollection

    from fooling.plots.figure import _steps, draw

    assert _steps(np.array([0, 1, 3]), np.array([0.1, 0.5, 0.9])).tolist() == [
        [0, 0.1], [1, 0.1], [1, 0.5], [3, 0.5], [3, 0.9]]
    series = [run_series(r) for r in runs[:2]]
    figure = draw(series)
    collection = next(c for c in figure.axes[0].collections if isinstance(c, LineCollection))
    for path in collection.get_paths():
        xy = path.vertices
        moves = np.diff(xy, axis=0)
        assert not np.any((moves[:, 0] != 0) & (moves[:, 1] != 0)), "a diagonal segment"
