"""The run directories under a folder, one record each (``fool runs``): what ran, how far, and its state.

State: ``running`` while a process holds the run's lock (:func:`fooling.rundir.lock.lock_holder`), else from
summary.json's stop_reason: ``finished`` (budget or until), ``error``, or ``interrupted`` (a stop signal, a
pause, or a process killed with no chance to say why: stop_reason null, or no summary.json yet).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from ..errors import FoolingError
from ..rundir.lock import lock_holder
from ..rundir.reader import read_json_object

TOP = 0.9999  # the "classes >= 99.99%" column
SKIP = {"elites", "snapshots", "checkpoint", "tensorboard"}  # a run's own folders: never runs themselves


def find_runs(folder: str | Path) -> list[Path]:
    """Every run directory (a folder with config.json) in ``folder`` or below it, sorted; ``folder`` itself if
    it is one."""
    root = Path(folder)
    if not root.is_dir():
        raise FoolingError(f"{folder} is not a folder")
    found = []
    for here, dirs, files in os.walk(root):
        if "config.json" in files:
            found.append(Path(here))
            dirs[:] = []  # a run's subfolders are its own
        else:
            dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
    return sorted(found)


def run_record(path: Path, root: Optional[Path] = None) -> dict[str, Any]:
    """One run's row: run, model, encoding, strategy, preset, seed, generation, budget, evaluations,
    classes, classes_top (at >= 99.99%), state, pid (the live run's process, else None)."""
    config = read_json_object(path / "config.json") or {}
    summary = read_json_object(path / "summary.json")
    info = config.get("run") if isinstance(config.get("run"), dict) else {}
    command = info.get("command", "evolve")
    pid = lock_holder(path)
    if pid is not None:
        state = "running"
    elif summary is None:
        state = "interrupted" if config else "unreadable"
    else:
        reason = summary.get("stop_reason")
        state = "finished" if summary.get("finished") or reason in ("budget", "until") else \
            "error" if reason == "error" else "interrupted"
    listed = (summary or {}).get("classes")
    classes = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
    confidences = [c.get("confidence") for c in classes]
    models = config.get("models") or ([config["model"]] if config.get("model") else (summary or {}).get("models"))
    budget = config.get("generations") if command != "ascend" else config.get("steps")
    return {
        "run": str(path.relative_to(root)) if root is not None and path != root else str(path),
        "command": command,
        "model": "+".join(str(m) for m in models) if isinstance(models, list) else (summary or {}).get("model"),
        "encoding": config.get("encoding", (summary or {}).get("encoding")),
        "strategy": config.get("strategy", (summary or {}).get("strategy")),
        "preset": config.get("preset"),
        "seed": config.get("seed", (summary or {}).get("seed")),
        "generation": (summary or {}).get("generation"),
        "budget": budget,
        "evaluations": (summary or {}).get("evaluations"),
        "classes": len(classes) if summary is not None else None,
        "classes_top": sum(isinstance(c, (int, float)) and c >= TOP for c in confidences) if summary else None,
        "state": state,
        "pid": pid or None,
    }


def list_runs(folder: str | Path) -> list[dict[str, Any]]:
    """:func:`run_record` of every run under ``folder``."""
    root = Path(folder)
    return [run_record(p, root) for p in find_runs(root)]


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def format_table(records: list[dict[str, Any]]) -> str:
    """The records as an aligned text table (one header line, one line per run)."""
    header = ["RUN", "MODEL", "ENCODING", "STRATEGY", "SEED", "GEN/BUDGET", "EVALS", ">=99.99%", "STATE"]
    lines = [header]
    for r in records:
        strategy = _cell(r["strategy"]) + (f" ({r['preset']})" if r.get("preset") else "")
        generation = f"{_cell(r['generation'])}/{_cell(r['budget'])}"
        evals = f"{r['evaluations']:,}" if isinstance(r["evaluations"], int) else _cell(r["evaluations"])
        top = f"{r['classes_top']}/{r['classes']}" if r["classes"] is not None else "-"
        state = r["state"] + (f" (pid {r['pid']})" if r.get("pid") else "")
        lines.append([r["run"], _cell(r["model"]), _cell(r["encoding"]), strategy, _cell(r["seed"]), generation,
                      evals, top, state])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    right = {4, 5, 6, 7}
    return "\n".join("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     .rstrip() for row in lines)
