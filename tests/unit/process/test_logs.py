from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from runtime.process.logs import (
    MAX_LINE,
    JsonLogWriter,
    LogEntry,
    parse_rfc3339,
    read_log,
    rfc3339_nano,
)


def write(path: Path) -> JsonLogWriter:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return JsonLogWriter(fd)


def test_rfc3339_nano_round_trip() -> None:
    ns = 1_700_000_000_123_456_789
    s = rfc3339_nano(ns)
    assert s == "2023-11-14T22:13:20.123456789Z"
    assert abs(parse_rfc3339(s) - ns / 1e9) < 1e-6


def test_writer_splits_lines_and_keeps_partials(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = write(p)
    w.feed("stdout", b"one\ntw")
    w.feed("stderr", b"err\n")
    w.feed("stdout", b"o\nthree")
    w.flush("stdout")
    os.close(w.fd)
    rows = [json.loads(line) for line in p.read_text().splitlines()]
    assert [(r["stream"], r["log"]) for r in rows] == [
        ("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n"), ("stdout", "three")]
    assert all(r["time"].endswith("Z") and len(r["time"]) == 30 for r in rows)


def test_writer_splits_long_lines(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = write(p)
    w.feed("stdout", b"x" * (MAX_LINE + 10) + b"\n")
    os.close(w.fd)
    rows = [json.loads(line) for line in p.read_text().splitlines()]
    assert [len(r["log"]) for r in rows] == [MAX_LINE, 11]


async def collect(it: object) -> list[LogEntry]:
    return [e async for e in it]  # type: ignore[attr-defined]


async def test_read_all_and_tail(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = write(p)
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


async def test_follow_sees_new_lines_until_stop(tmp_path: Path) -> None:
    p = tmp_path / "c.log"
    w = write(p)
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
    assert [(e.stream, e.data) for e in got] == [
        ("stdout", "first\n"), ("stdout", "second\n"), ("stderr", "third\n")]
