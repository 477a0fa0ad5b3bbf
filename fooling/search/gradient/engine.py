"""The one gradient engine: ascent from noise, CPPN-weight tuning and perturbation attacks.

Each step renders the :class:`~.parameterizations.Parameterization` to images, scores each
image's target with the :class:`~fooling.objective.Objective` (one differentiable forward
pass), records the best version so far (:class:`~.milestones.BestSoFar`, on the device), and
moves the parameters uphill by the :class:`~.rules.StepRule` before the parameterisation
regularises and projects them. Images stop once their target is confident enough.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from ...archive import THRESHOLDS
from ...errors import FoolingError
from ...objective import Objective
from .goals import Goal
from .milestones import AscentResult, BestSoFar
from .parameterizations import Parameterization
from .rules import StepRule, Steps


def ascend(
    objective: Objective,
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
    goal: Optional[Goal] = None,
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

    goal: what to climb instead of ``rule.objective`` of the target (:mod:`.goals`: away from a
    label, Carlini-Wagner's margin plus the perturbation's size); its "confidence" is what the
    best-so-far and ``stop_at`` use.
    """
    targets = np.asarray(targets, dtype=np.int64)
    n = len(targets)
    best = BestSoFar(n, steps)
    stepper = rule.stepper()
    active = np.arange(n)
    device = objective.device
    best_params: Optional[np.ndarray] = None  # (B, P) the parameters of each best image, where states are kept
    first = 0
    if resume is not None:
        first, active, best_params = _restore(resume, param, best, stepper)
    step = first
    for step in range(first, steps + 1):
        params = param.parameters().detach().requires_grad_(True)
        images = param.render(params)
        if goal is not None:
            climbed_goal, p, top1 = goal(objective, images, params, torch.as_tensor(targets[active], device=device))
            scores = _GoalScores(top1)
        else:
            scores = objective.scores(images, torch.as_tensor(targets[active], device=device))
            p = scores.log_prob.exp()
        p_np = p.detach().double().cpu().numpy()
        if np.isnan(p_np).any():
            raise not_finite(objective)
        better = best.offer(active, step, images, p_np, scores.top1.cpu().numpy())
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
        if goal is not None:
            climbed = climbed_goal
        else:
            climbed = p if rule.objective == "prob" else scores.get(rule.objective)
        (grad,) = torch.autograd.grad(climbed.sum(), params)
        with torch.no_grad():
            param.project(stepper.move(params.detach(), grad, p.detach(), param.sizes()), grad, step)
        if done.any():
            rows = torch.as_tensor(np.flatnonzero(~done), device=params.device)
            param.keep(rows)
            stepper.keep(rows)
            if goal is not None:
                goal.keep(rows)
            active = active[~done]
        stop = should_stop is not None and should_stop()
        if stop or (save is not None and save_every > 0 and (step + 1) % save_every == 0):
            state = _snapshot(step + 1, active, param, best, stepper, best_params)
            if save is not None:
                save(state)
            if stop:
                result = best.result(targets, step)
                result.stopped, result.state = True, state
                return result
    return best.result(targets, step)


def not_finite(objective: Objective) -> FoolingError:
    """The error for NaN scores: a network that gives NaN (or +inf) logits has no slope to climb."""
    names = ", ".join(c.name for c in objective.classifiers)
    return FoolingError(f"{names} gave NaN or infinite logits; a gradient method needs finite ones")


class _GoalScores:
    """A goal's top-1 flags where the loop expects :class:`~fooling.objective.TargetScores`."""

    def __init__(self, top1: torch.Tensor) -> None:
        self.top1 = top1


def _snapshot(next_step: int, active: np.ndarray, param: Parameterization, best: BestSoFar, stepper: Steps,
              best_params: Optional[np.ndarray]) -> dict[str, np.ndarray]:
    """Everything :func:`ascend` needs to continue at ``next_step``, as numpy arrays."""
    state = {"step": np.asarray(next_step, dtype=np.int64), "active": active.copy(),
             "params": param.parameters().detach().cpu().numpy().copy(), **best.state_arrays()}
    if best_params is not None:
        state["best.params"] = best_params.copy()
    state.update(stepper.state_arrays())
    return state


def _restore(state: dict[str, np.ndarray], param: Parameterization, best: BestSoFar,
             stepper: Steps) -> tuple[int, np.ndarray, Optional[np.ndarray]]:
    """Load :func:`_snapshot`'s arrays into a fresh ``param``, ``best`` and ``stepper``; (next step, active
    rows, best parameters)."""
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
        best.load_arrays(state)
        stepper.load_arrays(state, target)
        return int(state["step"]), active, best_params
    except KeyError as err:
        raise ValueError(f"ascent state lacks {err}") from None
