"""Gradient ascent on a classifier's output, one image per target class, all in one batch.

The paper's third method: X <- (X + lr·∇p)(1 - decay), then regularise and clip,
with the "progress" learning rate lr = Δ / ‖∇p‖², Δ = min(0.03, 0.1·(1 - p)), so
that each step is predicted to raise the target's probability p by Δ. Each image
has its own lr. The "yosinski" preset instead climbs the target's logit with
steps of a fixed mean size, blurring every 4 steps (Yosinski et al. 2015). What is
optimised is a :class:`Parameterization`: pixels (:class:`PixelImages`) or anything
else that renders differentiably to images. Per image we record the first step at
which its target became top-1 and passed 99%, 99.9% and 99.99% (:class:`Milestones`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import numpy as np
import torch

from ..archive import THRESHOLDS
from ..classifiers import Classifier
from ..settings.ascend import OBJECTIVES, RATES  # noqa: F401  (the choices of StepRule's fields)
from .regularizers import Regularizers, regularize

MAX_GAIN = 0.03  # Δ while far from the goal
LATE_GAIN = 0.1  # Δ = LATE_GAIN·(1 - p) near it




def progress_lr(p: torch.Tensor, grad_sq_norm: torch.Tensor) -> torch.Tensor:
    """Per-image learning rate (B,) that predicts a gain of min(0.03, 0.1·(1 - p)); 0 where ∇ = 0."""
    gain = torch.clamp(LATE_GAIN * (1.0 - p), max=MAX_GAIN)
    return torch.where(grad_sq_norm > 0, gain / grad_sq_norm.clamp_min(1e-30), torch.zeros_like(p))


@dataclass(frozen=True)
class StepRule:
    """What each step climbs and how far it goes.

    objective: "prob", the target's softmax probability (the paper), or "logit", its
    pre-softmax score (Yosinski et al.). rate: "progress" (:func:`progress_lr`, predicted
    on the probability), "normalised", a step whose mean absolute pixel change is
    ``step_size`` (lr = step_size / mean|∇|, free of the network's gradient scale; for CPPN
    weights, the mean absolute weight change), or "adam": Adam's per-parameter steps
    (:class:`Adam`) with learning rate ``step_size``.
    """

    objective: str = "prob"
    rate: str = "progress"
    step_size: float = 0.01

    def lr(self, p: torch.Tensor, grad: torch.Tensor, sizes: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-image learning rate (B,) for target probabilities p (B,) and gradients (B, ...).

        sizes: (B,) how many of each row's parameters are real (the rest is zero padding), for
        the normalised rate's mean; default all of them.
        """
        flat = grad.flatten(1)
        if self.rate == "progress":
            return progress_lr(p, flat.pow(2).sum(1))
        if self.rate == "adam":
            return torch.full_like(p, self.step_size)
        mean = flat.abs().sum(1) / (flat.shape[1] if sizes is None else sizes.to(flat.dtype).clamp_min(1))
        return torch.where(mean > 0, self.step_size / mean.clamp_min(1e-30), torch.zeros_like(mean))


class Adam:
    """Adam's moment estimates (Kingma & Ba 2015) for parameters (B, ...): turns each step's gradient
    into the direction m̂ / (√v̂ + ε). Zero-padded parameters (zero gradient) get a zero direction."""

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m: Optional[torch.Tensor] = None
        self.v: Optional[torch.Tensor] = None
        self.t = 0

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        if self.m is None:
            self.m, self.v = torch.zeros_like(grad), torch.zeros_like(grad)
        self.t += 1
        self.m = self.m.mul_(self.beta1).add_(grad, alpha=1.0 - self.beta1)
        self.v = self.v.mul_(self.beta2).addcmul_(grad, grad, value=1.0 - self.beta2)
        m_hat = self.m / (1.0 - self.beta1**self.t)
        v_hat = self.v / (1.0 - self.beta2**self.t)
        return m_hat / (v_hat.sqrt() + self.eps)

    def keep(self, rows: torch.Tensor) -> None:
        if self.m is not None:
            self.m, self.v = self.m[rows], self.v[rows]


def classifier_centre(classifier: Classifier) -> torch.Tensor:
    """(1, C, 1, 1): the image the network sees as all-zero input (its normalisation mean)."""
    return torch.tensor(classifier.spec.mean, device=classifier.device).view(1, -1, 1, 1)


def ascent_shape(classifier: Classifier) -> tuple[int, int, int]:
    """(C, H, W) of the images to optimise: the side the network's preprocessing resizes to.

    At that size the resize is the identity and the centre crop is exact, so every
    pixel the network sees maps to one pixel of the image (256 for 224-px crops).
    """
    c, h, w = classifier.input_shape
    side = classifier.spec.resize or max(h, w)
    return (c, side, side)


class Parameterization(Protocol):
    """What gradient ascent optimises: parameters that render (differentiably) to images.

    :class:`PixelImages` here; :class:`~.cppn_weights.CppnWeights` for the weights of evolved CPPNs.
    """

    def parameters(self) -> torch.Tensor:
        """The leaf tensor to differentiate, first dimension B (one row per image)."""

    def sizes(self) -> torch.Tensor:
        """(B,) the number of real parameters in each row (rows may be zero-padded)."""

    def render(self, params: torch.Tensor) -> torch.Tensor:
        """params -> images (B, C, H, W) in [0, 1], differentiably."""

    def update(self, grad: torch.Tensor, lr: torch.Tensor, step: int) -> None:
        """Take a step params += lr·grad (lr: (B,)), then regularise and project."""

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every image but ``rows`` (long indices) from further optimisation."""

    def state(self, rows: torch.Tensor, params: torch.Tensor) -> Optional[list[Any]]:
        """What to keep of images ``rows`` besides their pixels when they are the best so far (e.g.
        the genomes behind them), given this step's ``params``; None: the pixels are all there is."""


class PixelImages:
    """Pixel-space parameterisation: params are images minus ``centre`` (N, C, H, W); regularised each step."""

    def __init__(self, images: torch.Tensor, centre: torch.Tensor, regularizers: Regularizers) -> None:
        self.centre = centre.to(images.device)
        self.x = (images.detach().float() - self.centre).contiguous()
        self.reg = regularizers

    def parameters(self) -> torch.Tensor:
        return self.x

    def sizes(self) -> torch.Tensor:
        return torch.full((self.x.shape[0],), self.x[0].numel(), device=self.x.device)

    def render(self, params: torch.Tensor) -> torch.Tensor:
        return params + self.centre

    def update(self, grad: torch.Tensor, lr: torch.Tensor, step: int) -> None:
        x = self.x + lr.view(-1, 1, 1, 1) * grad
        x = regularize(x, grad, step, self.reg)
        self.x = (x + self.centre).clamp_(0.0, 1.0) - self.centre

    def keep(self, rows: torch.Tensor) -> None:
        self.x = self.x[rows]

    def state(self, rows: torch.Tensor, params: torch.Tensor) -> None:
        return None


def initial_images(classifier: Classifier, n: int, init: str, generator: torch.Generator,
                   shape: Optional[tuple[int, int, int]] = None) -> torch.Tensor:
    """n starting images (n, C, H, W) on the CPU: "mean" = the centre plus N(0, 1/255) noise (the
    original code's start), "uniform" = uniform noise in [0, 1]."""
    c, h, w = shape or ascent_shape(classifier)
    if init == "uniform":
        return torch.rand((n, c, h, w), generator=generator)
    if init == "mean":
        noise = torch.randn((n, c, h, w), generator=generator) / 255.0
        return (classifier_centre(classifier).cpu() + noise).clamp_(0.0, 1.0)
    raise ValueError(f"init must be mean or uniform, not {init!r}")


@dataclass
class Milestones:
    """Per image, the first step at which the target was top-1 and passed each of THRESHOLDS (-1: never)."""

    top1: np.ndarray  # (B,)
    passed: np.ndarray  # (B, len(THRESHOLDS))

    @classmethod
    def empty(cls, n: int) -> "Milestones":
        return cls(np.full(n, -1, dtype=np.int64), np.full((n, len(THRESHOLDS)), -1, dtype=np.int64))

    def update(self, rows: np.ndarray, step: int, is_top1: np.ndarray, confidence: np.ndarray) -> None:
        """Record ``step`` for images ``rows`` (their top-1 flags and target confidences) reaching a milestone."""
        self.top1[rows] = np.where(is_top1 & (self.top1[rows] < 0), step, self.top1[rows])
        reached = (confidence[:, None] >= np.asarray(THRESHOLDS)) & (self.passed[rows] < 0)
        self.passed[rows] = np.where(reached, step, self.passed[rows])

    def record(self, i: int) -> dict[str, Optional[int]]:
        """Image i's milestones as JSON: {"top1": step, "0.99": step, ...}, None where never reached."""
        steps = [self.top1[i], *self.passed[i]]
        keys = ["top1", *map(str, THRESHOLDS)]
        return {k: (int(s) if s >= 0 else None) for k, s in zip(keys, steps)}


@dataclass
class AscentResult:
    """Outcome per target image: the most confident image seen and when things happened.

    images: (B, C, H, W) on the CPU; confidence, best_step: (B,); trace: (steps + 1, B)
    best confidence so far after each step; evaluations: images scored in all; states:
    per image, what the parameterisation kept of its best version (None for pixels).
    """

    targets: np.ndarray
    images: torch.Tensor
    confidence: np.ndarray
    best_step: np.ndarray
    milestones: Milestones
    trace: np.ndarray
    steps_run: int
    evaluations: int = 0
    extra: dict = field(default_factory=dict)
    states: Optional[list[Any]] = None
    stopped: bool = False  # should_stop() ended it early: ``state`` resumes it
    state: Optional[dict[str, np.ndarray]] = None


def target_scores(
    classifier: Classifier, images: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One differentiable forward pass: the targets' logits (B,) and log-probabilities (B,), and
    (without gradient) whether each target is top-1 (B,). As :meth:`Classifier.logits` and
    :meth:`Classifier.log_probs`: with several crops, the mean logit and the log of the mean probability.
    """
    n, crops = images.shape[0], classifier.crops
    out = classifier.net(classifier.prepare(images)).float().view(crops, n, -1)
    logp = torch.logsumexp(torch.log_softmax(out, dim=-1), dim=0) - math.log(crops)
    index = targets.view(-1, 1)
    return out.mean(0).gather(1, index).squeeze(1), logp.gather(1, index).squeeze(1), logp.detach().argmax(1) == targets


class BestSoFar:
    """Keeps, per image, the most confident version seen, plus milestones and a trace of confidences."""

    def __init__(self, n: int, steps: int) -> None:
        self.confidence = np.full(n, -np.inf)
        self.best_step = np.full(n, -1, dtype=np.int64)
        self.images: list[Optional[torch.Tensor]] = [None] * n
        self.states: list[Any] = [None] * n
        self.milestones = Milestones.empty(n)
        self.trace = np.full((steps + 1, n), np.nan)
        self.evaluations = 0

    def offer(self, rows: np.ndarray, step: int, images: torch.Tensor, p: np.ndarray, top1: np.ndarray) -> np.ndarray:
        """Images ``rows`` (len R) at ``step``: images (R, C, H, W), target confidences p (R,), top-1 flags.

        Returns the positions (into ``rows``) of the images that beat their best so far.
        """
        self.evaluations += len(rows)
        self.milestones.update(rows, step, top1, p)
        better = np.flatnonzero(p > self.confidence[rows])
        if better.size:
            cpu = images[torch.as_tensor(better, device=images.device)].detach().float().cpu()
            for j, b in enumerate(better):
                self.images[rows[b]] = cpu[j]
            self.confidence[rows[better]] = p[better]
            self.best_step[rows[better]] = step
        self.trace[step] = self.confidence
        return better

    def keep_states(self, rows: np.ndarray, states: Optional[list[Any]]) -> None:
        """Store ``states`` (one per image of ``rows``) beside the best images; None: nothing to store."""
        if states is not None:
            for r, s in zip(rows.tolist(), states):
                self.states[r] = s

    def result(self, targets: np.ndarray, steps_run: int) -> AscentResult:
        return AscentResult(targets=targets, images=torch.stack(self.images), confidence=self.confidence.copy(),
                            best_step=self.best_step.copy(), milestones=self.milestones,
                            trace=self.trace[: steps_run + 1].copy(), steps_run=steps_run,
                            evaluations=self.evaluations,
                            states=None if all(s is None for s in self.states) else list(self.states))


def ascend(
    classifier: Classifier,
    targets: np.ndarray,
    param: Parameterization,
    steps: int,
    rule: StepRule = StepRule(),
    stop_at: Optional[float] = THRESHOLDS[-1],
    on_step: Optional[Callable[[int, np.ndarray], None]] = None,
    *,
    resume: Optional[dict[str, np.ndarray]] = None,
    save: Optional[Callable[[dict[str, np.ndarray]], None]] = None,
    save_every: int = 0,
    should_stop: Optional[Callable[[], bool]] = None,
) -> AscentResult:
    """Raise each image's target class by gradient ascent (``rule``) for at most ``steps`` steps.

    targets: (B,) class indices, one per image of ``param``. An image stops being
    optimised once its confidence reaches ``stop_at`` (None: never); the run ends
    early when all have. on_step(step, best confidences (B,)) is called after each step.

    Resumable: every ``save_every`` steps (0: never) ``save`` gets the whole state as numpy
    arrays; ``resume`` (such arrays, with ``param`` built afresh as at the start) continues
    from there to exactly the result of an uninterrupted run. When ``should_stop()`` turns
    true the ascent stops after the current step; the result then has ``stopped`` set and
    ``state`` holding the arrays to resume from.
    """
    targets = np.asarray(targets, dtype=np.int64)
    n = len(targets)
    best = BestSoFar(n, steps)
    adam = Adam() if rule.rate == "adam" else None
    active = np.arange(n)
    device = classifier.device
    best_params: Optional[np.ndarray] = None  # (B, P) the parameters of each best image, where states are kept
    first = 0
    if resume is not None:
        first, active, best_params = _restore(resume, param, best, adam)
    step = first
    for step in range(first, steps + 1):
        params = param.parameters().detach().requires_grad_(True)
        images = param.render(params)
        logit, logp, top1 = target_scores(classifier, images, torch.as_tensor(targets[active], device=device))
        p = logp.exp()
        p_np = p.detach().double().cpu().numpy()
        better = best.offer(active, step, images, p_np, top1.cpu().numpy())
        if better.size:
            states = param.state(torch.as_tensor(better, device=params.device), params)
            best.keep_states(active[better], states)
            if states is not None:
                rows = params.detach()[torch.as_tensor(better, device=params.device)].float().cpu().numpy()
                if best_params is None:
                    best_params = np.zeros((n, *rows.shape[1:]), dtype=np.float32)
                best_params[active[better]] = rows
        if on_step is not None:
            on_step(step, best.confidence)
        done = p_np >= stop_at if stop_at is not None else np.zeros(len(active), dtype=bool)
        if step == steps or done.all():
            break
        (grad,) = torch.autograd.grad((p if rule.objective == "prob" else logit).sum(), params)
        with torch.no_grad():
            lr = rule.lr(p.detach(), grad, param.sizes())
            param.update(adam.direction(grad) if adam else grad, lr, step)
        if done.any():
            rows = torch.as_tensor(np.flatnonzero(~done), device=params.device)
            param.keep(rows)
            if adam:
                adam.keep(rows)
            active = active[~done]
        stop = should_stop is not None and should_stop()
        if stop or (save is not None and save_every > 0 and (step + 1) % save_every == 0):
            state = _snapshot(step + 1, active, param, best, adam, best_params)
            if save is not None:
                save(state)
            if stop:
                result = best.result(targets, step)
                result.stopped, result.state = True, state
                return result
    return best.result(targets, step)


def _snapshot(next_step: int, active: np.ndarray, param: Parameterization, best: BestSoFar, adam: Optional[Adam],
              best_params: Optional[np.ndarray]) -> dict[str, np.ndarray]:
    """Everything :func:`ascend` needs to continue at ``next_step``, as numpy arrays."""
    state = {
        "step": np.asarray(next_step, dtype=np.int64), "active": active.copy(),
        "params": param.parameters().detach().cpu().numpy().copy(),
        "best.confidence": best.confidence.copy(), "best.step": best.best_step.copy(),
        "best.images": torch.stack(best.images).numpy(), "best.top1": best.milestones.top1.copy(),
        "best.passed": best.milestones.passed.copy(), "best.trace": best.trace.copy(),
        "best.evaluations": np.asarray(best.evaluations, dtype=np.int64),
    }
    if best_params is not None:
        state["best.params"] = best_params.copy()
    if adam is not None and adam.m is not None:
        state.update({"adam.m": adam.m.cpu().numpy(), "adam.v": adam.v.cpu().numpy(),
                      "adam.t": np.asarray(adam.t, dtype=np.int64)})
    return state


def _restore(state: dict[str, np.ndarray], param: Parameterization, best: BestSoFar,
             adam: Optional[Adam]) -> tuple[int, np.ndarray, Optional[np.ndarray]]:
    """Load :func:`_snapshot`'s arrays into a fresh ``param``, ``best`` and ``adam``; (next step, active rows,
    best parameters)."""
    try:
        active = np.asarray(state["active"], dtype=np.int64)
        n = len(best.confidence)
        best_params = state.get("best.params")
        if best_params is not None:  # rebuild the kept states (e.g. genomes) from their parameters
            full = torch.from_numpy(np.ascontiguousarray(best_params))
            best.keep_states(np.arange(n), param.state(torch.arange(n), full))
            best_params = best_params.copy()
        if len(active) < n:
            param.keep(torch.as_tensor(active, device=param.parameters().device))
        target = param.parameters()
        saved = torch.from_numpy(np.ascontiguousarray(state["params"]))
        if tuple(saved.shape) != tuple(target.shape):
            raise ValueError(f"parameters of shape {tuple(saved.shape)} do not fit {tuple(target.shape)}")
        with torch.no_grad():
            target.copy_(saved.to(target.device, target.dtype))
        best.confidence[:] = state["best.confidence"]
        best.best_step[:] = state["best.step"]
        best.images = list(torch.from_numpy(np.ascontiguousarray(state["best.images"])))
        best.milestones.top1[:] = state["best.top1"]
        best.milestones.passed[:] = state["best.passed"]
        best.trace[:] = state["best.trace"]
        best.evaluations = int(state["best.evaluations"])
        if adam is not None and "adam.m" in state:
            adam.m = torch.from_numpy(np.ascontiguousarray(state["adam.m"])).to(target.device)
            adam.v = torch.from_numpy(np.ascontiguousarray(state["adam.v"])).to(target.device)
            adam.t = int(state["adam.t"])
        return int(state["step"]), active, best_params
    except KeyError as err:
        raise ValueError(f"ascent state lacks {err}") from None
