"""Checkpoints: atomic, complete, and never able to run code when loaded."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import warnings

import numpy as np
import pytest
import torch
from blake3 import blake3

from fooling.errors import FoolingError
from run_outputs import reseal

from fooling.rundir import atomic, checkpoint
from fooling.rundir.checkpoint import canonical_json, load_checkpoint, remove_superseded, save_checkpoint


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
                                   '{"format": 2, "sha256": "x", "body": []}', '{"body": {}}',
                                   "[" * 100_000 + "]" * 100_000])  # nested past Python's recursion limit
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


def _refused_closing_its_files(folder, why: str) -> pytest.ExceptionInfo:
    """load_checkpoint(folder) raises FoolingError matching ``why``, and leaves no file open (no ResourceWarning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(FoolingError, match=why) as err:
            load_checkpoint(folder)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    return err


def test_the_arrays_file_must_be_a_complete_npz_with_the_recorded_hash(tmp_path):
    _saved(tmp_path)
    npz = tmp_path / "arrays-0000005.npz"
    good = npz.read_bytes()
    npz.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(FoolingError, match="does not match the SHA-256") as err:
        load_checkpoint(tmp_path)
    _one_line(err)
    reseal(tmp_path)  # even with a matching hash, a truncated archive is one line, and its file is closed
    _one_line(_refused_closing_its_files(tmp_path, "corrupt checkpoint"))
    np.save(tmp_path / "plain.npy", np.arange(3))
    (tmp_path / "plain.npy").replace(npz)  # a .npy where the .npz should be
    reseal(tmp_path)
    _one_line(_refused_closing_its_files(tmp_path, "not an .npz"))
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


# --- format 3: big arrays as content-addressed blocks of rows ----------------------------------------------
SMALL = dict(big_bytes=1024, block_bytes=256)  # arrays of >= 1 KB go to blocks of about 256 bytes


def _state(seed: int = 0) -> dict[str, np.ndarray]:
    """elites: 20 rows of 256 bytes (a block each); sigma: 40 rows of 64 bytes (4 a block); the rest small."""
    rng = np.random.default_rng(seed)
    return {"elites": rng.random((20, 64), dtype=np.float32), "sigma": rng.integers(0, 9, (40, 8)),
            "a": np.arange(6.0), "small2d": np.ones((3, 4), np.float32)}


def _blocks(folder) -> set[str]:
    return {p.name for p in (folder / "blocks").iterdir()}


def _assert_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape, key
        np.testing.assert_array_equal(got[key], want[key])


def test_big_arrays_round_trip_through_blocks_named_by_their_blake3_digest(tmp_path):
    arrays = _state()
    counts = save_checkpoint(tmp_path, 4, arrays, {"x": 1}, **SMALL)
    assert counts == {"blocks": 20 + 10, "blocks_written": 30, "blocks_hashed": 30, "blocks_cached": 0}
    got, values = load_checkpoint(tmp_path)
    _assert_equal(got, arrays)
    with np.load(tmp_path / "arrays-0000004.npz") as data:
        assert sorted(data.files) == ["a", "small2d"]
    entry = values["blocks"]["sigma"]
    assert entry["dtype"] == "<i8" and entry["shape"] == [40, 8] and entry["rows"] == 4 and len(entry["blocks"]) == 10
    for path in (tmp_path / "blocks").iterdir():  # raw bytes, named by their BLAKE3 digest
        assert path.name == blake3(path.read_bytes()).hexdigest() + ".bin"
    assert (tmp_path / "blocks" / f"{values['blocks']['elites']['blocks'][3]}.bin").read_bytes() \
        == arrays["elites"][3].tobytes()
    assert not list(tmp_path.rglob(".*tmp"))


def test_unchanged_rows_are_not_written_again_even_when_they_move(tmp_path):
    arrays = _state()
    save_checkpoint(tmp_path, 1, arrays, {}, **SMALL)
    assert save_checkpoint(tmp_path, 2, arrays, {}, **SMALL)["blocks_written"] == 0
    moved = {**arrays, "elites": arrays["elites"][np.random.default_rng(1).permutation(20)]}  # rows reordered
    assert save_checkpoint(tmp_path, 3, moved, {}, **SMALL)["blocks_written"] == 0
    changed = {k: v.copy() for k, v in moved.items()}
    changed["elites"][7] += 1
    changed["sigma"][13] += 1  # one block of 4 rows
    assert save_checkpoint(tmp_path, 4, changed, {}, **SMALL)["blocks_written"] == 2
    _assert_equal(load_checkpoint(tmp_path)[0], changed)


def test_blocks_the_new_state_does_not_name_are_removed_after_it(tmp_path):
    arrays = _state()
    save_checkpoint(tmp_path, 1, arrays, {}, **SMALL)
    before = _blocks(tmp_path)
    changed = {**arrays, "elites": arrays["elites"][:12] * 2}
    save_checkpoint(tmp_path, 2, changed, {}, **SMALL)
    got, values = load_checkpoint(tmp_path)
    _assert_equal(got, changed)
    named = {f"{h}.bin" for entry in values["blocks"].values() for h in entry["blocks"]}
    assert _blocks(tmp_path) == named and len(before - named) == 20
    # what a killed writer leaves: a temporary block and a block no state names; a resume removes them
    (tmp_path / "blocks" / f".{'0' * 64}.bin.123.tmp").write_bytes(b"partial")
    (tmp_path / "blocks" / f"{'1' * 64}.bin").write_bytes(b"orphan")
    remove_superseded(tmp_path, values)
    assert _blocks(tmp_path) == named
    remove_superseded(tmp_path, values["arrays"])  # a name only: blocks left alone
    assert _blocks(tmp_path) == named
    remove_superseded(tmp_path, None)  # no checkpoint: nothing is kept
    assert _blocks(tmp_path) == set() and not list(tmp_path.glob("arrays-*"))


def test_a_damaged_missing_or_forged_block_is_one_line(tmp_path):
    save_checkpoint(tmp_path, 5, _state(), {}, **SMALL)
    values = load_checkpoint(tmp_path)[1]
    path = tmp_path / "blocks" / f"{values['blocks']['sigma']['blocks'][2]}.bin"
    good = path.read_bytes()

    def refused(message: str) -> None:
        with pytest.raises(FoolingError, match="corrupt checkpoint") as err:
            load_checkpoint(tmp_path)
        assert message in _one_line(err)

    for bit in np.random.default_rng(0).choice(len(good) * 8, 40, replace=False):
        flipped = bytearray(good)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        refused("does not match its name")
    path.write_bytes(good[:-1])
    refused("has 255 bytes, not 256")
    path.unlink()
    refused("is missing (or not a plain file)")
    (tmp_path / "elsewhere.bin").write_bytes(good)
    path.symlink_to(tmp_path / "elsewhere.bin")
    refused("is missing (or not a plain file)")
    path.unlink()
    path.write_bytes(good)
    load_checkpoint(tmp_path)
    entry = values["blocks"]["sigma"]
    for forged, message in [
        ({**entry, "blocks": ["../../etc/passwd"] * 10}, "not 10 64-hex-digit names"),
        ({**entry, "blocks": [h.upper() for h in entry["blocks"]]}, "not 10 64-hex-digit names"),
        ({**entry, "blocks": entry["blocks"][:9]}, "not 10 64-hex-digit names"),
        ({**entry, "dtype": "|O"}, "only plain numbers"),
        ({**entry, "rows": 0}, "malformed block list"),
        ({**entry, "shape": [40 * 10 ** 9, 8]}, "not 10000000000 64-hex-digit names"),
        ({**entry, "extra": 1}, "malformed block list"),
    ]:
        reseal(tmp_path, blocks={**values["blocks"], "sigma": forged})
        refused(message)
    reseal(tmp_path, blocks={**values["blocks"], "a": values["blocks"]["sigma"]})
    refused("'a' is both in arrays-0000005.npz and in blocks/")


class Crash(Exception):
    pass


def _crash_at(monkeypatch, step: int | None) -> list[str]:
    """Count file-system steps; from step ``step`` on, each raises Crash (None: never)."""
    seen: list[str] = []

    def point(what: str) -> None:
        seen.append(what)
        if step is not None and len(seen) >= step:
            raise Crash(what)

    monkeypatch.setattr(atomic, "fault_point", point)
    return seen


def _aligned_state(seed: int = 0) -> dict[str, np.ndarray]:
    """As :func:`_state`, but elites' rows are 4096 bytes: blocks written past the page cache (O_DIRECT)."""
    return {**_state(seed), "elites": np.random.default_rng(seed).random((20, 1024), dtype=np.float32)}


ALIGNED = dict(big_bytes=1024, block_bytes=4096)  # elites a row a block (4096 bytes); sigma one block of 2,560


def test_blocks_of_whole_pages_go_past_the_page_cache_and_load_the_same(tmp_path, monkeypatch):
    from fooling.rundir import direct_io

    direct, real = [], direct_io._write_direct
    monkeypatch.setattr(direct_io, "_write_direct", lambda path, view: direct.append(real(path, view)) or direct[-1])
    arrays = _aligned_state()
    save_checkpoint(tmp_path, 1, arrays, {}, **ALIGNED)
    _assert_equal(load_checkpoint(tmp_path)[0], arrays)
    assert len(direct) == 21  # 20 elites' rows and sigma's one block: each asked
    if hasattr(os, "O_DIRECT") and str(tmp_path / "blocks") not in direct_io._refused:
        assert direct.count(True) == 20  # the rows; sigma's 2,560 bytes the plain way


@pytest.mark.parametrize("make, sizes", [(_state, SMALL), (_aligned_state, ALIGNED)], ids=["small", "aligned"])
def test_a_crash_at_every_step_of_a_checkpoint_leaves_the_old_or_the_new_one(tmp_path, monkeypatch, make, sizes):
    old = make(0)
    new = {**make(1), "elites": np.concatenate([old["elites"][10:], make(1)["elites"][:10]])}
    new["sigma"][:20] = old["sigma"][:20]
    base = tmp_path / "base"
    save_checkpoint(base, 1, old, {"x": "old"}, **sizes)
    shutil.copytree(base, tmp_path / "count")
    steps = _crash_at(monkeypatch, None)
    save_checkpoint(tmp_path / "count", 2, new, {"x": "new"}, **sizes)
    monkeypatch.undo()
    kinds = {s.split()[0] for s in steps}
    assert len(steps) > 30 and kinds == {"write", "replace", "remove"}
    outcomes = []
    for step in range(1, len(steps) + 1):
        folder = tmp_path / f"crash{step}"
        shutil.copytree(base, folder)
        _crash_at(monkeypatch, step)
        with pytest.raises(Crash):
            save_checkpoint(folder, 2, new, {"x": "new"}, **sizes)
        monkeypatch.undo()
        arrays, values = load_checkpoint(folder)
        _assert_equal(arrays, new if values["x"] == "new" else old)
        outcomes.append(values["x"])
        remove_superseded(folder, values)  # what a resume does: the same checkpoint, and nothing else left
        _assert_equal(load_checkpoint(folder)[0], arrays)
        named = {f"{h}.bin" for entry in values["blocks"].values() for h in entry["blocks"]}
        assert _blocks(folder) == named and [p.name for p in folder.glob("arrays-*")] == [values["arrays"]]
        save_checkpoint(folder, 2, new, {"x": "new"}, **sizes)  # and the checkpoint can be taken again
        _assert_equal(load_checkpoint(folder)[0], new)
        shutil.rmtree(folder)
    assert "old" in outcomes and "new" in outcomes


def test_format_2_checkpoints_still_load_and_the_next_checkpoint_replaces_them(tmp_path):
    arrays = _state()
    np.savez(tmp_path / "arrays-0000003.npz", **arrays)
    body = {"generation": 3, "arrays": "arrays-0000003.npz", "x": 1,
            "arrays_sha256": hashlib.sha256((tmp_path / "arrays-0000003.npz").read_bytes()).hexdigest()}
    state = {"format": 2, "body": body, "sha256": hashlib.sha256(canonical_json(body).encode()).hexdigest()}
    (tmp_path / "state.json").write_text(json.dumps(state))
    got, values = load_checkpoint(tmp_path)
    _assert_equal(got, arrays)
    assert values["x"] == 1 and "legacy" not in values
    save_checkpoint(tmp_path, 4, got, {}, **SMALL)
    _assert_equal(load_checkpoint(tmp_path)[0], arrays)
    assert [p.name for p in tmp_path.glob("arrays-*")] == ["arrays-0000004.npz"]
    assert json.loads((tmp_path / "state.json").read_text())["format"] == checkpoint.FORMAT


def _sha256_hex(view: memoryview) -> str:
    return hashlib.sha256(view).hexdigest()


def test_format_3_checkpoints_with_sha256_block_names_still_load_and_are_replaced(tmp_path, monkeypatch):
    arrays = _state()
    with monkeypatch.context() as patch:  # what fooling wrote before BLAKE3: format 3, blocks named by SHA-256
        patch.setattr(checkpoint, "FORMAT", 3)
        patch.setattr(checkpoint, "block_digest", _sha256_hex)
        save_checkpoint(tmp_path, 3, arrays, {"x": 1}, **SMALL)
    old = _blocks(tmp_path)
    for name in old:
        assert name == _sha256_hex(memoryview((tmp_path / "blocks" / name).read_bytes())) + ".bin"
    got, values = load_checkpoint(tmp_path)
    _assert_equal(got, arrays)
    assert values["x"] == 1 and json.loads((tmp_path / "state.json").read_text())["format"] == 3
    path = tmp_path / "blocks" / f"{values['blocks']['elites']['blocks'][0]}.bin"
    good = path.read_bytes()
    path.write_bytes(bytes([good[0] ^ 1]) + good[1:])  # checked against its SHA-256, as written
    with pytest.raises(FoolingError, match="does not match its name"):
        load_checkpoint(tmp_path)
    path.write_bytes(good)
    counts = save_checkpoint(tmp_path, 4, got, {"x": 2}, **SMALL)  # a resumed run's next checkpoint: the format now
    assert counts["blocks_written"] == 30
    assert json.loads((tmp_path / "state.json").read_text())["format"] == checkpoint.FORMAT
    got, values = load_checkpoint(tmp_path)
    _assert_equal(got, arrays)
    assert not _blocks(tmp_path) & old  # the SHA-256-named blocks are gone, every block named by BLAKE3
    assert all(p.name == blake3(p.read_bytes()).hexdigest() + ".bin" for p in (tmp_path / "blocks").iterdir())


def test_a_format_3_state_must_list_its_blocks(tmp_path):
    save_checkpoint(tmp_path, 1, {"a": np.arange(3)}, {})
    state = json.loads((tmp_path / "state.json").read_text())
    del state["body"]["blocks"]
    state["sha256"] = hashlib.sha256(canonical_json(state["body"]).encode()).hexdigest()
    (tmp_path / "state.json").write_text(json.dumps(state))
    with pytest.raises(FoolingError, match="'blocks' is missing"):
        load_checkpoint(tmp_path)


def test_blocks_are_never_written_through_a_symlinked_folder(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "blocks").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FoolingError, match="not a plain folder"):
        save_checkpoint(tmp_path / "ckpt", 1, _state(), {}, **SMALL)
    assert not list((tmp_path / "elsewhere").iterdir())


def test_a_run_checkpointing_blocks_resumes_to_the_same_files(tmp_path, monkeypatch):
    """A tiny `fool evolve` run whose archive goes to blocks (thresholds made small), stopped and resumed."""
    from fooling.rundir import checkpoint
    from fooling.run import EvolutionRun, evolve
    from fooling.settings.evolve import EvolveSettings
    from run_outputs import outputs

    monkeypatch.setattr(checkpoint, "BIG_BYTES", 256)
    monkeypatch.setattr(checkpoint, "BLOCK_BYTES", 64)
    config = dict(model="test-oracle", generations=6, population=8, seed=11, device="cpu", checkpoint_every=2,
                  checkpoint_seconds=0)
    evolve(EvolveSettings(**config, out=str(tmp_path / "straight")))
    out = tmp_path / "split"
    EvolutionRun.start(EvolveSettings(**config, out=str(out))).run(progress=False, stop_after=4)
    values = load_checkpoint(out / "checkpoint")[1]
    assert values["blocks"] and values["generation"] < 5
    (out / "checkpoint" / "blocks" / f"{'2' * 64}.bin").write_bytes(b"left by a crash")
    EvolutionRun.resume(out).run(progress=False)
    assert outputs(out) == outputs(tmp_path / "straight")
    values = load_checkpoint(out / "checkpoint")[1]
    assert _blocks(out / "checkpoint") == {f"{h}.bin" for e in values["blocks"].values() for h in e["blocks"]}


def _owned(arrays: dict) -> tuple[dict, dict]:
    """(arrays with elites and sigma as Rows of tensors with digest caches, the caches)."""
    from fooling.rowdigests import RowDigests, Rows

    caches, out = {}, dict(arrays)
    for key in ("elites", "sigma"):
        tensor = torch.from_numpy(np.ascontiguousarray(arrays[key]))
        caches[key] = RowDigests(len(tensor))
        out[key] = Rows(tensor, caches[key])
    return out, caches


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


ROWS = dict(big_bytes=1024, block_bytes=128)  # elites: 20 rows of 256 bytes; sigma: 40 rows of 64 bytes (2 a block)


def test_rows_with_digest_caches_write_the_same_files_as_arrays(tmp_path):
    arrays = _state()
    owned, caches = _owned(arrays)
    for step, settings in enumerate((SMALL, ROWS, ROWS)):  # Rows of 1 row a block use the cache; others do not
        save_checkpoint(tmp_path / f"plain{step}", 3, arrays, {"x": 1}, **settings)
        save_checkpoint(tmp_path / f"rows{step}", 3, owned, {"x": 1}, **settings)
        assert _files(tmp_path / f"rows{step}") == _files(tmp_path / f"plain{step}")
    assert caches["elites"].known(0) == blake3(arrays["elites"][0].tobytes()).hexdigest()
    assert caches["sigma"].known(0) is None  # sigma's blocks hold 2 rows: no row digest to keep


def test_a_second_save_of_an_unchanged_state_hashes_no_cached_row(tmp_path, monkeypatch):
    monkeypatch.delenv("FOOLING_VERIFY_DIGESTS", raising=False)
    arrays = _state()
    owned, caches = _owned(arrays)
    assert save_checkpoint(tmp_path, 1, owned, {}, **ROWS)["blocks_hashed"] == 20 + 20
    counts = save_checkpoint(tmp_path, 2, owned, {}, **ROWS)
    assert counts == {"blocks": 40, "blocks_written": 0, "blocks_hashed": 20, "blocks_cached": 20}  # sigma hashed
    owned["elites"].source[[3, 7]] += 1  # as an owner writes (arrays["elites"] too: the tensor is a view of it)
    caches["elites"].forget([3, 7])  # and forgets those rows
    counts = save_checkpoint(tmp_path, 3, owned, {}, **ROWS)
    assert counts == {"blocks": 40, "blocks_written": 2, "blocks_hashed": 22, "blocks_cached": 18}
    _assert_equal(load_checkpoint(tmp_path)[0], arrays)
    # a cached row whose block is gone (another folder, a block removed) is read and hashed again
    (tmp_path / "blocks" / f"{caches['elites'].known(5)}.bin").unlink()
    assert save_checkpoint(tmp_path, 4, owned, {}, **ROWS)["blocks_hashed"] == 21
    _assert_equal(load_checkpoint(tmp_path)[0], arrays)


def test_digests_are_cached_only_once_the_state_naming_them_is_durable(tmp_path, monkeypatch):
    arrays = _state()
    owned, caches = _owned(arrays)
    steps = _crash_at(monkeypatch, None)
    save_checkpoint(tmp_path / "count", 1, arrays, {}, **ROWS)
    monkeypatch.undo()
    state = steps.index(next(s for s in steps if s.endswith("state.json"))) + 1  # its first step: 1, 2, ...
    assert steps[state].startswith("replace") and steps[state].endswith("state.json")
    for step in (1, state // 2, state - 1, state, state + 1):  # blocks, npz, state.json written but not in place
        _crash_at(monkeypatch, step)
        with pytest.raises(Crash):
            save_checkpoint(tmp_path / f"crash{step}", 1, owned, {}, **ROWS)
        monkeypatch.undo()
        assert caches["elites"].known_many(np.arange(20)) == [None] * 20
    save_checkpoint(tmp_path / "done", 1, owned, {}, **ROWS)
    assert None not in caches["elites"].known_many(np.arange(20))


def test_verification_catches_a_digest_that_a_write_did_not_forget(tmp_path, monkeypatch):
    arrays = _state()
    owned, caches = _owned(arrays)
    save_checkpoint(tmp_path, 1, owned, {}, **ROWS)
    owned["elites"].source[4] += 1  # a write that does not forget row 4
    monkeypatch.setenv("FOOLING_VERIFY_DIGESTS", "1")
    with pytest.raises(RuntimeError, match="row 4 of 'elites' changed since its digest was cached"):
        save_checkpoint(tmp_path, 2, owned, {}, **ROWS)
    monkeypatch.setenv("FOOLING_VERIFY_DIGESTS", "0")  # what the cache would otherwise do: name the old block
    save_checkpoint(tmp_path, 2, owned, {}, **ROWS)
    assert not np.array_equal(load_checkpoint(tmp_path)[0]["elites"][4], owned["elites"].source[4].numpy())


def test_a_detached_checkpoint_writes_the_state_it_was_prepared_with(tmp_path):
    """Prepared within ``detach_bytes`` it holds copies: the owners may write their arrays while it commits (in
    another thread, in a run); the digests of rows written since are not cached. Above the limit nothing is
    copied, and a commit writes the arrays as they are then."""
    from fooling.rundir.checkpoint import prepare_checkpoint

    arrays = _state()
    owned, caches = _owned(arrays)
    values = {"x": [1, 2]}
    prepared = prepare_checkpoint(tmp_path / "detached", 3, owned, values, **ROWS, detach_bytes=1 << 20)
    assert prepared.detached
    want = {k: np.array(v, copy=True) for k, v in arrays.items()}
    owned["elites"].source[5] += 1  # the owner writes two rows (and forgets them, as owners do) and a small array
    caches["elites"].forget([5])
    owned["elites"].source[6] += 1
    caches["elites"].forget([6])
    owned["a"][0] += 100
    values["x"].append(3)
    prepared.commit()
    prepared.remember()
    got, body = load_checkpoint(tmp_path / "detached")
    _assert_equal(got, want)
    assert body["x"] == [1, 2]
    known = caches["elites"].known_many(np.arange(20))
    assert known[5] is None and known[6] is None and known[4] == blake3(want["elites"][4].tobytes()).hexdigest()

    owned, _ = _owned(_state())
    prepared = prepare_checkpoint(tmp_path / "attached", 3, owned, {}, **ROWS, detach_bytes=1000)
    assert not prepared.detached  # 5 kB of rows to read: above the limit, so read when committed
    owned["elites"].source[5] += 1
    prepared.commit()
    assert np.array_equal(load_checkpoint(tmp_path / "attached")[0]["elites"][5], owned["elites"].source[5].numpy())


IMAGE = (1, 8, 8)  # elites: 20 image rows of 64 float32 values


def _image_rows(seed: int = 0) -> tuple[np.ndarray, "object", "object"]:
    """(elites (20, 64): rows 0-15 in 2 x 2 squares, 16-17 in 4 x 4, 18 noise, 19 flat; their Rows (images), cache)."""
    from fooling.rowdigests import RowDigests, Rows

    rng = np.random.default_rng(seed)
    squares = [np.repeat(np.repeat(rng.random((1, 8 // f, 8 // f), dtype=np.float32), f, 1), f, 2).reshape(-1)
               for f in [2] * 16 + [4] * 2]
    elites = np.stack([*squares, rng.random(64, dtype=np.float32), np.full(64, 0.5, np.float32)])
    cache = RowDigests(20)
    return elites, Rows(torch.from_numpy(elites), cache, image=IMAGE), cache


def test_image_rows_in_squares_are_stored_coarser_and_load_bit_for_bit(tmp_path):
    elites, rows, cache = _image_rows()
    counts = save_checkpoint(tmp_path, 1, {"elites": rows, "a": np.arange(3)}, {}, **ROWS)
    assert counts == {"blocks": 20, "blocks_written": 20, "blocks_hashed": 20, "blocks_cached": 0}
    state = json.loads((tmp_path / "state.json").read_text())
    entry = state["body"]["blocks"]["elites"]
    assert state["format"] == checkpoint.FORMAT == 5
    assert entry["image"] == list(IMAGE) and entry["factors"] == [2] * 16 + [4] * 2 + [1, 8]
    sizes = [(tmp_path / "blocks" / f"{h}.bin").stat().st_size for h in entry["blocks"]]
    assert sizes == [64] * 16 + [16] * 2 + [256, 4]  # a quarter, a sixteenth, whole, one value
    got = load_checkpoint(tmp_path)[0]["elites"]
    assert got.dtype == np.float32 and got.tobytes() == elites.tobytes()
    assert cache.known(0).endswith("/2") and cache.known(18) == entry["blocks"][18]  # the factor kept with it


def test_cached_coarse_rows_are_neither_read_nor_written_again(tmp_path, monkeypatch):
    monkeypatch.delenv("FOOLING_VERIFY_DIGESTS", raising=False)
    elites, rows, cache = _image_rows()
    save_checkpoint(tmp_path, 1, {"elites": rows}, {}, **ROWS)
    assert save_checkpoint(tmp_path, 2, {"elites": rows}, {}, **ROWS) == {
        "blocks": 20, "blocks_written": 0, "blocks_hashed": 0, "blocks_cached": 20}
    rows.source[3] = torch.from_numpy(np.random.default_rng(5).random(64, dtype=np.float32))  # squares no longer
    rows.source[4] += 1  # still squares, new values
    cache.forget([3, 4])
    counts = save_checkpoint(tmp_path, 3, {"elites": rows}, {}, **ROWS)
    assert counts == {"blocks": 20, "blocks_written": 2, "blocks_hashed": 2, "blocks_cached": 18}
    entry = load_checkpoint(tmp_path)[1]["blocks"]["elites"]
    assert entry["factors"][3:5] == [1, 2]
    assert load_checkpoint(tmp_path)[0]["elites"].tobytes() == rows.source.numpy().tobytes()


def test_verification_catches_a_stale_digest_of_a_coarse_row(tmp_path, monkeypatch):
    monkeypatch.setenv("FOOLING_VERIFY_DIGESTS", "1")
    for change in ("values", "squares"):
        folder = tmp_path / change
        _, rows, _ = _image_rows()
        save_checkpoint(folder, 1, {"elites": rows}, {}, **ROWS)
        save_checkpoint(folder, 2, {"elites": rows}, {}, **ROWS)  # the trusted rows check out
        if change == "values":
            rows.source[2] += 1  # squares still, other values: not forgotten
        else:
            rows.source[2, 0] += 1  # one pixel: no squares any more
        with pytest.raises(RuntimeError, match="row 2 of 'elites' changed since its digest was cached"):
            save_checkpoint(folder, 3, {"elites": rows}, {}, **ROWS)


def test_a_detached_checkpoint_coarsens_its_copies(tmp_path):
    from fooling.rundir.checkpoint import prepare_checkpoint

    elites, rows, cache = _image_rows()
    elites = elites.copy()  # the rows' tensor shares the array's memory
    prepared = prepare_checkpoint(tmp_path, 1, {"elites": rows}, {}, **ROWS, detach_bytes=1 << 20)
    assert prepared.detached
    rows.source.zero_()  # the owner goes on writing (and forgets the rows)
    cache.forget()
    prepared.commit()
    prepared.remember()
    assert load_checkpoint(tmp_path)[0]["elites"].tobytes() == elites.tobytes()
    assert cache.known_many(np.arange(20)) == [None] * 20


@pytest.mark.parametrize("edit, why", [
    (lambda e: e.update(factors=e["factors"][:-1]), "coarse rows that do not fit"),
    (lambda e: e["factors"].__setitem__(0, 3), "coarse rows that do not fit"),
    (lambda e: e["factors"].__setitem__(0, 16), "coarse rows that do not fit"),  # wider than the image
    (lambda e: e["factors"].__setitem__(0, True), "coarse rows that do not fit"),
    (lambda e: e.update(image=[1, 4, 16]), "coarse rows that do not fit"),  # 64 values, but other squares
    (lambda e: e.update(image=[2, 8, 8]), "coarse rows that do not fit"),
    (lambda e: e.update(image=[1, 8, 8, 1]), "coarse rows that do not fit"),
    (lambda e: e.pop("factors"), "malformed block list"),
    (lambda e: e["factors"].__setitem__(0, 1), r"has 64 bytes, not 256"),  # a coarse block read as whole
    (lambda e: e.update(rows=2), "malformed block list|not 10"),
])
def test_a_damaged_coarse_manifest_is_one_line_error(tmp_path, edit, why):
    _, rows, _ = _image_rows()
    save_checkpoint(tmp_path, 1, {"elites": rows}, {}, **ROWS)
    blocks = json.loads((tmp_path / "state.json").read_text())["body"]["blocks"]
    edit(blocks["elites"])
    reseal(tmp_path, blocks=blocks)
    with pytest.raises(FoolingError, match=why):
        load_checkpoint(tmp_path)


def test_a_damaged_coarse_block_is_refused(tmp_path):
    _, rows, _ = _image_rows()
    save_checkpoint(tmp_path, 1, {"elites": rows}, {}, **ROWS)
    digest = load_checkpoint(tmp_path)[1]["blocks"]["elites"]["blocks"][0]
    path = tmp_path / "blocks" / f"{digest}.bin"
    good = path.read_bytes()
    path.write_bytes(bytes([good[0] ^ 1]) + good[1:])
    with pytest.raises(FoolingError, match="does not match its name"):
        load_checkpoint(tmp_path)


def test_format_4_checkpoints_with_whole_rows_still_load(tmp_path, monkeypatch):
    """What fooling wrote before coarse rows: format 4, every row whole; its next checkpoint stores them coarser."""
    elites, rows, cache = _image_rows()
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "FORMAT", 4)
        patch.setattr(checkpoint, "coarsen", lambda row, image: (row, 1))
        save_checkpoint(tmp_path, 1, {"elites": rows}, {}, **ROWS)
    assert json.loads((tmp_path / "state.json").read_text())["format"] == 4
    assert "factors" not in load_checkpoint(tmp_path)[1]["blocks"]["elites"]
    assert load_checkpoint(tmp_path)[0]["elites"].tobytes() == elites.tobytes()
    cache.forget()  # a resumed run's caches start empty
    assert save_checkpoint(tmp_path, 2, {"elites": rows}, {}, **ROWS)["blocks_written"] == 19  # the noise row stays
    assert load_checkpoint(tmp_path)[1]["blocks"]["elites"]["factors"][:2] == [2, 2]
    assert load_checkpoint(tmp_path)[0]["elites"].tobytes() == elites.tobytes()


@pytest.mark.cuda
def test_image_rows_on_a_gpu_are_stored_coarser_and_load_bit_for_bit(tmp_path):
    from fooling.rowdigests import RowDigests, Rows

    elites, _, _ = _image_rows()
    cache = RowDigests(20, torch.device("cuda"))
    rows = Rows(torch.from_numpy(elites).cuda(), cache, image=IMAGE)
    save_checkpoint(tmp_path, 1, {"elites": rows}, {}, **ROWS)
    assert load_checkpoint(tmp_path)[1]["blocks"]["elites"]["factors"][:2] == [2, 2]
    assert load_checkpoint(tmp_path)[0]["elites"].tobytes() == elites.tobytes()
    assert save_checkpoint(tmp_path, 2, {"elites": rows}, {}, **ROWS)["blocks_cached"] == 20
