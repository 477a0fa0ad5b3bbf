"""The ImageNet side: a tiny stand-in network, a synthetic ImageFolder, widened heads as model names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from fooling.classifiers import Classifier, ModelSpec, Preprocess, get_spec, load_classifier, register
from fooling.classifiers.weights import load_state_dict
from fooling.cli import main
from fooling.errors import FoolingError
from fooling.paths import models_dir
from fooling.retrain.loop import RetrainRun
from fooling.settings.retrain import RetrainSettings
from fooling.retrain.head import find_head, replace_module, train_head
from fooling.retrain.imagenet import FEATURES_FILE, scan_folder

LABELS = [f"class {k}" for k in range(1000)]
LABELS[1] = "goldfish"


class TinyNet(nn.Module):
    """(N, 3, 32, 32) -> logits (N, 1000): a stand-in for a real ImageNet network."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, 1000))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def _register(name: str, size: tuple[int, int], resize: int, description: str) -> None:
    """A stand-in ImageNet network (TinyNet) taking (3, *size) crops of an image resized to ``resize``."""

    def load(device: torch.device, crops: int) -> Classifier:
        torch.manual_seed(0)
        pre = Preprocess(size=size, channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, resize=resize)
        return Classifier(TinyNet(), name=name, labels=LABELS, preprocess=pre, device=device, crops=crops)

    register(ModelSpec(name=name, dataset="imagenet", input=f"3x{size[0]}x{size[1]} RGB", num_classes=1000,
                       description=description, load=load))


_register("test-tiny-imagenet", (32, 32), 36, "tiny stand-in ImageNet network (tests)")
_register("test-wide-imagenet", (32, 40), 44, "tiny stand-in ImageNet network with a non-square input (tests)")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """Three classes, named by index, by name and by name with underscores; 4 images each, odd sizes."""
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for k, folder in enumerate(["0", "goldfish", "Class_2"]):
        (root / folder).mkdir()
        for j in range(4):
            pixels = (rng.random((40 + 3 * j, 50, 3)) * 80 + 60 * k).astype(np.uint8)
            Image.fromarray(pixels).save(root / folder / f"img{j}.png")
    (root / "goldfish" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def retrained(image_folder, tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("retrain-imagenet") / "run"
    settings = RetrainSettings(model="test-tiny-imagenet", imagenet_dir=str(image_folder), iterations=2,
                               classes=[0, 1, 2], generations=3, population=10, image_size=32, snapshot_every=2,
                               runs_per_iteration=1, epochs=3, device="cpu", name="t-tiny", out=str(out))
    return out, RetrainRun.start(settings, progress=False).run()


def test_scan_folder_maps_names_and_holds_out_the_last_images(image_folder):
    split = scan_folder(image_folder, LABELS, held_out=0.25)
    assert sorted({k for _, k in split["train"]}) == [0, 1, 2]
    assert len(split["train"]) == 9 and len(split["held_out"]) == 3
    assert all(path.name == "img3.png" for path, _ in split["held_out"])


def test_scan_folder_rejects_unknown_class_names(tmp_path):
    (tmp_path / "not-a-class").mkdir()
    with pytest.raises(FoolingError, match="names no single class"):
        scan_folder(tmp_path, LABELS, 0.2)


def test_scan_folder_needs_images_to_hold_out(tmp_path):
    (tmp_path / "3").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "3" / "only.png")
    with pytest.raises(FoolingError, match="at least two images"):
        scan_folder(tmp_path, LABELS, 0.2)


def test_imagenet_network_needs_a_folder(tmp_path):
    settings = RetrainSettings(model="test-tiny-imagenet", out=str(tmp_path / "x"), device="cpu")
    with pytest.raises(FoolingError, match="--imagenet-dir"):
        RetrainRun.start(settings, progress=False)


def test_find_and_replace_head():
    net = TinyNet()
    path, head = find_head(net, 1000)
    assert path == "classifier.1" and head is net.classifier[1]
    replace_module(net, path, nn.Linear(32, 1001))
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 1001)
    with pytest.raises(FoolingError, match="classifier head"):
        find_head(net, 1000)


@pytest.mark.parametrize("rows", ["fooling", "all"])
def test_train_head_rows(rows):
    torch.manual_seed(0)
    features, labels = torch.randn(40, 6), torch.randint(0, 4, (40,))
    weight, bias = torch.randn(3, 6), torch.randn(3)
    new_w, new_b = train_head(features, labels, weight, bias, rows=rows, epochs=5, lr=0.05, batch_size=8, seed=0)
    assert new_w.shape == (4, 6) and new_b.shape == (4,)
    assert torch.equal(new_w[:3], weight) == (rows == "fooling")
    assert not torch.equal(new_w[3], torch.zeros(6))


def test_loop_rows_and_cached_features(retrained):
    out, rows = retrained
    assert [r["network"] for r in rows] == ["test-tiny-imagenet", "t-tiny-r1", "t-tiny-r2"]
    assert list(rows[0]["confidence"]) == ["0", "1", "2"]
    for row in rows:
        assert 0.0 <= row["held_out_accuracy"] <= 1.0 and 0.0 <= row["median_confidence"] <= 1.0
    assert rows[1]["fooling_train_images"] == 3  # as many as a real class (3 training images each)
    assert 0.0 <= rows[2]["held_out_fooling_share"] <= 1.0
    assert (out / FEATURES_FILE).is_file() and (out / "table.md").is_file()


def test_widened_network_is_saved_and_registered(retrained):
    out, _ = retrained
    meta = json.loads((models_dir() / "t-tiny-r2.json").read_text())
    assert meta["arch"] == "imagenet-head" and meta["base"] == "test-tiny-imagenet"
    assert meta["num_classes"] == 1001 and meta["labels"][:2] == ["class 0", "goldfish"]
    assert meta["labels"][-1] == "fooling" and meta["head"] == "classifier.1"
    spec = get_spec("t-tiny-r2")
    assert spec.dataset == "imagenet" and spec.num_classes == 1001
    classifier = load_classifier("t-tiny-r2", "cpu")
    assert classifier.probs(torch.rand(2, 3, 48, 48)).shape == (2, 1001)
    state = load_state_dict(out / "networks" / "t-tiny-r2.pt")
    assert torch.equal(classifier.net.classifier[1].weight, state["weight"])
    base = load_classifier("test-tiny-imagenet", "cpu").net.classifier[1].weight
    assert torch.equal(state["weight"][:1000], base)  # only the new row trained
    listing = CliRunner().invoke(main, ["models"])
    assert listing.exit_code == 0 and "t-tiny-r1" in listing.output


def test_read_image_resizes_and_refuses_bad_files_in_one_line(tmp_path):
    from fooling.imaging import save_png
    from fooling.retrain.imagenet import read_image

    save_png(torch.rand(3, 40, 60), tmp_path / "photo.png")
    image = read_image(tmp_path / "photo.png", side=32)
    assert image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1
    save_png(torch.rand(3, 1, 600), tmp_path / "strip.png")  # shorter side to 256: a 256 x 153,600 image
    (tmp_path / "junk.png").write_bytes(b"not a picture")
    for name, words in (("strip.png", "more than 64 times"), ("junk.png", "not an image")):
        with pytest.raises(FoolingError, match=words) as err:
            read_image(tmp_path / name)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("model, new_shape, old_shape", [("test-tiny-imagenet", (3, 36, 36), (3, 32, 32)),
                                                          ("test-wide-imagenet", (3, 44, 44), (3, 32, 40))])
def test_cppn_experiments_draw_one_size_and_older_ones_keep_theirs(image_folder, tmp_path, model, new_shape,
                                                                   old_shape):
    """A new CPPN experiment draws every evolve run at the side the base resizes to (cppn_size "resize", in
    retrain.json), so all its pools stack; one whose retrain.json has no cppn_size (begun when CPPNs were drawn at
    the network's input) draws the runs it has yet to start at that input, square or not (a 32x40 one took the
    44 px resize side, and training on the pools of both sizes died with numpy's ValueError)."""
    from fooling.retrain.evolution import _open

    settings = RetrainSettings(model=model, imagenet_dir=str(image_folder), encoding="cppn", classes=[0, 1],
                               generations=1, population=4, runs_per_iteration=1, epochs=1, device="cpu",
                               name="t-size", out=str(tmp_path / "exp"))
    RetrainRun.start(settings, progress=False)
    assert json.loads((tmp_path / "exp" / "retrain.json").read_text())["cppn_size"] == "resize"
    run = _open(RetrainRun.resume(tmp_path / "exp", progress=False).settings, model, [0, 1], 0,
                tmp_path / "exp" / "iter_00" / "run_0")
    try:
        assert run.encoding.image_shape == new_shape
    finally:
        run.close()
    record = json.loads((tmp_path / "exp" / "retrain.json").read_text())
    del record["cppn_size"]  # as an older fooling wrote it
    (tmp_path / "exp" / "retrain.json").write_text(json.dumps(record))
    resumed = RetrainRun.resume(tmp_path / "exp", progress=False).settings
    assert resumed.cppn_size == "input"
    run = _open(resumed, model, [0, 1], 1, tmp_path / "exp" / "iter_00" / "run_1")
    try:
        assert run.encoding.image_shape == old_shape and run.config.image_size is None
    finally:
        run.close()


def test_every_evolve_run_of_an_experiment_scores_with_the_crops_of_its_first(image_folder, tmp_path):
    """Under --preset paper an ImageNet network is scored over 10 crops; an experiment whose first evolve run scored
    over 1 (begun before the preset did so) keeps 1 for the runs it has yet to start, so its table compares like
    with like; likewise the CPPN maths and the memory layout, as an older run's config.json (without them) began."""
    from fooling.retrain.evolution import _open

    settings = RetrainSettings(model="test-tiny-imagenet", imagenet_dir=str(image_folder), preset="paper",
                               classes=[0, 1], generations=1, population=4, device="cpu", out=str(tmp_path))
    fresh = _open(settings, "test-tiny-imagenet", [0, 1], 0, tmp_path / "iter_00" / "run_0")
    try:
        assert fresh.config.crops == 10
    finally:
        fresh.close()
    record = json.loads((tmp_path / "iter_00" / "run_0" / "config.json").read_text())
    record["crops"] = 1  # as the first run of an older experiment recorded it
    del record["cppn_cpu_math"], record["memory_format"]  # settings newer than it
    (tmp_path / "iter_00" / "run_0" / "config.json").write_text(json.dumps(record))
    later = _open(settings, "test-tiny-imagenet", [0, 1], 1, tmp_path / "iter_01" / "run_0")
    try:
        assert later.config.crops == 1 and later.config.cppn_cpu_math == "torch"
        assert later.config.memory_format == "channels-last-on-cuda"
    finally:
        later.close()
    record["crops"] = True  # not a crops value: the preset decides
    (tmp_path / "iter_00" / "run_0" / "config.json").write_text(json.dumps(record))
    again = _open(settings, "test-tiny-imagenet", [0, 1], 2, tmp_path / "iter_01" / "run_1")
    try:
        assert again.config.crops == 10
    finally:
        again.close()


def test_evolve_runs_take_the_presets_population_unless_given(image_folder, tmp_path):
    """fool retrain --preset paper --encoding cppn on an ImageNet base: every evolve run makes the paper's 400
    children a generation, as fool evolve (retrain.json: population null; it made 200, retrain's own default);
    --population N still wins; an experiment begun before (its retrain.json records 200) keeps 200."""
    import dataclasses

    from fooling.retrain.evolution import _open

    settings = RetrainSettings(model="test-tiny-imagenet", imagenet_dir=str(image_folder), preset="paper",
                               encoding="cppn", classes=[0, 1], generations=1, runs_per_iteration=1, epochs=1,
                               device="cpu", name="t-population", out=str(tmp_path / "exp"))
    RetrainRun.start(settings, progress=False)
    path = tmp_path / "exp" / "retrain.json"
    assert json.loads(path.read_text())["population"] is None
    resumed = RetrainRun.resume(tmp_path / "exp", progress=False).settings
    run = _open(resumed, "test-tiny-imagenet", [0, 1], 0, tmp_path / "exp" / "iter_00" / "run_0")
    try:
        assert (run.config.population, run.config.initial_population, run.strategy.population) == (400, 400, 400)
        assert run.config.crops == 10
    finally:
        run.close()
    given = _open(dataclasses.replace(resumed, population=4), "test-tiny-imagenet", [0, 1], 1,
                  tmp_path / "exp" / "iter_00" / "run_1")
    try:
        assert (given.config.population, given.config.initial_population) == (4, 4)
    finally:
        given.close()
    record = json.loads(path.read_text())
    record["population"] = 200  # as retrain.json recorded retrain's own default before
    path.write_text(json.dumps(record))
    older = RetrainRun.resume(tmp_path / "exp", progress=False).settings
    assert older.population == 200
    run = _open(older, "test-tiny-imagenet", [0, 1], 2, tmp_path / "exp" / "iter_00" / "run_2")
    try:
        assert (run.config.population, run.config.initial_population) == (200, 200)
    finally:
        run.close()
