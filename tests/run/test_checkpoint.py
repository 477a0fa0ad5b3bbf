"""Checkpoints: atomic, complete, and never able to run code when loaded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fooling.errors import FoolingError
from fooling.run.checkpoint import canonical_json, load_checkpoint, save_checkpoint, sha256_file


def reseal(folder, **changes):
    """Rewrite state.json with ``changes`` to its body and valid checksums (as a forger would)."""
    state = json.loads((folder / "state.json").read_text())
    body = {**state["body"], **changes}
    body["arrays_sha256"] = sha256_file(folder / body["arrays"]) if (folder / body["arrays"]).is_file() else ""
    state = {"format": 2, "body": body, "sha256": __import__("hashlib").sha256(canonical_json(body).encode()).hexdigest()}
    (folder / "state.json").write_text(json.dumps(state))


def test_round_trip_and_old_arrays_removed(tmp_path):
    save_checkpoint(tmp_path, 3, {"a": np.arange(4)}, {"x": 1})
    save_checkpoint(tmp_path, 7, {"a": np.arange(5)}, {"x": 2})
    arrays, values = load_checkpoint(tmp_path)
    assert values["generation"] == 7 and values["x"] == 2
    np.testing.assert_array_equal(arrays["a"], np.arange(5))
    assert [p.name for p in tmp_path.glob("arrays-*.npz")] == ["arrays-0000007.npz"]
    assert not list(tmp_path.glob(".*tmp"))


def test_crash_between_arrays_and_state_keeps_the_previous_checkpoint(tmp_path):
    save_checkpoint(tmp_path, 3, {"a": np.arange(4)}, {"x": 1})
    np.savez(tmp_path / "arrays-0000009.npz", a=np.zeros(2))  # written, but state.json never replaced
    arrays, values = load_checkpoint(tmp_path)
    assert values["generation"] == 3
    np.testing.assert_array_equal(arrays["a"], np.arange(4))


def test_pickled_objects_are_refused(tmp_path):
    save_checkpoint(tmp_path, 1, {"a": np.arange(3)}, {})
    name = json.loads((tmp_path / "state.json").read_text())["body"]["arrays"]
    np.savez(tmp_path / name, a=np.array([{"evil": 1}], dtype=object))
    reseal(tmp_path)
    with pytest.raises(FoolingError, match="corrupt checkpoint"):
        load_checkpoint(tmp_path)


def test_missing_and_garbled_state(tmp_path):
    with pytest.raises(FoolingError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(FoolingError, match="corrupt checkpoint"):
        load_checkpoint(tmp_path)
