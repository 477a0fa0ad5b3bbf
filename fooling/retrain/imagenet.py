"""The ImageNet side of the loop: the pretrained network, its head widened to 1001 outputs.

Needs the user's real images in torchvision's ImageFolder layout: one sub-folder
per class, named by class index (``0``..``999``) or class name (``goldfish``,
``king_penguin``; case and ``_``/space do not matter). Of each class the last
``held_out`` share of images (sorted by file name) is held out for measuring.
Images are read with PIL, resized (shorter side 256) and centre-cropped to 256.

Only the head is trained (see :mod:`.head`), always starting from the base
network's head: the backbone is frozen and shared by every iteration, so real
images pass through it once (their features are cached in the retrain directory).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from ..classifiers import load_classifier
from ..classifiers.weights import load_state_dict
from .. import imaging
from ..errors import FoolingError
from .head import HEAD_ARCH, find_head, head_features, head_predictions, train_head
from .pool import Pool, balanced_sample
from ..settings.retrain import RetrainSettings
from .task import RetrainTask, held_out_metrics

IMAGE_SIDE = 256
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff"}
DEFAULT_EPOCHS = 30
FEATURES_FILE = "imagenet_features.npz"
CHUNK = 64  # images read or converted at a time


def _class_index(folder_name: str, labels: Sequence[str]) -> int:
    if folder_name.isdigit() and int(folder_name) < len(labels):
        return int(folder_name)
    key = folder_name.replace("_", " ").lower()
    matches = [k for k, label in enumerate(labels) if label.lower() == key]
    if len(matches) != 1:
        raise FoolingError(f"image folder {folder_name!r} names no single class: name class folders by index "
                           f"(0-{len(labels) - 1}) or by class name, e.g. 'goldfish'")
    return matches[0]


def scan_folder(root: str | Path, labels: Sequence[str], held_out: float) -> dict[str, list[tuple[Path, int]]]:
    """{"train": [(path, class)], "held_out": [...]}: the last ``held_out`` share of each class held out."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FoolingError(f"--imagenet-dir {root} is not a folder")
    split: dict[str, list[tuple[Path, int]]] = {"train": [], "held_out": []}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        k = _class_index(sub.name, labels)
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in SUFFIXES)
        held = math.ceil(held_out * len(files)) if len(files) > 1 else 0
        split["train"] += [(p, k) for p in files[:len(files) - held]]
        split["held_out"] += [(p, k) for p in files[len(files) - held:]]
    if not split["train"] or not split["held_out"]:
        raise FoolingError(f"--imagenet-dir {root} needs class sub-folders with at least two images each "
                           f"(found {len(split['train'])} to train on, {len(split['held_out'])} to hold out)")
    return split


def read_image(path: Path, side: int = IMAGE_SIDE) -> torch.Tensor:
    """An image file -> (3, side, side) float32 in [0, 1]: shorter side resized to ``side``, centre crop."""
    pil = imaging.read_image(path).convert("RGB")  # one-line errors; huge or very narrow images refused unread
    scale = side / min(pil.size)
    w, h = max(side, round(pil.width * scale)), max(side, round(pil.height * scale))
    pil = pil.resize((w, h), Image.BILINEAR)
    left, top = (w - side) // 2, (h - side) // 2
    pil = pil.crop((left, top, left + side, top + side))
    return torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)


class ImageNetTask(RetrainTask):
    """A pretrained ImageNet classifier, the user's ImageFolder, heads with n + 1 outputs."""

    def __init__(self, settings: RetrainSettings, folder: Path) -> None:
        super().__init__(settings, folder)
        if not settings.imagenet_dir:
            raise FoolingError(f"{settings.model} is an ImageNet network: retraining it needs real images, "
                               f"--imagenet-dir FOLDER (one sub-folder of images per class)")
        self.base = load_classifier(settings.model, settings.device)
        self.head_path, head = find_head(self.base.net, self.base.num_classes)
        self.head = head
        self.base_weight = head.weight.detach().float().cpu()  # (n, F)
        self.base_bias = head.bias.detach().float().cpu() if head.bias is not None else torch.zeros(len(self.labels))
        self.features = self._real_features()

    @property
    def labels(self) -> list[str]:
        return self.base.labels

    def _features_of(self, batches: Iterable[torch.Tensor]) -> torch.Tensor:
        """Head inputs (N, F) of image batches, each (B, C, H, W) in [0, 1], computed batch by batch."""
        return torch.cat([head_features(self.base, self.head, batch) for batch in batches])

    def _real_features(self) -> dict[str, torch.Tensor]:
        """Features and labels of the folder's train and held-out images (cached in the retrain directory)."""
        path = self.folder / FEATURES_FILE
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                return {key: torch.from_numpy(data[key]) for key in data.files}
        split = scan_folder(self.settings.imagenet_dir, self.labels, self.settings.held_out)
        out: dict[str, torch.Tensor] = {}
        for part, items in split.items():
            paths = [p for p, _ in items]
            batches = (torch.stack([read_image(p) for p in paths[start:start + CHUNK]])
                       for start in range(0, len(paths), CHUNK))
            out[f"{part}_features"] = self._features_of(batches)
            out[f"{part}_labels"] = torch.tensor([k for _, k in items], dtype=torch.long)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **{key: value.numpy() for key, value in out.items()})
        tmp.replace(path)
        return out

    def fooling_class_size(self) -> int:
        labels = self.features["train_labels"]
        return self.settings.fooling_images or round(len(labels) / len(torch.unique(labels)))

    def _head_of(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i == 0:
            return self.base_weight, self.base_bias
        state = load_state_dict(self.folder / "networks" / f"{self.settings.network_name(i)}.pt")
        return state["weight"].float(), state["bias"].float()

    def measure(self, i: int) -> dict[str, Any]:
        pred = head_predictions(self.features["held_out_features"], *self._head_of(i))
        metrics = held_out_metrics(pred, self.features["held_out_labels"].numpy(), self.num_real)
        if i == 0:
            metrics["held_out_fooling_share"] = None
        return metrics

    def train(self, i: int, pools: Sequence[Pool]) -> dict[str, Any]:
        s = self.settings
        rng = np.random.default_rng([s.seed, i])
        fooling = balanced_sample(pools, self.fooling_class_size(), rng)  # uint8 (M, C, H, W)
        fooling_features = self._features_of(torch.from_numpy(fooling[start:start + CHUNK]).float() / 255.0
                                             for start in range(0, len(fooling), CHUNK))
        features = torch.cat([self.features["train_features"], fooling_features])
        labels = torch.cat([self.features["train_labels"], torch.full((len(fooling),), self.num_real)])
        seed = s.seed if s.train_seed is None else s.train_seed
        epochs = s.epochs or DEFAULT_EPOCHS
        bar = self.training_progress(epochs)
        try:
            weight, bias = train_head(features, labels, self.base_weight, self.base_bias, rows=s.head_rows,
                                      epochs=epochs, lr=s.lr or 1e-3, batch_size=s.batch_size, seed=seed,
                                      on_epoch=lambda epoch, loss: bar.advance(epoch, extra=f"loss {loss:.4f}"))
        finally:
            bar.close()
        meta = self.meta(i, {
            "arch": HEAD_ARCH, "dataset": "imagenet", "base": s.model, "head": self.head_path,
            "head_rows": s.head_rows, "fooling_images": len(fooling),
            "real_images": len(self.features["train_labels"]), "data": str(Path(s.imagenet_dir).expanduser()),
        })
        self.save(i, {"weight": weight, "bias": bias}, meta)
        return meta
