"""The built-in LeNets' shipped weights: package data, checked by SHA-256, loaded without pickle or training."""

from __future__ import annotations

import configparser
import fnmatch
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fooling.classifiers import get_spec, load_classifier
from fooling.classifiers import mnist
from fooling.classifiers.lenet import recipe_key
from fooling.classifiers.weights import load_npz, save_npz
from fooling.paths import sha256_file
from fooling.cli import main
from fooling.data import load_mnist
from fooling.errors import FoolingError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FOOLING_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def _package_data_patterns() -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return [p.strip() for p in cfg["options.package_data"]["fooling.classifiers"].split(",") if p.strip()]


def test_every_builtin_lenet_ships_current_weights_listed_as_package_data():
    patterns = _package_data_patterns()
    folder = ROOT / "fooling" / "classifiers"
    for name in mnist.BUILTIN_LENETS:
        meta = mnist.shipped_meta(name)
        assert meta is not None, f"{name}: no shipped weights for its current recipe"
        assert meta["recipe"] == recipe_key(mnist.builtin_settings(name))
        assert meta["train"]["seed"] == mnist.builtin_settings(name).seed
        assert meta["data"] and meta["held_out_digits"] >= 1000 and meta["held_out_accuracy"] > 0.97
        for suffix in ("npz", "json"):
            rel = (mnist.SHIPPED_DIR / f"{name}.{suffix}").relative_to(folder).as_posix()
            assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not package data in setup.cfg"
        assert sha256_file(mnist.SHIPPED_DIR / f"{name}.npz") == meta["sha256"]
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "fooling/classifiers/lenets/*.npz" in manifest


def test_shipped_weights_load_at_once_and_classify_real_digits(empty_cache):
    data = load_mnist()
    x = torch.from_numpy(data.test_images).float().div(255).unsqueeze(1)
    for name in ("mnist-lenet", "mnist-lenet-robust-b"):
        assert get_spec(name).ready()
        clf = load_classifier(name, "cpu")
        assert (clf.probs(x).argmax(1).numpy() == data.test_labels).mean() > 0.97
    assert not list(empty_cache.glob("*.pt")), "loading shipped weights must not train or write to the cache"
    state = load_npz(mnist.SHIPPED_DIR / "mnist-lenet.npz", mnist.shipped_meta("mnist-lenet")["sha256"])
    torch.testing.assert_close(load_classifier("mnist-lenet", "cpu").net.state_dict()["fc2.weight"].cpu(),
                               state["fc2.weight"], rtol=0, atol=0)


def test_fool_models_shows_the_data_and_accuracy_of_the_shipped_copy(empty_cache):
    out = CliRunner().invoke(main, ["models"]).output
    for name in mnist.BUILTIN_LENETS:
        meta = mnist.shipped_meta(name)
        line = next(row for row in out.splitlines() if row.startswith(name + " "))
        assert "shipped weights" in line and meta["data"] in line and f"{meta['held_out_accuracy']:.2%}" in line
        assert "trains on first use" not in line


def test_damaged_shipped_weights_are_refused(tmp_path, empty_cache, monkeypatch):
    copy = tmp_path / "lenets"
    shutil.copytree(mnist.SHIPPED_DIR, copy)
    blob = bytearray((copy / "mnist-lenet.npz").read_bytes())
    blob[-100] ^= 0xFF
    (copy / "mnist-lenet.npz").write_bytes(bytes(blob))
    monkeypatch.setattr(mnist, "SHIPPED_DIR", copy)
    with pytest.raises(FoolingError, match="SHA-256"):
        load_classifier("mnist-lenet", "cpu")


def test_npz_holding_objects_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "bad.npz"
    with open(path, "wb") as f:
        np.savez(f, **{"fc2.weight": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(FoolingError, match="cannot load weights"):
        load_npz(path, sha256_file(path))


def test_npz_round_trip_is_bit_exact(tmp_path):
    state = {"w": torch.randn(3, 4), "b": torch.randn(4)}
    sha = save_npz(tmp_path / "w.npz", state)
    back = load_npz(tmp_path / "w.npz", sha)
    assert all(torch.equal(state[k], back[k]) for k in state)


def test_a_changed_recipe_trains_instead_of_using_the_shipped_weights(empty_cache, monkeypatch):
    changed = lambda seed: replace(mnist.caffe_recipe(seed, iterations=3), lr=0.02)  # noqa: E731
    monkeypatch.setitem(mnist.BUILTIN_LENETS, "mnist-lenet-b", (1, changed))
    assert mnist.shipped_meta("mnist-lenet-b") is None and not get_spec("mnist-lenet-b").ready()
    load_classifier("mnist-lenet-b", "cpu")
    meta = json.loads((empty_cache / "mnist-lenet-b.json").read_text())
    assert meta["recipe"] == recipe_key(changed(1)) and meta["train_steps"] == 3


def test_an_outdated_cached_copy_gives_way_to_the_shipped_weights(empty_cache, capsys):
    from fooling.classifiers.lenet import LeNet

    empty_cache.mkdir(parents=True)
    torch.save(LeNet(10).state_dict(), empty_cache / "mnist-lenet-b.pt")
    (empty_cache / "mnist-lenet-b.json").write_text(json.dumps(
        {"arch": "lenet", "num_classes": 10, "held_out_accuracy": 0.5, "recipe": "0" * 16, "recipe_name": "robust"}))
    clf = load_classifier("mnist-lenet-b", "cpu")
    assert "retraining" not in capsys.readouterr().err
    shipped = load_npz(mnist.SHIPPED_DIR / "mnist-lenet-b.npz", mnist.shipped_meta("mnist-lenet-b")["sha256"])
    assert torch.equal(clf.net.state_dict()["fc1.weight"].cpu(), shipped["fc1.weight"])
    line = next(r for r in CliRunner().invoke(main, ["models"]).output.splitlines() if r.startswith("mnist-lenet-b "))
    assert "shipped weights" in line and "50.00%" not in line


@pytest.mark.slow
def test_a_built_wheel_contains_the_shipped_weights(tmp_path):
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), "-q"], check=True)
    names = zipfile.ZipFile(next(tmp_path.glob("fooling-*.whl"))).namelist()
    for name in mnist.BUILTIN_LENETS:
        assert f"fooling/classifiers/lenets/{name}.npz" in names and f"fooling/classifiers/lenets/{name}.json" in names


def _cache_copy(models: Path, name: str, **meta) -> torch.Tensor:
    """A cached copy of built-in ``name`` with its current recipe; returns its fc1 weights."""
    from fooling.classifiers.lenet import LeNet

    models.mkdir(parents=True, exist_ok=True)
    net = LeNet(10)
    torch.save(net.state_dict(), models / f"{name}.pt")
    (models / f"{name}.json").write_text(json.dumps({"arch": "lenet", "num_classes": 10, "held_out_accuracy": 0.5,
                                                     "recipe": recipe_key(mnist.builtin_settings(name)),
                                                     "recipe_name": "caffe", **meta}))
    return net.fc1.weight.detach().clone()


def test_a_copy_trained_on_first_use_gives_way_but_fool_train_wins(empty_cache):
    """An earlier version's first-use copy (no made_by) yields to the shipped weights; `fool train`'s does not."""
    _cache_copy(empty_cache, "mnist-lenet")  # what an earlier version trained on first use
    assert mnist.builtin_source("mnist-lenet")[0] == "shipped"
    shipped = load_npz(mnist.SHIPPED_DIR / "mnist-lenet.npz", mnist.shipped_meta("mnist-lenet")["sha256"])
    assert torch.equal(load_classifier("mnist-lenet", "cpu").net.fc1.weight.cpu(), shipped["fc1.weight"])
    own = _cache_copy(empty_cache, "mnist-lenet", made_by="fool train")
    assert mnist.builtin_source("mnist-lenet")[0] == "cache"
    assert torch.equal(load_classifier("mnist-lenet", "cpu").net.fc1.weight.cpu(), own)
    line = next(r for r in CliRunner().invoke(main, ["models"]).output.splitlines() if r.startswith("mnist-lenet "))
    assert "cached copy" in line and "50.00%" in line
