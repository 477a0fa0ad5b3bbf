"""The attack base class: a model adapter, the torchattacks call convention and per-image results."""

from __future__ import annotations

import contextlib
import math
import numbers
from dataclasses import dataclass, field
from typing import Iterator, Optional, Union

import numpy as np
import torch
from torch import nn

from ..classifiers import Classifier, Preprocess
from ..errors import FoolingError, shown
from ..limits import TORCH_SEEDS
from ..objective import Objective

METHODS = ("fgsm", "pgd", "cw-l2")
Model = Union[nn.Module, Classifier, Objective]


class _ModuleClassifier(Classifier):
    """A plain module that takes [0, 1] images as they are (no resize, no normalisation)."""

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(self.device, torch.float32)


@contextlib.contextmanager
def borrowed(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode with no parameter gradients for the block, then as it was: its training flag and
    each parameter's ``requires_grad`` restored (a user's model, say mid-way through adversarial training, must
    not come back frozen and in eval mode). Nothing else is touched: not its device, dtype or layout."""
    training = [(m, m.training) for m in module.modules()]
    grads = [(p, p.requires_grad) for p in module.parameters()]
    try:
        module.eval()
        for p, _ in grads:
            p.requires_grad_(False)
        yield module
    finally:
        for m, flag in training:
            m.training = flag
        for p, flag in grads:
            p.requires_grad_(flag)


def as_objective(model: Model, images: Optional[torch.Tensor] = None) -> Objective:
    """An :class:`Objective` over all classes of ``model`` (a module, a Classifier or an Objective).

    A module's number of classes is read from one forward pass of ``images[:1]``. The module keeps its own mode:
    :meth:`Attack.run` borrows it in eval mode (:func:`borrowed`); to score with the objective yourself, do the
    same (``with borrowed(module): objective.probs(x)``) or put the module in eval mode."""
    if isinstance(model, Objective):
        return model
    if isinstance(model, Classifier):
        return Objective([model], range(model.num_classes))
    if not isinstance(model, nn.Module):
        raise FoolingError(f"an attack needs an nn.Module, a Classifier or an Objective, not {type(model).__name__}")
    if images is None:
        raise FoolingError("a plain module needs example images to learn its number of classes")
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = images.device
    with borrowed(model), torch.no_grad():
        try:
            k = model(images[:1].to(device, torch.float32)).shape[-1]  # as _ModuleClassifier.prepare feeds it
        except Exception as err:  # noqa: BLE001 - whatever the user's module raises on these images
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise FoolingError(f"{type(model).__name__} fails on images of shape {tuple(images.shape[1:])}: "
                               f"{first}") from None
        c, h, w = images.shape[1:]
        spec = Preprocess(size=(h, w), channels=c, mean=(0.0,) * c, std=(1.0,) * c)
        # a Classifier puts its network in eval mode and freezes it for good: this one only while borrowed
        return Objective([_ModuleClassifier(model, name=type(model).__name__, labels=[str(i) for i in range(k)],
                                            preprocess=spec, device=device, memory_format="contiguous")], range(k))


def number(name: str, value: object) -> float:
    """``value`` as a float (an int too big for one: infinity, which the range checks refuse); a one-line
    FoolingError unless it is a number (a string such as "8/255", a bool of Python's, numpy's or torch's, or None
    is not: the comparisons that check its range would raise a TypeError deep inside)."""
    if not isinstance(value, (str, bytes, bool, np.bool_)) and value is not None and \
            getattr(value, "dtype", None) not in (np.bool_, torch.bool):
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            return math.inf if value > 0 else -math.inf  # type: ignore[operator]
        except (TypeError, ValueError):
            pass
    raise FoolingError(f"{name} must be a number, not {value!r}")


def count(name: str, value: object) -> int:
    """``value`` as an int; a one-line FoolingError unless it is a whole number (``10`` or ``10.0``, not "10")."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)  # exact, however large (a seed)
    x = number(name, value)
    if not (math.isfinite(x) and x == int(x)):
        raise FoolingError(f"{name} must be a whole number, not {value!r}")
    return int(x)


def at_most(name: str, value: int, limit: int) -> int:
    """``value``; a one-line FoolingError naming ``name`` if it is more than ``limit`` (a declared limit of
    :mod:`fooling.limits`: a count such as steps=10**12 would run for ever, or ask for more memory than there is)."""
    if value > limit:
        raise FoolingError(f"{name} must be at most {limit:,}, not {shown(value)}")
    return value


def check_channels(objective: Objective, channels: int) -> None:
    """A one-line FoolingError unless every network can take ``channels``-channel images (grey and RGB convert)."""
    for c in objective.classifiers:
        takes = {c.spec.channels} if isinstance(c, _ModuleClassifier) else {c.spec.channels, 1, 3}
        if channels not in takes:
            raise FoolingError(f"the images have {channels} channel(s); {c.name} takes "
                               f"{' or '.join(map(str, sorted(takes)))}")


@dataclass
class AttackResult:
    """Per image (all (N,)): adversarial images (N, C, H, W) in [0, 1] on the CPU, clean and adversarial
    top-1 class and confidence, the label attacked (target or true label), success, and L0 (changed pixel
    values), L2 and L∞ of the change. evaluations: forward passes of single images in all."""

    images: torch.Tensor
    clean_class: np.ndarray
    clean_confidence: np.ndarray
    adv_class: np.ndarray
    adv_confidence: np.ndarray
    labels: np.ndarray
    targeted: bool
    success: np.ndarray
    l0: np.ndarray
    l2: np.ndarray
    linf: np.ndarray
    evaluations: int = 0
    extra: dict = field(default_factory=dict)


def change_norms(adv: torch.Tensor, original: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(L0, L2, L∞) of adv − original per image (N,): L0 counts values changed by at least half a grey level."""
    delta = (adv.float() - original.float()).flatten(1)
    return ((delta.abs() >= 0.5 / 255).sum(1).cpu().numpy(), delta.norm(dim=1).cpu().numpy(),
            delta.abs().amax(1).cpu().numpy())


class Attack:
    """Base: ``attack(images (N, C, H, W) in [0, 1], labels (N,)) -> adversarial images (N, C, H, W)``.

    Untargeted by default (labels are the true classes, the attack moves away from them);
    :meth:`set_mode_targeted_by_label` makes labels the targets (torchattacks' convention).
    quantized: every image the attack scores, keeps and returns is rounded to 8 bits (straight-through
    gradients), so success is judged on exactly what an 8-bit file of it holds (``fool attack`` sets it).
    :meth:`run` returns an :class:`AttackResult` with predictions and change sizes."""

    name = "attack"

    def __init__(self, model: Model, *, targeted: bool = False, seed: int = 0, quantized: bool = False) -> None:
        self.model = model
        self.targeted = targeted
        self.seed = count("seed", seed)
        if not 0 <= self.seed < TORCH_SEEDS:  # a bigger one failed in PGD, mid-attack
            raise FoolingError(f"seed must be in 0-{TORCH_SEEDS - 1}, not {shown(self.seed)}")
        self.quantized = quantized  # score, choose and return images rounded to 8 bits (what a file holds)
        self._objective: Optional[Objective] = model if isinstance(model, Objective) else None

    def set_mode_targeted_by_label(self) -> "Attack":
        self.targeted = True
        return self

    def set_mode_default(self) -> "Attack":
        self.targeted = False
        return self

    def objective(self, images: torch.Tensor) -> Objective:
        if self._objective is None:
            self._objective = as_objective(self.model, images)
        return self._objective

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.run(images, labels).images.to(images.device)

    forward = __call__

    def run(self, images: torch.Tensor, labels) -> AttackResult:
        """Attack a batch; see :class:`AttackResult`."""
        if not torch.is_tensor(images):
            raise TypeError(f"images must be a torch.Tensor (N, C, H, W), not {type(images).__name__}")
        if images.dim() != 4 or not images.shape[0]:
            raise FoolingError(f"images must be (N, C, H, W) with N >= 1, not of shape {tuple(images.shape)}")
        objective = self.objective(images)
        labels = torch.as_tensor(np.asarray(labels.cpu() if torch.is_tensor(labels) else labels), dtype=torch.long)
        if labels.shape != (images.shape[0],):
            raise FoolingError(f"one label per image: {images.shape[0]} images, labels of shape {tuple(labels.shape)}")
        k = objective.num_classes
        if labels.numel() and not (0 <= int(labels.min()) and int(labels.max()) < k):
            raise FoolingError(f"class {int(labels.max() if labels.max() >= k else labels.min())} does not exist: "
                               f"the model has classes 0-{k - 1}")
        check_channels(objective, images.shape[1])
        with borrowed(self.model) if isinstance(self.model, nn.Module) else contextlib.nullcontext():
            return self._run(objective, images, labels)

    def _run(self, objective: Objective, images: torch.Tensor, labels: torch.Tensor) -> AttackResult:
        x = images.detach().to(objective.device, torch.float32)
        if float(x.min()) < 0 or float(x.max()) > 1:
            raise FoolingError("images must be in [0, 1]")
        from ..search.gradient.engine import not_finite

        with torch.no_grad():
            clean_p = objective.probs(x).float()
        if torch.isnan(clean_p).any():  # CW's goal would read NaN logits as a failure and go on
            raise not_finite(objective)
        adv, evaluations = self.perturb(objective, x, labels.numpy())
        adv = adv.detach().to(objective.device, torch.float32).clamp(0, 1)
        if self.quantized:
            from ..search.gradient import quantize

            adv = quantize(adv)
        with torch.no_grad():
            adv_p = objective.probs(adv).float()
        if torch.isnan(adv_p).any():
            raise not_finite(objective)
        adv_class = adv_p.argmax(1).cpu().numpy()
        lab = labels.numpy()
        success = adv_class == lab if self.targeted else adv_class != lab
        l0, l2, linf = change_norms(adv, x)
        return AttackResult(images=adv.cpu(), clean_class=clean_p.argmax(1).cpu().numpy(),
                            clean_confidence=clean_p.amax(1).cpu().numpy().astype(np.float64),
                            adv_class=adv_class, adv_confidence=adv_p.amax(1).cpu().numpy().astype(np.float64),
                            labels=lab, targeted=self.targeted, success=success, l0=l0, l2=l2, linf=linf,
                            evaluations=evaluations + 2 * len(lab))

    def perturb(self, objective: Objective, images: torch.Tensor, labels: np.ndarray) -> tuple[torch.Tensor, int]:
        """(adversarial images (N, C, H, W), images scored) — each attack's own."""
        raise NotImplementedError

    def goal(self):
        from ..search.gradient import Away, Toward

        return Toward("logprob") if self.targeted else Away()
