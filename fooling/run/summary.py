"""summary.json's one schema, shared by ``fool evolve`` and ``fool ascend`` (see DESIGN.md, "Run directory").

:func:`run_summary` builds the keys every run has; :func:`class_record` the keys every class entry has.
Each command adds its own keys (``extra``) without changing the common ones.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

FINISHED = ("budget", "until")  # the stop reasons of a run that reached its end


def class_record(index: int, label: str, confidence: Optional[float], generation_found: Optional[int],
                 passed: Mapping[str, Optional[int]], **extra: Any) -> dict[str, Any]:
    """One entry of summary.json's "classes": index, label, confidence, generation_found (the generation or
    step of the best image), passed ({threshold: generation}), then ``extra``."""
    return {"index": int(index), "label": label, "confidence": confidence, "generation_found": generation_found,
            "passed": dict(passed), **extra}


def run_summary(*, generation: int, evaluations: int, elapsed_s: float, models: Sequence[str], encoding: str,
                strategy: str, preset: Optional[str], seed: Any, coverage: float, median_confidence: float,
                max_confidence: float, stop_reason: Optional[str], classes: list[dict[str, Any]],
                extra: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """summary.json: generation (or step), evaluations, elapsed_s, evals_per_s, model(s), encoding, strategy,
    preset, seed, coverage, median/max confidence, ``extra``, stop_reason, finished, classes."""
    return {
        "generation": generation, "evaluations": evaluations, "elapsed_s": round(elapsed_s, 3),
        "evals_per_s": round(evaluations / elapsed_s, 1) if elapsed_s > 0 else None,
        "model": models[0], "models": list(models), "encoding": encoding, "strategy": strategy, "preset": preset,
        "seed": seed, "coverage": coverage, "median_confidence": median_confidence,
        "max_confidence": max_confidence, **(extra or {}), "stop_reason": stop_reason,
        "finished": stop_reason in FINISHED, "classes": classes,
    }
