"""What a run directory gives a user, in a form two runs can be compared by (tests/ is on the path)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from fooling.paths import sha256_file
from fooling.rundir.checkpoint import canonical_json, load_checkpoint

TIMING = ("elapsed_s", "evals_per_s")


def outputs(run: Path) -> dict:
    """Everything a user gets from a run, minus timings and the log: what must not depend on crashes."""
    summary = json.loads((run / "summary.json").read_text())
    for key in TIMING:
        summary.pop(key)
    with open(run / "metrics.csv", newline="") as f:
        rows = [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]
    arrays, values = load_checkpoint(run / "checkpoint")
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and p.name not in ("log.txt",))
    config = json.loads((run / "config.json").read_text())
    config.pop("out")
    return {
        "config": config, "summary": summary, "metrics": rows,
        "elites": {p.name: p.read_bytes() for p in sorted((run / "elites").iterdir())},
        "arrays": {k: v.tobytes() + str(v.dtype).encode() + str(v.shape).encode() for k, v in arrays.items()},
        "generation": values["generation"], "evaluations": values["evaluations"], "files": files,
    }


def reseal(folder, **changes):
    """Rewrite state.json with ``changes`` to its body and valid checksums (as a forger would)."""
    state = json.loads((folder / "state.json").read_text())
    body = {**state["body"], **changes}
    body["arrays_sha256"] = sha256_file(folder / body["arrays"]) if (folder / body["arrays"]).is_file() else ""
    state = {"format": state.get("format", 2), "body": body,
             "sha256": hashlib.sha256(canonical_json(body).encode()).hexdigest()}
    (folder / "state.json").write_text(json.dumps(state))

