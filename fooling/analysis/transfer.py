"""Transfer: how confidently other networks label the images evolved against one network.

Every elite PNG of a run is scored by every target network in one batch per
network; for each image we keep the confidence the target gives to the class the
image was evolved for, the target's top-1 class, and the source network's own
re-scored confidence (the PNG is 8-bit, so it can differ slightly from the
archive's).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..classifiers import Classifier, get_spec, load_classifier, resolve_device
from ..classifiers.fingerprint import check_fingerprints
from ..classifiers.sources import runs_code, same_source
from ..errors import FoolingError
from ..imaging import read_image
from ..rundir import RunElites, load_images


@dataclass(frozen=True)
class ClassScore:
    """One elite image scored by one target network."""

    run: str
    source: str
    encoding: str
    target: str
    target_is_source: bool  # the target is (one of) the network(s) the image was evolved against
    index: int
    label: str
    archive_confidence: float  # what the run recorded (float image)
    source_confidence: float  # the source network(s) re-scoring the PNG (ensembles: combined)
    confidence: float  # the target's probability for ``index``
    top1: int
    top1_label: str
    # survival (``fool transfer --transforms SPEC --samples K``): the target's confidence for ``index`` under K
    # random transforms of the image: mean, minimum and the share still >= 99 % (None: not measured)
    survival_mean: Optional[float] = None
    survival_min: Optional[float] = None
    survival_99: Optional[float] = None

    @property
    def agrees(self) -> bool:
        """The target's top-1 class is the class the image was evolved for."""
        return self.top1 == self.index


@dataclass(frozen=True)
class PairSummary:
    """All images of one source (and encoding) scored by one target."""

    source: str
    encoding: str
    target: str
    target_is_source: bool
    runs: int
    images: int
    median: float
    mean: float
    above_50: float  # fraction of images the target scores >= 0.5
    above_99: float  # fraction >= 0.99
    top1_agreement: float
    source_median: float  # the source's own re-scored confidence, for reference
    archive_median: float
    per_class: dict[str, float] = field(default_factory=dict)  # label ('crane (134)' if shared) -> median over runs
    survival_mean: Optional[float] = None  # the mean over images of their mean confidence under transforms
    survival_min: Optional[float] = None  # the median over images of their minimum
    survival_99: Optional[float] = None  # the mean over images of the share of transforms still >= 99 %


@dataclass(frozen=True)
class TransferResult:
    """Everything ``fool transfer`` reports."""

    targets: list[str]
    runs: list[RunElites]
    scores: list[ClassScore]
    pairs: list[PairSummary]


def check_class_counts(runs: Sequence[RunElites], targets: Sequence[str]) -> None:
    """A :class:`FoolingError` for an unknown target or one with fewer classes than a run's network.

    A target may have more: a network retrained with an extra "fooling" class (``fool retrain``)
    scores the images of the network it came from (its first classes must be the same ones,
    which :func:`check_labels` checks once the networks are loaded).
    """
    if not targets:
        raise FoolingError("give at least one target model with --models")
    for name in targets:
        spec = get_spec(name)
        for run in runs:
            if spec.num_classes < run.num_classes:
                raise FoolingError(
                    f"{name} has {spec.num_classes} classes but {run.path} was evolved against {run.source} "
                    f"with {run.num_classes}; transfer needs networks with (at least) the same classes")


def check_code_sources(runs: Sequence[RunElites], targets: Sequence[str]) -> None:
    """Refuse (one line) to load a run's own network that runs code (python:, TorchScript) unless the user named
    it among ``targets``: a run directory is data, and a name written into its files must not run a program."""
    for run in runs:
        for model in run.models:
            if runs_code(model) and not any(same_source(model, t) for t in targets):
                raise FoolingError(
                    f"{run.path} was evolved against {model}, which runs code when loaded; fool transfer loads it "
                    "only if you name it in --models yourself (do so only if you trust it)")


def check_labels(source: Classifier, target: Classifier) -> None:
    """A :class:`FoolingError` unless ``target``'s first classes are ``source``'s, in the same order."""
    n = source.num_classes
    if list(target.labels[:n]) != list(source.labels):
        raise FoolingError(f"the first {n} classes of {target.name} are not the classes of {source.name}; "
                           "transfer needs the same classes in the same order")


def _combine(values: torch.Tensor, how: str) -> torch.Tensor:
    """(M, N) -> (N,): an ensemble's mean or min, as its fitness was."""
    return values.min(0).values if how == "min" else values.mean(0)


def survival(classifier: Classifier, images: torch.Tensor, index: torch.Tensor, eot) -> tuple[np.ndarray, ...]:
    """(mean, min, share >= 0.99) (N,) each of ``classifier``'s confidence in class index (N,) over ``eot``'s K
    random transforms of images (N, C, H, W), all K·N in one batched pass."""
    p = classifier.probs(eot.expand(images.to(classifier.device))).float().cpu()  # (K·N, classes)
    conf = p.view(eot.samples, len(index), -1)[:, torch.arange(len(index)), index]  # (K, N)
    return conf.mean(0).numpy(), conf.min(0).values.numpy(), (conf >= 0.99).float().mean(0).numpy()


def score_run(run: RunElites, targets: Sequence[str], classifier: Callable[[str], Classifier],
              eot=None) -> list[ClassScore]:
    """Score one run's elites on its own model(s) and every target: one forward pass per network (and, with
    ``eot`` (an :class:`~fooling.objective.eot.EOT`), their survival under its random transforms)."""
    read_image(run.elites[0].png)  # load_images opens the first one unchecked; a bad file: one line naming it
    images = load_images(run.elites)  # the rest go through imaging.load_image (checked)
    index = torch.tensor([e.index for e in run.elites])
    rows = torch.arange(len(run.elites))
    probs = {name: classifier(name).probs(images).float().cpu() for name in dict.fromkeys([*run.models, *targets])}
    own = _combine(torch.stack([probs[m][rows, index] for m in run.models]), run.combine)
    out = []
    for target in targets:
        labels = classifier(target).labels
        conf = probs[target][rows, index]
        top1 = probs[target].argmax(1)
        surv = survival(classifier(target), images, index, eot) if eot is not None else None
        for i, elite in enumerate(run.elites):
            out.append(ClassScore(
                run=str(run.path), source=run.source, encoding=run.encoding, target=target,
                target_is_source=target in run.models, index=elite.index,
                label=elite.label, archive_confidence=elite.confidence, source_confidence=float(own[i]),
                confidence=float(conf[i]), top1=int(top1[i]), top1_label=labels[int(top1[i])],
                **({} if surv is None else {"survival_mean": float(surv[0][i]), "survival_min": float(surv[1][i]),
                                            "survival_99": float(surv[2][i])}),
            ))
    return out


def _config_record(path: Path) -> dict:
    """A run's config.json as a dict ({} when unreadable: read_run has already checked it)."""
    try:
        record = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return record if isinstance(record, dict) else {}


def score_transfer(runs: Sequence[RunElites], targets: Sequence[str], device: str = "auto",
                   progress: Optional[Callable[[RunElites], None]] = None, eot=None) -> list[ClassScore]:
    """Every elite of every run scored by every target (each network loaded once)."""
    check_class_counts(runs, targets)
    check_code_sources(runs, targets)
    dev = resolve_device(device)
    loaded: dict[str, Classifier] = {}

    def classifier(name: str) -> Classifier:
        if name not in loaded:
            loaded[name] = load_classifier(name, dev)
        return loaded[name]

    for source in dict.fromkeys(run.models[0] for run in runs):
        for target in targets:
            check_labels(classifier(source), classifier(target))
    for run in runs:  # a run's own networks must still have the weights it was evolved against
        check_fingerprints(_config_record(run.path), {m: classifier(m) for m in run.models if m in loaded})
    scores = []
    for run in runs:
        if progress is not None:
            progress(run)
        scores.extend(score_run(run, targets, classifier, eot))
    return scores


def summarise(scores: Sequence[ClassScore], targets: Sequence[str]) -> list[PairSummary]:
    """One :class:`PairSummary` per (source, encoding, target), sources in order of appearance."""
    groups: dict[tuple[str, str, str], list[ClassScore]] = defaultdict(list)
    for s in scores:
        groups[(s.source, s.encoding, s.target)].append(s)
    sources = list(dict.fromkeys((s.source, s.encoding) for s in scores))
    indices: dict[str, set[int]] = defaultdict(set)
    for s in scores:
        indices[s.label].add(s.index)
    shared = {label for label, found in indices.items() if len(found) > 1}  # ImageNet: "crane" (134, 517)
    pairs = []
    for source, encoding in sources:
        for target in targets:
            group = groups.get((source, encoding, target))
            if not group:
                continue
            conf = np.array([s.confidence for s in group])
            by_class: dict[str, list[float]] = defaultdict(list)
            for s in sorted(group, key=lambda s: s.index):
                by_class[f"{s.label} ({s.index})" if s.label in shared else s.label].append(s.confidence)
            pairs.append(PairSummary(
                source=source, encoding=encoding, target=target,
                target_is_source=group[0].target_is_source,
                runs=len({s.run for s in group}), images=len(group), median=float(np.median(conf)),
                mean=float(conf.mean()), above_50=float((conf >= 0.5).mean()), above_99=float((conf >= 0.99).mean()),
                top1_agreement=float(np.mean([s.agrees for s in group])),
                source_median=float(np.median([s.source_confidence for s in group])),
                archive_median=float(np.median([s.archive_confidence for s in group])),
                per_class={label: float(np.median(v)) for label, v in by_class.items()},
                **({} if group[0].survival_mean is None else {
                    "survival_mean": float(np.mean([s.survival_mean for s in group])),
                    "survival_min": float(np.median([s.survival_min for s in group])),
                    "survival_99": float(np.mean([s.survival_99 for s in group]))}),
            ))
    return pairs


def run_transfer(runs: Sequence[RunElites], targets: Sequence[str], device: str = "auto",
             progress: Optional[Callable[[RunElites], None]] = None, eot=None) -> TransferResult:
    """Score and summarise: the whole of ``fool transfer`` short of writing files (``eot``: survival too)."""
    scores = score_transfer(runs, targets, device, progress, eot)
    return TransferResult(list(targets), list(runs), scores, summarise(scores, targets))
