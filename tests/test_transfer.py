"""`fool transfer`: batched scoring of elite PNGs on other networks, reports and errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fooling.analysis.transfer as transfer_module
from fooling.analysis import run_transfer
from fooling.analysis.draw import format_confidence
from fooling.cli import main
from fooling.errors import FoolingError
from fooling.rundir import read_run

from helpers import csv_rows, read_png

TARGETS = "mnist-lenet,mnist-digitcnn"


def fool(*args: str) -> "object":
    return CliRunner().invoke(main, [str(a) for a in args])


def evolve_run(out: Path, *extra: str) -> Path:
    result = fool("evolve", "--generations", "2", "--population", "16", "--device", "cpu", "--quiet",
                  "--out", out, *extra)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def runs(mnist_lenet: str, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two tiny mnist-lenet runs (seeds 0 and 1)."""
    root = tmp_path_factory.mktemp("transfer-runs")
    return [evolve_run(root / f"s{seed}", "--model", mnist_lenet, "--seed", str(seed)) for seed in (0, 1)]


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_reports_every_pair(runs, tmp_path):
    out = tmp_path / "transfer"
    result = fool("transfer", *runs, "--models", TARGETS, "--out", out)
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"transfer.csv", "transfer_classes.csv", "transfer.json",
                                              "transfer.md", "transfer_heatmap.png"}
    pairs = csv_rows(out / "transfer.csv")
    assert [(p["source"], p["target"]) for p in pairs] == [("mnist-lenet", "mnist-lenet"),
                                                          ("mnist-lenet", "mnist-digitcnn")]
    assert all(p["runs"] == "2" and p["images"] == "20" for p in pairs)  # seeds pooled
    assert [p["target_is_source"] for p in pairs] == ["True", "False"]
    classes = csv_rows(out / "transfer_classes.csv")
    assert len(classes) == 2 * 10 * 2
    for row in classes:
        if row["target"] == "mnist-lenet":  # the source scoring itself: the re-scored value, near the archive's
            assert float(row["confidence"]) == float(row["source_confidence"])
            assert abs(float(row["confidence"]) - float(row["archive_confidence"])) < 0.05
        assert (row["agrees"] == "True") == (row["top1"] == row["index"])
    data = json.loads((out / "transfer.json").read_text())
    assert data["targets"] == TARGETS.split(",") and len(data["runs"]) == 2
    digit = data["pairs"][1]
    conf = np.array([float(r["confidence"]) for r in classes if r["target"] == "mnist-digitcnn"])
    assert digit["median"] == pytest.approx(np.median(conf)) and digit["mean"] == pytest.approx(conf.mean())
    assert digit["above_50"] == pytest.approx((conf >= 0.5).mean())
    assert digit["above_99"] == pytest.approx((conf >= 0.99).mean())
    assert set(digit["per_class"]) == {str(k) for k in range(10)}
    md = (out / "transfer.md").read_text()
    assert "| mnist-lenet, direct |" in md and "mnist-digitcnn" in md and "top-1 agrees" in md
    assert "Median confidence" in result.output  # the matrix is printed


def test_classes_that_share_a_label_keep_their_own_per_class_median():
    from fooling.analysis.transfer import ClassScore, summarise

    def score(index, label, confidence):
        return ClassScore("r", "net", "direct", "net", True, index, label, confidence, confidence, confidence, index,
                          label)

    # ImageNet names two classes "crane" (134, a bird; 517, a machine): their medians were merged under one key
    pair, = summarise([score(134, "crane", 0.2), score(517, "crane", 0.9), score(1, "goldfish", 0.5)], ["net"])
    assert pair.per_class == {"crane (134)": 0.2, "crane (517)": 0.9, "goldfish": 0.5}


def test_a_pipe_in_a_name_keeps_the_markdown_tables_whole():
    """A label or model name with '|' (a labels file may hold any text) is escaped, so every table row keeps
    the number of cells of its header."""
    from fooling.analysis.transfer import ClassScore, TransferResult, summarise
    from fooling.analysis.transfer_report import markdown

    scores = [ClassScore("r", "a|b", "direct", "a|b", True, k, f"x|{k}", 0.5, 0.5, 0.5, k, f"x|{k}")
              for k in range(3)]
    md = markdown(TransferResult(["a|b"], [], scores, summarise(scores, ["a|b"])))
    for table in md.split("\n\n"):
        rows = [line for line in table.splitlines() if line.startswith("|")]
        cells = {len(line.replace("\\|", "").split("|")) for line in rows}
        assert len(cells) <= 1, table
    assert "a\\|b" in md and "x\\|0" in md


def test_heatmap_is_drawn(runs, tmp_path):
    from fooling.analysis.transfer_report import write_report

    paths = write_report(run_transfer([read_run(r) for r in runs], TARGETS.split(","), "cpu"), tmp_path)
    image = np.asarray(read_png(paths["heatmap"]).convert("RGB"))
    assert image.shape[0] > 100 and image.shape[1] > 300
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # colours and text, not a blank canvas


def test_one_forward_per_model_per_run(runs, monkeypatch):
    calls: dict[str, int] = {}
    real = transfer_module.load_classifier

    def counting(name, device):
        classifier = real(name, device)
        probs = classifier.probs

        def counted(images):
            calls[name] = calls.get(name, 0) + 1
            assert images.shape[0] == 10  # the whole run at once
            return probs(images)

        classifier.probs = counted
        return classifier

    monkeypatch.setattr(transfer_module, "load_classifier", counting)
    run_transfer([read_run(r) for r in runs], ["mnist-digitcnn"], "cpu")
    assert calls == {"mnist-lenet": 2, "mnist-digitcnn": 2}  # source re-scored + target, once per run each


def test_not_a_run_directory(tmp_path):
    one_line_error(fool("transfer", tmp_path, "--models", TARGETS, "--out", tmp_path / "o"), "not a run directory")
    one_line_error(fool("transfer", tmp_path / "nope", "--models", TARGETS, "--out", tmp_path / "o"),
                   "not a run directory")


def test_unknown_model(runs, tmp_path):
    one_line_error(fool("transfer", runs[0], "--models", "mnist-lenett", "--out", tmp_path), "unknown model")


def test_class_count_mismatch(runs, tmp_path):
    one_line_error(fool("transfer", runs[0], "--models", "test-oracle", "--out", tmp_path),
                   "test-oracle has 4 classes", "10")


def _with_fooling_class(name: str, labels: list[str]) -> None:
    """Register ``name``: mnist-lenet plus an 11th output (logit 0) under ``labels`` (11 names)."""
    import torch

    from fooling.classifiers import Classifier, ModelSpec, load_classifier, register

    class PlusOne(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.net(x)
            return torch.cat([out, torch.zeros_like(out[:, :1])], 1)

    def load(device, crops):
        lenet = load_classifier("mnist-lenet", device, crops)
        return Classifier(PlusOne(lenet.net), name=name, labels=labels, preprocess=lenet.spec, device=device,
                          crops=crops)

    register(ModelSpec(name=name, dataset="mnist", input="1x28x28 grey", num_classes=11, description="test",
                       load=load))


def test_a_network_with_an_extra_fooling_class_is_a_target(runs, tmp_path):
    _with_fooling_class("test-lenet-plus", [str(d) for d in range(10)] + ["fooling"])
    out = tmp_path / "t"
    result = fool("transfer", runs[0], "--models", "mnist-lenet,test-lenet-plus", "--out", out)
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "transfer.json").read_text())["scores"]
    by_target = {t: [s for s in scores if s["target"] == t] for t in ("mnist-lenet", "test-lenet-plus")}
    for own, plus in zip(*by_target.values()):  # the extra class takes its share, the rest keep their order
        assert plus["index"] == own["index"] and 0 < plus["confidence"] < own["confidence"]


def test_a_target_whose_first_classes_differ_is_refused(runs, tmp_path):
    _with_fooling_class("test-lenet-shuffled", [str(d) for d in reversed(range(10))] + ["fooling"])
    one_line_error(fool("transfer", runs[0], "--models", "test-lenet-shuffled", "--out", tmp_path),
                   "first 10 classes of test-lenet-shuffled")


def test_no_elites(runs, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(runs[0], copy)
    for png in (copy / "elites").glob("*.png"):
        png.unlink()
    one_line_error(fool("transfer", copy, "--models", TARGETS, "--out", tmp_path / "o"), "no elite images")
    with pytest.raises(FoolingError):
        read_run(copy)


def test_a_run_naming_code_does_not_run_it(runs, tmp_path, monkeypatch):
    """A run directory is data: a python: model written into its files is loaded only if --models names it."""
    marker = tmp_path / "PWNED"
    (tmp_path / "fooling_probe_transfer.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nimport torch\n"
        "def net():\n    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = "python:fooling_probe_transfer:net?input=1x28x28"
    copy = tmp_path / "run"
    shutil.copytree(runs[0], copy)
    for name in ("config.json", "summary.json"):
        record = json.loads((copy / name).read_text())
        record["model"] = code
        if "models" in record:
            record["models"] = [code]
        (copy / name).write_text(json.dumps(record))
    one_line_error(fool("transfer", copy, "--models", TARGETS, "--out", tmp_path / "o"),
                   "runs code when loaded", "--models")
    assert not marker.exists() and not (tmp_path / "o").exists()
    with pytest.raises(FoolingError, match="runs code"):
        run_transfer([read_run(copy)], ["mnist-lenet"], "cpu")
    assert not marker.exists()
    # named by the user, it is theirs to load (same module, options aside)
    fool("transfer", copy, "--models", "python:fooling_probe_transfer:net", "--input", "1x28x28", "--out", tmp_path / "o")
    assert marker.exists()


def test_help_documents_every_option():
    result = fool("transfer", "--help")
    assert result.exit_code == 0
    for option in ("--models", "--out", "--device", "--quiet"):
        line = next(line for line in result.output.splitlines() if line.strip().startswith(option))
        assert len(line.split(maxsplit=2)) >= 2


@pytest.mark.parametrize("value, text", [(0.5, "50.00%"), (0.9999971, "99.9997%"), (1.0, "100%"),
                                         (0.99995, "99.995%"), (0.0, "0.00%"), (0.99986, "99.98%"),
                                         (0.9999173879623413, "99.991%"), (0.999999999, "99.999999%"),
                                         (float(np.float32(0.999)), "99.90%"), (float(np.float32(0.9)), "90.00%"), (float(np.float32(0.99995)), "99.995%"), (0.8999999999, "89.99%"), (-np.inf, "-inf%"),
                                         (0.9999, "99.99%"), (0.99999, "99.999%"),  # exact cuts: no trailing 0
                                         (np.float64(0.99995), "99.995%"), (np.float32(0.5), "50.00%"),
                                         (-1e30, "-1" + "0" * 32 + ".00%"),  # no exception
                                         pytest.param(10 ** 400, "100%", id="huge-int"),
                                         pytest.param(-(10 ** 400), "-inf%", id="huge-negative-int"),
                                         (float("nan"), "nan%")])
def test_format_confidence(value, text):
    assert format_confidence(value) == text


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_never_writes_into_a_run_or_over_files(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    before = snapshot(run)
    one_line_error(fool("transfer", run, "--models", "mnist-lenet", "--out", run), "run directory")
    one_line_error(fool("transfer", run, "--models", "mnist-lenet", "--out", run / "elites", "--force"),
                   "run directory")
    assert snapshot(run) == before
    existing = tmp_path / "existing.txt"
    existing.write_text("mine")
    one_line_error(fool("transfer", run, "--models", "mnist-lenet", "--out", existing), "is a file")
    assert existing.read_text() == "mine"
    out = tmp_path / "report"
    out.mkdir()
    (out / "transfer.md").write_text("my notes")
    one_line_error(fool("transfer", run, "--models", "mnist-lenet", "--out", out), "transfer.md", "--force")
    assert (out / "transfer.md").read_text() == "my notes"
    result = fool("transfer", run, "--models", "mnist-lenet", "--out", out, "--force", "--quiet")
    assert result.exit_code == 0, result.output
    assert (out / "transfer.md").read_text().startswith("# Transfer")


def test_broken_elite_png_names_the_file(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    pngs = sorted((run / "elites").glob("*.png"))
    for png, data in ((pngs[0], b"not a png"), (pngs[3], pngs[3].read_bytes()[:60])):
        saved = png.read_bytes()
        png.write_bytes(data)
        one_line_error(fool("transfer", run, "--models", "mnist-lenet", "--out", tmp_path / "t"), png.name)
        png.write_bytes(saved)
    assert not (tmp_path / "t").exists()


def test_progress_lines_with_eta(runs, tmp_path):
    result = CliRunner().invoke(main, ["transfer", *map(str, runs), "--models", "mnist-lenet",
                                       "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert [line.split(" ")[0] for line in lines] == ["[1/2]", "[2/2]"], result.stderr
    assert "left" in lines[0] and "\r" not in result.stderr
    quiet = CliRunner().invoke(main, ["transfer", *map(str, runs), "--models", "mnist-lenet",
                                      "--out", str(tmp_path / "q"), "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_survival_columns(runs, tmp_path):
    out = tmp_path / "survival"
    result = fool("transfer", *runs, "--models", "mnist-lenet", "--out", out, "--transforms", "crop=0.7,rotate=20,noise=0.1",
                  "--samples", "8", "--quiet")
    assert result.exit_code == 0, result.output
    rows = csv_rows(out / "transfer_classes.csv")
    assert rows and all(0 <= float(r["survival_min"]) <= float(r["survival_mean"]) <= 1 for r in rows)
    assert all(0 <= float(r["survival_99"]) <= 1 for r in rows)
    pairs = json.loads((out / "transfer.json").read_text())["pairs"]
    assert pairs[0]["survival_mean"] is not None
    assert "Survival under random transforms" in (out / "transfer.md").read_text()
    again = tmp_path / "again"
    fool("transfer", *runs, "--models", "mnist-lenet", "--out", again, "--transforms", "crop=0.7,rotate=20,noise=0.1",
         "--samples", "8", "--quiet")
    assert (again / "transfer_classes.csv").read_text() == (out / "transfer_classes.csv").read_text()  # seeded
    gallery = tmp_path / "g"
    assert fool("gallery", runs[0], "--transfer", out, "--out", gallery, "--quiet").exit_code == 0
    assert "survival mean" in (gallery / "index.html").read_text()


def test_survival_bad_input(runs, tmp_path):
    one_line_error(fool("transfer", *runs, "--models", "mnist-lenet", "--out", tmp_path / "x", "--transforms", "warp"),
                   "unknown transform")
    one_line_error(fool("transfer", *runs, "--models", "mnist-lenet", "--out", tmp_path / "x", "--samples", "0"),
                   "--samples")


def test_survival_samples_are_bounded(tmp_path):
    """--samples is EOT's count: past MAX_EOT it is refused in one line naming --samples, before anything is read
    (it made as many forward passes of every elite as asked)."""
    from fooling.limits import MAX_EOT

    for samples in (MAX_EOT + 1, 10**30, -10**30):
        result = fool("transfer", tmp_path / "no-run", "--models", "mnist-lenet", "--out", tmp_path / "x",
                      "--samples", samples)
        one_line_error(result, f"--samples must lie in 1-{MAX_EOT:,}")
        assert len(result.output) < 200
    assert not (tmp_path / "x").exists()
