"""The json-file log: the shim's writer (byte-exact entries, 16 KiB pieces, rotation and
compression as Docker's json-file) and the engine's reader (rotated files in order, tail,
since/until, follow through rotations)."""
from __future__ import annotations

import asyncio
import gzip
import json
import os
import time
from pathlib import Path

import pytest

from runtime.process.logread import LogEntry, read_log, rotated_files
from runtime.process.logs import (
    DEFAULT_MAX_FILE,
    DEFAULT_MAX_SIZE,
    MAX_LINE,
    JsonLogWriter,
    parse_rfc3339,
    rfc3339_nano,
    rotation,
)


def test_rfc3339_nano_round_trip() -> None:
    ns = 1_700_000_000_123_456_789
    s = rfc3339_nano(ns)
    assert s == "2023-11-14T22:13:20.123456789Z"
    assert abs(parse_rfc3339(s) - ns / 1e9) < 1e-6


def test_writer_splits_lines_and_keeps_partials(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = JsonLogWriter(str(p))
    w.feed("stdout", b"one\ntw")
    w.feed("stderr", b"err\n")
    w.feed("stdout", b"o\nthree")
    w.close()  # what is still open is written as it is
    rows = [json.loads(line) for line in p.read_text().splitlines()]
    assert [(r["stream"], r["log"]) for r in rows] == [
        ("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n"), ("stdout", "three")]
    assert all(r["time"].endswith("Z") and len(r["time"]) == 30 for r in rows)


def test_writer_splits_long_lines(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = JsonLogWriter(str(p))
    w.feed("stdout", b"x" * (2 * MAX_LINE + 10) + b"\n")
    w.close()
    rows = [json.loads(line) for line in p.read_text().splitlines()]
    assert [len(r["log"]) for r in rows] == [MAX_LINE, MAX_LINE, 11]


async def collect(it: object) -> list[LogEntry]:
    return [e async for e in it]  # type: ignore[attr-defined]


async def test_bytes_that_are_not_utf8_come_back_exactly(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    blob = bytes(range(256)) * 20 + "é€\n".encode()
    w = JsonLogWriter(str(p))
    w.feed("stdout", blob)
    w.close()
    for line in p.read_bytes().splitlines():
        json.loads(line)  # every entry is still valid JSON
    got = b"".join(e.data.encode("utf-8", "surrogateescape")
                   for e in await collect(read_log(str(p))))
    assert got == blob


async def test_read_all_and_tail(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = JsonLogWriter(str(p))
    for i in range(10):
        w.feed("stdout" if i % 2 else "stderr", f"line {i}\n".encode())
    entries = await collect(read_log(str(p)))
    assert [e.data for e in entries] == [f"line {i}\n" for i in range(10)]
    assert entries[0].stream == "stderr" and entries[1].stream == "stdout"
    assert abs(entries[0].time - time.time()) < 60
    tail = await collect(read_log(str(p), tail=3))
    assert [e.data for e in tail] == ["line 7\n", "line 8\n", "line 9\n"]
    assert await collect(read_log(str(p), tail=0)) == []
    assert await collect(read_log(str(tmp_path / "missing.log"))) == []
    w.close()


def test_rotation_defaults() -> None:
    assert rotation("json-file", None, None, None) == (DEFAULT_MAX_SIZE, DEFAULT_MAX_FILE, False)
    assert rotation("json-file", 1000, None, None) == (1000, 1, False)  # Docker: one file
    assert rotation("json-file", None, 3, None) == (DEFAULT_MAX_SIZE, 3, False)
    assert rotation("json-file", 1000, 4, True) == (1000, 4, True)
    assert rotation("local", None, None, None) == (20 * 1024 * 1024, 5, True)
    assert rotation("none", None, None, None) == (0, 1, False)


def _write_lines(w: JsonLogWriter, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        w.feed("stdout", f"line {i:05d} {'x' * 60}\n".encode())


@pytest.mark.parametrize("compress", [False, True])
async def test_rotation_bounds_the_files_and_reads_in_order(tmp_path: Path, compress: bool) -> None:
    p = tmp_path / "c.log"
    w = JsonLogWriter(str(p), max_size=10_000, max_files=3, compress=compress)
    _write_lines(w, 2000)
    w.close()
    names = sorted(os.listdir(tmp_path))
    suffix = ".gz" if compress else ""
    assert names == ["c.log", f"c.log.1{suffix}", f"c.log.2{suffix}"]
    assert rotated_files(str(p)) == [str(p) + f".2{suffix}", str(p) + f".1{suffix}"]
    for name in names:
        size = (len(gzip.decompress((tmp_path / name).read_bytes())) if name.endswith(".gz")
                else (tmp_path / name).stat().st_size)
        assert size <= 10_000 + 200  # max-size, overshot by at most one write
    got = [int(e.data.split()[1]) for e in await collect(read_log(str(p)))]
    assert got == list(range(got[0], 2000))  # the newest lines, in order, none repeated
    assert 2000 - got[0] >= 2 * 10_000 // 150
    tail = [int(e.data.split()[1]) for e in await collect(read_log(str(p), tail=150))]
    assert tail == list(range(1850, 2000))  # reaches into the rotated files (~70 a file)


async def test_one_file_starts_over_when_full(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = JsonLogWriter(str(p), max_size=5_000, max_files=1)
    _write_lines(w, 500)
    w.close()
    assert os.listdir(tmp_path) == ["c.log"] and p.stat().st_size <= 5_200


async def test_since_and_until(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    rows = [{"log": f"t{t}\n", "stream": "stdout", "time": rfc3339_nano(t * 10**9)}
            for t in (100, 200, 300, 400)]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = await collect(read_log(str(p), since=200, until=300))
    assert [e.data for e in got] == ["t200\n", "t300\n"]
    got = await collect(read_log(str(p), since=250))
    assert [e.data for e in got] == ["t300\n", "t400\n"]


async def test_follow_sees_new_lines_until_stop(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = JsonLogWriter(str(p))
    w.feed("stdout", b"first\n")
    done = False

    async def producer() -> None:
        nonlocal done
        await asyncio.sleep(0.05)
        w.feed("stdout", b"second\n")
        await asyncio.sleep(0.05)
        w.feed("stderr", b"third\n")
        done = True

    task = asyncio.create_task(producer())
    got = await asyncio.wait_for(
        collect(read_log(str(p), tail=1, follow=True, stop=lambda: done, poll=0.01)), 5)
    await task
    w.close()
    assert [(e.stream, e.data) for e in got] == [
        ("stdout", "first\n"), ("stdout", "second\n"), ("stderr", "third\n")]


async def test_follow_with_tail_zero_shows_only_new_lines(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = JsonLogWriter(str(p))
    _write_lines(w, 5)
    done = False

    async def producer() -> None:
        nonlocal done
        await asyncio.sleep(0.1)
        w.feed("stdout", b"new\n")
        done = True

    task = asyncio.create_task(producer())
    got = await asyncio.wait_for(
        collect(read_log(str(p), tail=0, follow=True, stop=lambda: done)), 5)
    await task
    w.close()
    assert [e.data for e in got] == ["new\n"]


@pytest.mark.parametrize("compress,slow", [(False, False), (True, False), (False, True),
                                           (True, True)])
async def test_follow_goes_through_rotations(tmp_path: Path, compress: bool, slow: bool) -> None:
    """No line lost or repeated while the file is rotated (and compressed) under the reader,
    also when the reader falls behind by several rotations."""
    p = tmp_path / "c.log"
    # enough files that nothing is deleted before the slow reader gets to it
    w = JsonLogWriter(str(p), max_size=4_000, max_files=30, compress=compress)
    done = False

    async def producer() -> None:
        nonlocal done
        await asyncio.sleep(0.2)  # the reader is at the end of the file
        for i in range(0, 600, 20):
            _write_lines(w, 20, i)
            await asyncio.sleep(0.005)
        done = True

    async def consume() -> list[int]:
        got = []
        async for e in read_log(str(p), tail=0, follow=True, stop=lambda: done):
            got.append(int(e.data.split()[1]))
            if slow and len(got) % 50 == 0:
                await asyncio.sleep(0.1)  # meanwhile the writer rotates a few times
        return got

    task = asyncio.create_task(producer())
    got = await asyncio.wait_for(consume(), 30)
    await task
    w.close()
    assert got == list(range(600))  # ~10 rotations, no gap, no repeat


async def test_follow_wakes_up_within_milliseconds(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = JsonLogWriter(str(p))
    seen: list[float] = []
    done = False

    async def reader() -> None:
        async for _ in read_log(str(p), tail=0, follow=True, stop=lambda: done):
            seen.append(time.monotonic())

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.2)
    delays = []
    for _ in range(20):
        t0 = time.monotonic()
        w.feed("stdout", b"ping\n")
        while len(seen) < len(delays) + 1:
            await asyncio.sleep(0.001)
        delays.append(seen[-1] - t0)
    done = True
    await asyncio.wait_for(task, 5)
    w.close()
    delays.sort()
    assert delays[len(delays) // 2] < 0.05, delays  # inotify, not a 0.1 s poll


async def test_one_write_larger_than_max_size_is_split_across_files(tmp_path: Path) -> None:
    """The shim reads 64 KiB at a time: `seq 1 3000` is one batch of 3000 entries, which must
    not land in one file past max-size (Docker checks before each entry)."""
    p = tmp_path / "c.log"
    w = JsonLogWriter(str(p), max_size=20_000, max_files=4)
    w.feed("stdout", "".join(f"{i}\n" for i in range(1, 3001)).encode())
    w.close()
    sizes = {name: (tmp_path / name).stat().st_size for name in os.listdir(tmp_path)}
    assert sorted(sizes) == ["c.log", "c.log.1", "c.log.2", "c.log.3"]
    assert all(size < 20_000 + 100 for size in sizes.values()), sizes
    entries = await collect(read_log(str(p)))
    nums = [int(e.data) for e in entries]
    assert nums == list(range(nums[0], 3001))
    times = sorted({e.time for e in entries})
    assert len(times) == len(sizes)  # a time per file: a reader meeting a file twice tells
    # them apart
