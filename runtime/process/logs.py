"""Container logs in Docker's json-file format: one JSON object per line,

    {"log": "hello\\n", "stream": "stdout", "time": "2024-01-02T03:04:05.123456789Z"}

`JsonLogWriter` is used by the shim (sync, small); `read_log` by the engine (async, tail and
follow by polling the file).
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_LINE = 16 * 1024  # Docker splits longer lines into 16 KiB pieces


def rfc3339_nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


def parse_rfc3339(ts: str) -> float:
    """'2024-01-02T03:04:05.123456789Z' -> epoch seconds (float)."""
    base, _, frac = ts.rstrip("Z").partition(".")
    dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return dt.timestamp() + (int(frac) / 10 ** len(frac) if frac else 0.0)


class JsonLogWriter:
    """Feed raw bytes per stream; complete lines are written as JSON lines to `fd`."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> None:
        buf = self.partial[stream] + data
        out = []
        while True:
            nl = buf.find(b"\n")
            if nl < 0 or nl >= MAX_LINE:
                if len(buf) >= MAX_LINE:
                    out.append(buf[:MAX_LINE])
                    buf = buf[MAX_LINE:]
                    continue
                break
            out.append(buf[: nl + 1])
            buf = buf[nl + 1:]
        self.partial[stream] = buf
        if out:
            self._write(stream, out)

    def flush(self, stream: str) -> None:
        if self.partial[stream]:
            self._write(stream, [self.partial[stream]])
            self.partial[stream] = b""

    def _write(self, stream: str, pieces: list[bytes]) -> None:
        ts = rfc3339_nano()
        text = "".join(
            json.dumps({"log": p.decode("utf-8", "replace"), "stream": stream, "time": ts},
                       ensure_ascii=False) + "\n"
            for p in pieces)
        data = text.encode()
        while data:
            n = os.write(self.fd, data)
            data = data[n:]


@dataclass(frozen=True)
class LogEntry:
    stream: str  # "stdout" | "stderr"
    time: float  # epoch seconds
    data: str  # with its trailing newline, as written


def _parse(line: bytes) -> LogEntry | None:
    try:
        obj = json.loads(line)
        return LogEntry(obj["stream"], parse_rfc3339(obj["time"]), obj["log"])
    except (ValueError, KeyError, TypeError):
        return None  # a torn last line while the shim writes: skipped (re-read on follow)


async def read_log(path: str, tail: int | None = None, follow: bool = False,
                   stop: Callable[[], bool] | None = None,
                   poll: float = 0.1) -> AsyncIterator[LogEntry]:
    """Entries of the log at `path`: the last `tail` (None = all), then new ones if `follow`
    until `stop()` is true (checked when no new data arrives) or the caller stops iterating."""
    while not os.path.exists(path):
        if not follow or (stop is not None and stop()):
            return
        await asyncio.sleep(poll)
    with open(path, "rb") as f:
        lines: deque[bytes] | list[bytes]
        if tail is None:
            lines = f.readlines()
        else:
            lines = deque(f, maxlen=max(tail, 0)) if tail > 0 else []
        pending = b""
        if lines and not lines[-1].endswith(b"\n"):
            pending = lines.pop() if isinstance(lines, list) else lines.pop()
        for raw in lines:
            e = _parse(raw)
            if e is not None:
                yield e
        if not follow:
            return
        stopping = False
        while True:
            chunk = f.read()
            if not chunk and not stopping and stop is not None and stop():
                stopping = True  # one more read: what was written before stop() turned true
                continue
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    e = _parse(raw)
                    if e is not None:
                        yield e
                continue
            if stopping:
                return
            await asyncio.sleep(poll)
