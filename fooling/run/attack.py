"""A ``fool attack`` run: perturb a batch of photos, each at its own resolution, and write the results.

RUN_DIR/
  adversarial/<name>.<ext>     each adversarial photo at the input's size and in its format (a later photo
                               whose name is taken, x.png from a second folder or x.jpg beside x.png: x_2)
  perturbation/<name>.png      the change, amplified to fill [0, 1] around grey
  results.csv, results.json    per photo: clean prediction and confidence, the adversarial file's
                               prediction and confidence AS WRITTEN (re-read from disk), target,
                               success of the written file (and of the image in memory), L0, L2, L∞
                               of the written change
  elites/<i>_<name>.png        clean | perturbation | adversarial side by side (what `fool gallery` shows),
  config.json, summary.json    with both predictions in summary.json's classes (the gallery's captions)
The network's resize and normalisation sit inside the differentiable path (the Classifier), so
the attack changes the full-size pixels. The attacks run quantised: every image they score and keep
is rounded to 8 bits, so for PNG (and other lossless) files what is written is what was judged; JPEG
(quality 95) is lossy, hence the re-read.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import __version__
from ..attacks import CW, FGSM, PGD, Attack
from ..attacks.base import change_norms
from ..classes import parse_classes
from ..classifiers import Classifier, load_classifier, resolve_device
from ..errors import FoolingError
from ..imaging import load_image, read_image, to_uint8
from ..objective import Objective
from ..rundir.names import elite_stem
from ..rundir.writer import RunDirectory, unused_path
from ..settings.attack import AttackSettings

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
COLUMNS = ["file", "width", "height", "clean_class", "clean_label", "clean_confidence", "adv_class", "adv_label",
           "adv_confidence", "target", "target_label", "targeted", "success", "success_in_memory", "l0", "l2", "linf",
           "evaluations", "seconds"]


def list_images(paths: list[str]) -> list[Path]:
    """Files as given, folders expanded to their image files (sorted); one-line errors for nothing found."""
    if not paths:
        raise FoolingError("--images: give image files or a folder of them")
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise FoolingError(f"{p}: no images (PNG, JPEG, BMP, WebP, TIFF) in this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FoolingError(f"{p}: no such file or folder")
    return out


def output_stems(files: list[Path]) -> list[str]:
    """Each photo's name in adversarial/ and perturbation/: its own stem, or stem_2, stem_3, ... where an earlier
    photo has it (compared ignoring case, as some file systems do), so that no photo's result replaces another's."""
    used: set[str] = set()
    stems = []
    for f in files:
        stem, k = f.stem, 1
        while stem.lower() in used:
            k += 1
            stem = f"{f.stem}_{k}"
        used.add(stem.lower())
        stems.append(stem)
    return stems


def make_attack(config: AttackSettings, objective: Objective) -> Attack:
    if config.method == "fgsm":
        atk: Attack = FGSM(objective, eps=config.epsilon, norm=config.norm, seed=config.seed, quantized=True)
    elif config.method == "pgd":
        atk = PGD(objective, eps=config.epsilon, alpha=config.step_size, steps=config.steps or 10,
                  random_start=config.random_start, restarts=config.restarts, norm=config.norm, seed=config.seed,
                  quantized=True)
    else:
        preset = CW.ORIGINAL if config.cw_preset == "original" else CW.FAST
        atk = CW(objective, **{**preset, "kappa": config.confidence, "lr": config.cw_lr,
                               **({"steps": config.steps} if config.steps else {}),
                               **({"search_steps": config.cw_search_steps} if config.cw_search_steps else {})},
                 linf=config.cw_linf,
                 seed=config.seed, quantized=True)
    if config.target is not None:
        atk.set_mode_targeted_by_label()
    return atk


def perturbation_image(adv: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W): 0.5 + δ / (2·max|δ|), the change made visible."""
    delta = adv - clean
    return (0.5 + delta / (2 * delta.abs().max().clamp_min(1e-12))).clamp(0, 1)


def save_like(image: torch.Tensor, path: Path, fmt: Optional[str]) -> None:
    """Write (1, C, H, W) in [0, 1] in the format ``fmt`` (Pillow's name; JPEG at quality 95)."""
    array = to_uint8(image)[0]
    pil = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    fmt = (fmt or "PNG").upper()
    pil.save(path, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))


def side_by_side(clean: torch.Tensor, pert: torch.Tensor, adv: torch.Tensor, height: int = 256) -> torch.Tensor:
    """Three (1, C, H, W) images resized to ``height`` (or less, so that each is at most 4 * ``height`` wide: a
    60000x1 photo would otherwise take gigabytes) and put side by side with 4 px white gaps."""
    h, w = clean.shape[-2:]
    scale = min(height / h, 4 * height / w)
    height = max(1, round(h * scale))
    size = (height, max(1, round(w * scale)))
    parts = [F.interpolate(x.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
             for x in (clean, pert, adv)]
    gap = torch.ones(1, clean.shape[1], height, 4)
    return torch.cat([parts[0], gap, parts[1], gap, parts[2]], dim=-1).clamp(0, 1)


class AttackRun:
    def __init__(self, config: AttackSettings, classifier: Optional[Classifier] = None) -> None:
        config.validate()
        self.files = list_images(config.images)
        self.classifier = classifier or load_classifier(config.model, resolve_device(config.device), 1)
        labels = self.classifier.labels
        self.target: Optional[int] = None
        if config.target is not None:
            if not str(config.target).strip():
                raise FoolingError("--target is empty; give one class's name or index")
            try:
                targets = parse_classes(str(config.target), labels)
            except FoolingError as err:
                raise FoolingError(f"--target: {err}") from None
            if len(targets) != 1:  # '0-3' took class 0 without a word
                raise FoolingError(f"--target must name one class, got {config.target!r} ({len(targets)} classes)")
            self.target = targets[0]
        self.objective = Objective([self.classifier], range(self.classifier.num_classes))
        if config.eot:
            from ..objective.eot import EOT

            self.objective.with_eot(EOT(config.eot, config.transforms, config.seed))
        out = Path(config.out) if config.out else unused_path(f"{config.model.replace(':', '-')}_attack-"
                                                              f"{config.method}_s{config.seed}")
        self.config = dataclasses.replace(config, out=str(out))
        self.rundir = RunDirectory(out)

    def run(self, progress: bool = False) -> list[dict]:
        cfg, labels, c = self.config, self.classifier.labels, self.classifier.spec.channels
        formats = []
        for f in self.files:  # every file read (a bad one is one line) before work, but held one at a time: a
            load_image(f, c)  # folder of photos as float32 tensors all at once took gigabytes
            with read_image(f) as pil:
                formats.append(pil.format)
        self.rundir.create({**cfg.to_json(), "run": {"command": "attack", "version": __version__,
                                                    "num_classes": len(self.files),
                                                    "files": [str(f) for f in self.files]}},
                           resumable=False)  # an attack has no --resume
        for sub in ("adversarial", "perturbation"):
            (self.rundir.path / sub).mkdir()
        rows, classes, started = [], [], time.time()
        for i, (path, fmt, stem) in enumerate(zip(self.files, formats, output_stems(self.files))):
            t0 = time.time()
            x = load_image(path, c)
            attack = make_attack(cfg, self.objective)
            with torch.no_grad():
                clean_class = int(self.objective.probs(x.to(self.objective.device)).argmax(1))
            label = self.target if self.target is not None else clean_class
            r = attack.run(x, [label])
            adv = r.images
            ext = path.suffix if fmt else ".png"
            out_file = self.rundir.path / "adversarial" / f"{stem}{ext}"
            save_like(adv, out_file, fmt)
            saved = load_image(out_file, c)  # the prediction reported is the written file's
            with torch.no_grad():
                saved_p = self.objective.probs(saved.to(self.objective.device)).float()[0]
            saved_class = int(saved_p.argmax())
            l0, l2, linf = change_norms(saved, x)
            pert = perturbation_image(adv, x)
            save_like(pert, self.rundir.path / "perturbation" / f"{stem}.png", "PNG")
            row = {"file": str(path), "width": x.shape[-1], "height": x.shape[-2],
                   "clean_class": int(r.clean_class[0]), "clean_label": labels[int(r.clean_class[0])],
                   "clean_confidence": float(r.clean_confidence[0]), "adv_class": saved_class,
                   "adv_label": labels[saved_class], "adv_confidence": float(saved_p[saved_class]),
                   "target": self.target, "target_label": labels[self.target] if self.target is not None else None,
                   "targeted": self.target is not None,
                   "success": bool(saved_class == label if self.target is not None else saved_class != label),
                   "success_in_memory": bool(r.success[0]),
                   "l0": int(l0[0]), "l2": float(l2[0]), "linf": float(linf[0]),
                   "evaluations": int(r.evaluations), "seconds": round(time.time() - t0, 3)}
            rows.append(row)
            name = f"{path.stem}: {row['clean_label']} -> {row['adv_label']}"
            from ..imaging import save_png

            save_png(side_by_side(x, pert, adv)[0], self.rundir.elites / f"{elite_stem(i, name)}.png")
            classes.append({"index": i, "label": name, "confidence": row["adv_confidence"],
                            "clean_confidence": row["clean_confidence"], "success": row["success"],
                            "generation_found": 0, "file": row["file"]})
            self._write(rows, classes, time.time() - started, finished=False)  # results so far, after each photo
            if progress:
                print(f"{path.name}: {row['clean_label']} ({row['clean_confidence']:.3f}) -> {row['adv_label']} "
                      f"({row['adv_confidence']:.3f}) {'ok' if row['success'] else 'failed'} "
                      f"linf {row['linf'] * 255:.2f}/255 l2 {row['l2']:.3f}", flush=True)
        self._write(rows, classes, time.time() - started)
        return rows

    def _write(self, rows: list[dict], classes: list[dict], elapsed: float, finished: bool = True) -> None:
        path = self.rundir.path
        with open(path / "results.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        (path / "results.json").write_text(json.dumps(rows, indent=2))
        n = len(rows)
        summary = {"model": self.config.model, "encoding": f"attack-{self.config.method}", "strategy": "attack",
                   "method": self.config.method, "targeted": self.target is not None, "images": n,
                   "successes": sum(r["success"] for r in rows),
                   "successes_in_memory": sum(r["success_in_memory"] for r in rows),
                   "mean_l2": float(np.mean([r["l2"] for r in rows])) if n else None,
                   "mean_linf": float(np.mean([r["linf"] for r in rows])) if n else None,
                   "evaluations": sum(r["evaluations"] for r in rows), "elapsed_s": round(elapsed, 3),
                   "generation": 0, "finished": finished, "stop_reason": "done" if finished else "running",
                   "classes": classes}
        self.rundir.write_summary(summary)
        self.summary = summary
