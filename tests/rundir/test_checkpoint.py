"""Checkpoints: atomic, complete, and never able to run code when loaded."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from fooling.errors import FoolingError
from run_outputs import reseal

from fooling.rundir.checkpoint import load_checkpoint, save_checkpoint


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


# --- what a damaged or forged checkpoint gets: one line, never a silent different state ------------------
def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


def _saved(tmp_path):
    save_checkpoint(tmp_path, 5, {"a": np.arange(6, dtype=np.float64), "b": np.ones((2, 3), np.float32)},
                    {"evaluations": 40, "elapsed_s": 1.5, "strategy": {"rng": {"state": 2 ** 70}}, "x": [1, "y"]})
    return load_checkpoint(tmp_path)


@pytest.mark.parametrize("state", ["[]", "null", "3", '"text"', "{}", '{"format": 2, "sha256": "x", "body": {}}',
                                   '{"format": 2, "sha256": "x", "body": []}', '{"body": {}}'])
def test_state_json_that_is_not_a_checkpoint_is_one_line(tmp_path, state):
    _saved(tmp_path)
    (tmp_path / "state.json").write_text(state)
    with pytest.raises(FoolingError, match="corrupt checkpoint") as err:
        load_checkpoint(tmp_path)
    _one_line(err)


@pytest.mark.parametrize("changes, message", [
    ({"arrays": "../../evil.npz"}, "only arrays-NNNNNNN.npz"),
    ({"arrays": "/etc/passwd"}, "only arrays-NNNNNNN.npz"),
    ({"arrays": "arrays-0000004.npz"}, "is for generation 5"),
    ({"generation": "5"}, "'generation' is missing or not an integer"),
    ({"generation": True}, "'generation' is missing or not an integer"),
    ({"evaluations": -1}, "'evaluations' is -1"),
    ({"evaluations": 2.5}, "'evaluations' is missing or not an integer"),
    ({"elapsed_s": "1"}, "'elapsed_s' is missing"),
    ({"strategy": []}, "'strategy' is missing or not an object"),
    ({"metrics": {"a": 1}}, "'metrics' is not a list"),
])
def test_forged_fields_are_refused(tmp_path, changes, message):
    _saved(tmp_path)
    reseal(tmp_path, **changes)
    fields = {"evaluations": (int,), "elapsed_s": (int, float), "strategy": (dict,)}
    with pytest.raises(FoolingError, match="corrupt checkpoint") as err:
        load_checkpoint(tmp_path, fields)
    assert message in _one_line(err)


def test_a_missing_field_is_refused(tmp_path):
    _saved(tmp_path)
    state = json.loads((tmp_path / "state.json").read_text())
    del state["body"]["arrays_sha256"]
    (tmp_path / "state.json").write_text(json.dumps(state))
    with pytest.raises(FoolingError, match="checksum"):
        load_checkpoint(tmp_path)


def test_the_arrays_file_must_be_a_complete_npz_with_the_recorded_hash(tmp_path):
    _saved(tmp_path)
    npz = tmp_path / "arrays-0000005.npz"
    good = npz.read_bytes()
    npz.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(FoolingError, match="does not match the SHA-256") as err:
        load_checkpoint(tmp_path)
    _one_line(err)
    reseal(tmp_path)  # even with a matching hash, a truncated archive is one line
    with pytest.raises(FoolingError, match="corrupt checkpoint") as err:
        load_checkpoint(tmp_path)
    _one_line(err)
    np.save(tmp_path / "plain.npy", np.arange(3))
    (tmp_path / "plain.npy").replace(npz)  # a .npy where the .npz should be
    reseal(tmp_path)
    with pytest.raises(FoolingError, match="not an .npz") as err:
        load_checkpoint(tmp_path)
    _one_line(err)
    npz.unlink()
    (tmp_path / "elsewhere.npz").write_bytes(good)
    npz.symlink_to(tmp_path / "elsewhere.npz")
    with pytest.raises(FoolingError, match="not a plain file"):
        load_checkpoint(tmp_path)


def test_single_bit_flips_of_state_json_load_identically_or_are_refused(tmp_path):
    arrays, values = _saved(tmp_path)
    state = tmp_path / "state.json"
    good = state.read_bytes()
    refused = same = 0
    bits = np.random.default_rng(1).permutation(len(good) * 8)[:1500]  # all of them: scripts/fault_injection.py
    for i in bits:
        flipped = bytearray(good)
        flipped[i // 8] ^= 1 << (i % 8)
        state.write_bytes(bytes(flipped))
        try:
            got_arrays, got_values = load_checkpoint(tmp_path)
        except FoolingError as err:
            assert "\n" not in str(err)
            refused += 1
            continue
        assert got_values == values and got_arrays.keys() == arrays.keys(), f"bit {i} loaded different values"
        same += 1
    assert refused + same == len(bits) and refused > 0.9 * len(bits)


def test_bit_flips_of_the_arrays_file_are_refused(tmp_path):
    _saved(tmp_path)
    npz = tmp_path / "arrays-0000005.npz"
    good = npz.read_bytes()
    rng = np.random.default_rng(0)
    for i in rng.choice(len(good) * 8, 300, replace=False):
        flipped = bytearray(good)
        flipped[i // 8] ^= 1 << (i % 8)
        npz.write_bytes(bytes(flipped))
        with pytest.raises(FoolingError, match="does not match the SHA-256"):
            load_checkpoint(tmp_path)


def test_legacy_checkpoints_still_load(tmp_path):
    np.savez(tmp_path / "arrays-0000003.npz", a=np.arange(3))
    (tmp_path / "state.json").write_text(json.dumps({"generation": 3, "arrays": "arrays-0000003.npz", "x": 1}))
    arrays, values = load_checkpoint(tmp_path)
    assert values["legacy"] and values["x"] == 1 and arrays["a"].tolist() == [0, 1, 2]


def test_two_processes_never_share_a_temporary_file(tmp_path):
    from fooling.rundir import atomic

    assert str(os.getpid()) in atomic.tmp_path(tmp_path / "state.json").name
    save_checkpoint(tmp_path, 1, {"a": np.arange(3)}, {})
    assert not list(tmp_path.glob(".*"))
