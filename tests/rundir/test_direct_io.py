"""Blocks written past the page cache: the same bytes as a plain write, and a plain write wherever O_DIRECT cannot."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from fooling.rundir import direct_io
from fooling.rundir.direct_io import ALIGN, write_synced


def _view(size: int, seed: int = 0) -> memoryview:
    return memoryview(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)).cast("B")


@pytest.mark.parametrize("size", [ALIGN, 192 * ALIGN, 192 * ALIGN + 1, 100, 0])
def test_every_size_is_written_exactly(tmp_path, size):
    """Whole 4096-byte multiples go past the page cache (where the file system takes it), others through it."""
    view = _view(size)
    write_synced(tmp_path / "block.bin", view)
    assert (tmp_path / "block.bin").read_bytes() == bytes(view)
    write_synced(tmp_path / "block.bin", _view(size // 2, 1))  # replaced whole, never a longer file's tail left
    assert (tmp_path / "block.bin").read_bytes() == bytes(_view(size // 2, 1))


def test_a_source_that_is_not_page_aligned_is_written_from_the_thread_buffer(tmp_path):
    data = np.random.default_rng(2).integers(0, 256, 3 * ALIGN + 1, dtype=np.uint8)
    view = memoryview(data[1:]).cast("B")  # 3 * 4096 bytes at an odd address
    write_synced(tmp_path / "b.bin", view)
    assert (tmp_path / "b.bin").read_bytes() == data[1:].tobytes()


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT here")
def test_a_file_system_that_refuses_o_direct_gets_plain_writes_and_is_not_asked_again(tmp_path, monkeypatch):
    opened = []
    real_open = os.open

    def refusing(path, flags, *args):
        if flags & os.O_DIRECT:
            opened.append(path)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing)
    monkeypatch.setattr(direct_io, "_refused", set())
    for i in range(3):
        write_synced(tmp_path / f"{i}.bin", _view(2 * ALIGN, i))
        assert (tmp_path / f"{i}.bin").read_bytes() == bytes(_view(2 * ALIGN, i))
    assert len(opened) == 1


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT here")
def test_a_write_refused_after_the_open_is_done_again_the_plain_way(tmp_path, monkeypatch):
    real_write = os.write
    calls = []

    def refusing(fd, data):
        if fcntl_flags(fd) & os.O_DIRECT:
            calls.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    import fcntl

    def fcntl_flags(fd):
        return fcntl.fcntl(fd, fcntl.F_GETFL)

    monkeypatch.setattr(os, "write", refusing)
    monkeypatch.setattr(direct_io, "_refused", set())
    write_synced(tmp_path / "b.bin", _view(4 * ALIGN))
    assert (tmp_path / "b.bin").read_bytes() == bytes(_view(4 * ALIGN))
    if calls:  # this file system took the O_DIRECT open
        assert str(tmp_path) in direct_io._refused


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT here")
def test_only_whole_multiples_of_4096_bytes_are_asked_to_go_past_the_page_cache(tmp_path, monkeypatch):
    flags = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, f, *a: flags.append(f) or real_open(path, f, *a))
    monkeypatch.setattr(direct_io, "_refused", set())
    write_synced(tmp_path / "a.bin", _view(192 * ALIGN))
    write_synced(tmp_path / "b.bin", _view(192 * ALIGN - 4))
    assert flags and flags[0] & os.O_DIRECT and all(not f & os.O_DIRECT for f in flags[1:])


def test_other_errors_are_raised(tmp_path):
    with pytest.raises(OSError):
        write_synced(tmp_path / "missing" / "b.bin", _view(ALIGN))


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT here")
def test_buffers_are_kept_and_reused_one_per_concurrent_writer(tmp_path, monkeypatch):
    """Fresh buffers would be fresh pages for every checkpoint (what writing past the page cache avoids)."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(direct_io, "_buffers", [])
    monkeypatch.setattr(direct_io, "_refused", set())
    write_synced(tmp_path / "a.bin", _view(2 * ALIGN))
    if str(tmp_path) in direct_io._refused:
        pytest.skip("this file system refuses O_DIRECT")
    kept = list(direct_io._buffers)
    write_synced(tmp_path / "b.bin", _view(ALIGN, 1))  # a smaller block: the same buffer
    assert len(kept) == 1 and direct_io._buffers == kept
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: write_synced(tmp_path / f"{i}.bin", _view(2 * ALIGN, i)), range(40)))
    assert 1 <= len(direct_io._buffers) <= 4 and kept[0] in direct_io._buffers
    for i in range(40):
        assert (tmp_path / f"{i}.bin").read_bytes() == bytes(_view(2 * ALIGN, i))
