"""Reading a container's json-file log (runtime.process.logs) for `logs`: across its rotated
files in order, with tail / since / until, and following it as the monitor writes -- also
through rotations.

    async for e in read_log(path, tail=10, follow=True, stop=lambda: exited):
        e.stream, e.time, e.data          # data: str, non-UTF-8 bytes as lone surrogates

Files, oldest first: `<log>.N[.gz]` ... `<log>.1[.gz]`, then `<log>`. The current file is
opened first and a rotated file with its inode is skipped, so a rotation while we read
neither loses nor repeats an entry. Following waits on inotify (the log's directory) so a
line reaches the reader within milliseconds, with a poll as fallback; at EOF of a file that
was rotated away, the new `<log>` is opened from its start. File reading and JSON parsing
run in a worker thread: a 100 MB history must not stall the daemon's event loop.
"""
from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import BinaryIO

from runtime.inotify import DirWatch
from runtime.process.logs import parse_rfc3339

CHUNK = 1 << 20  # bytes read per worker-thread call
TAIL_BLOCK = 64 * 1024
STOP_CHECK = 0.25  # seconds between checks of stop() while nothing is written


@dataclass(frozen=True)
class LogEntry:
    stream: str  # "stdout" | "stderr"
    time: float  # epoch seconds
    data: str  # as written; a trailing newline unless it is a piece of a longer line


def _parse(line: bytes) -> LogEntry | None:
    try:
        obj = json.loads(line)
        return LogEntry(obj["stream"], parse_rfc3339(obj["time"]), obj["log"])
    except (ValueError, KeyError, TypeError):
        return None  # a torn or foreign line: skipped


def rotated_files(path: str) -> list[str]:
    """`<path>.N[.gz]` oldest first (highest N); an uncompressed one wins over its .gz (it
    is being compressed right now)."""
    d, base = os.path.split(path)
    pat = re.compile(re.escape(base) + r"\.(\d+)(\.gz)?$")
    found: dict[int, str] = {}
    try:
        names = os.listdir(d or ".")
    except OSError:
        return []
    for name in names:
        m = pat.match(name)
        if m:
            n = int(m.group(1))
            if n not in found or not m.group(2):
                found[n] = os.path.join(d, name)
    return [found[n] for n in sorted(found, reverse=True)]


@dataclass
class _Rotated:
    """A rotated file, opened: renames by the monitor while we read do not matter any more."""

    name: str
    f: BinaryIO
    ino: int

    def read(self) -> bytes:
        try:
            self.f.seek(0)
            if self.name.endswith(".gz"):
                with gzip.GzipFile(fileobj=self.f) as g:
                    return g.read()
            return self.f.read()
        except (OSError, EOFError):  # a .gz cut short: what there is
            return b""

    def first_time(self) -> float | None:
        try:
            self.f.seek(0)
            if self.name.endswith(".gz"):
                with gzip.GzipFile(fileobj=self.f) as g:
                    line = g.readline()
            else:
                line = self.f.readline()
        except (OSError, EOFError):
            return None
        e = _parse(line)
        return e.time if e is not None else None

    def lines(self) -> list[bytes]:
        return [x for x in self.read().split(b"\n") if x]


def open_rotated(path: str, tries: int = 50) -> list[_Rotated]:
    """The rotated files, oldest first, each opened -- and checked against a second listing,
    so that a rotation between listing and opening does not put a file in the wrong place."""
    out: list[_Rotated] = []
    for attempt in range(tries):
        if attempt:
            time.sleep(0.002)  # a rotation or a compression is in flight: let it finish
        names = rotated_files(path)
        out = []
        for name in names:
            try:
                f = open(name, "rb")  # noqa: SIM115 - closed by close_all
            except OSError:
                break
            out.append(_Rotated(name, f, os.fstat(f.fileno()).st_ino))
        else:
            if [(r.name, r.ino) for r in out] == [(n, _ino(n)) for n in rotated_files(path)]:
                return out
            if attempt == tries - 1:
                return out  # the monitor rotates faster than we list: the last look, as it is
        close_all(out)
    return []


def close_all(files: list[_Rotated]) -> None:
    for r in files:
        r.f.close()


def _complete_end(f: BinaryIO, end: int) -> int:
    """The offset just after the last newline before `end` (0 if none): where the entry
    being written right now starts."""
    pos = end
    while pos > 0:
        step = min(TAIL_BLOCK, pos)
        f.seek(pos - step)
        block = f.read(step)
        nl = block.rfind(b"\n")
        if nl >= 0:
            return pos - step + nl + 1
        pos -= step
    return 0


def _last_lines(f: BinaryIO, n: int, end: int) -> list[bytes]:
    """The last `n` complete lines before offset `end` of file object `f`, read backwards."""
    if n <= 0 or end <= 0:
        return []
    data = b""
    pos = end
    while pos > 0 and data.count(b"\n") <= n:
        step = min(TAIL_BLOCK, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: nothing, or a line being written
    if pos > 0:
        lines = lines[1:]  # the first may be cut
    return lines[-n:]


class _History:
    """The synchronous part (worker thread): what is in the files now."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.f = None
        self.ino = 0
        self.end = 0
        with contextlib.suppress(FileNotFoundError):
            self.f = open(path, "rb")  # noqa: SIM115 - kept open for the follow phase
            st = os.fstat(self.f.fileno())
            self.ino, self.end = st.st_ino, st.st_size

    def older(self) -> list[_Rotated]:
        out = []
        for r in open_rotated(self.path):
            if self.f is not None and r.ino == self.ino:
                r.f.close()  # rotated after we opened it: it is our current file
                continue
            out.append(r)
        return out

    def tail(self, n: int) -> list[bytes]:
        """The last n lines across the files (the current one up to `end`)."""
        lines: deque[bytes] = deque()
        if self.f is not None:
            self.end = _complete_end(self.f, self.end)  # a torn last entry is read later
            lines.extendleft(reversed(_last_lines(self.f, n, self.end)))
        if len(lines) < n:
            files = self.older()
            try:
                for r in reversed(files):
                    if len(lines) >= n:
                        break
                    more = r.lines()
                    lines.extendleft(reversed(more[-(n - len(lines)):]))
            finally:
                close_all(files)
        if self.f is not None:
            self.f.seek(self.end)
        return list(lines)[-n:] if n else []

    def all_older(self) -> list[bytes]:
        out: list[bytes] = []
        files = self.older()
        try:
            for r in files:
                out.extend(r.lines())
        finally:
            close_all(files)
        return out


async def read_log(path: str, tail: int | None = None, follow: bool = False,
                   stop: Callable[[], bool] | None = None, since: float | None = None,
                   until: float | None = None, poll: float = 0.1) -> AsyncIterator[LogEntry]:
    """Entries of the log at `path` and its rotated files: the last `tail` (None = all)
    with `since` <= time <= `until`, then new ones if `follow` until `stop()` is true (checked
    when nothing new comes), an entry passes `until`, or the caller stops iterating."""
    if not follow and not os.path.exists(path) and not rotated_files(path):
        return
    hist = await asyncio.to_thread(_History, path)
    try:
        if tail is not None:
            raw = await asyncio.to_thread(hist.tail, max(tail, 0))
        else:
            raw = await asyncio.to_thread(hist.all_older)
        last = _Last()
        for e in await asyncio.to_thread(_entries, raw):
            last.new(e)
            if until is not None and e.time > until:
                return
            if since is None or e.time >= since:
                yield e
        # the rest of the current file (all of it without tail), then new writes
        async for e in _follow(hist, follow, stop, poll, last):
            if until is not None and e.time > until:
                return
            if since is None or e.time >= since:
                yield e
    finally:
        if hist.f is not None:
            hist.f.close()


def _entries(raw: list[bytes]) -> list[LogEntry]:
    return [e for e in map(_parse, raw) if e is not None]


async def _follow(hist: _History, follow: bool, stop: Callable[[], bool] | None,
                  poll: float, last: _Last) -> AsyncIterator[LogEntry]:
    path = hist.path
    watch = DirWatch.open(os.path.dirname(path) or ".") if follow else None
    pending = b""
    stopping = False
    try:
        while True:
            if hist.f is None:
                with contextlib.suppress(FileNotFoundError):
                    hist.f = open(path, "rb")  # noqa: SIM115
                    hist.ino = os.fstat(hist.f.fileno()).st_ino
            chunk = b""
            if hist.f is not None:
                chunk = await asyncio.to_thread(hist.f.read, CHUNK)
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for e in await asyncio.to_thread(_entries, complete):
                    if last.new(e):
                        yield e
                continue
            if not follow:
                return
            if hist.f is not None and _rotated(path, hist.ino):
                # the monitor closed it before the rename: what it wrote between our last read
                # and the rename is still to read; then on to what came after it -- the new
                # file, and any file rotated meanwhile in between
                rest = await asyncio.to_thread(_read_rest, hist.f)
                if rest:
                    pending += rest
                    *complete, pending = pending.split(b"\n")
                    for e in await asyncio.to_thread(_entries, complete):
                        if last.new(e):
                            yield e
                old, old_ino = hist.f, hist.ino
                hist.f, pending = None, b""
                with contextlib.suppress(FileNotFoundError):
                    hist.f = open(path, "rb")  # noqa: SIM115 - first, as in _History
                    hist.ino = os.fstat(hist.f.fileno()).st_ino
                try:  # the old file stays open meanwhile: no new file can get its inode
                    raw, again = await asyncio.to_thread(_between, path, old_ino, hist.ino,
                                                         last.time)
                finally:
                    old.close()
                if again:
                    last.rewind()
                for e in await asyncio.to_thread(_entries, raw):
                    if last.new(e):
                        yield e
                continue
            if stopping:
                return
            if stop is not None and stop():
                stopping = True  # one more read: what was written before stop() turned true
                continue
            if watch is not None:
                await watch.wait(STOP_CHECK)
            else:
                await asyncio.sleep(poll)
    finally:
        if watch is not None:
            watch.close()


class _Last:
    """The last entry passed on: after a rotation the reader may see entries again (a file it
    read was compressed under another name); those are skipped by their time, and by their
    count among entries of that very time."""

    def __init__(self) -> None:
        self.time = float("-inf")
        self.count = 0  # entries passed on with exactly `time`
        self.skip = 0  # entries of exactly `time` still to skip

    def new(self, e: LogEntry) -> bool:
        if e.time < self.time:
            return False
        if e.time == self.time and self.skip:
            self.skip -= 1
            return False
        if e.time == self.time:
            self.count += 1
        else:
            self.time, self.count = e.time, 1
        return True

    def rewind(self) -> None:
        """About to read files that may repeat what was passed on at `time`."""
        self.skip = self.count


def _read_rest(f: BinaryIO) -> bytes:
    chunks = []
    while chunk := f.read(CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


def _between(path: str, old_ino: int, new_ino: int,
             last_time: float) -> tuple[list[bytes], bool]:
    """Lines of the rotated files that came after the file `old_ino` (read to its end) and
    before the current one (`new_ino`). Usually none: the old file is `<log>.1`. When it
    was compressed (another inode) or rotations came faster than we read, they are found
    by time: from the newest file that begins at or before the last entry passed on -- then
    they may repeat entries (True)."""
    opened = open_rotated(path)
    files = [r for r in opened if r.ino != new_ino]
    try:
        again = False
        for i, r in enumerate(files):
            if r.ino == old_ino:
                start = i + 1
                break
        else:
            start, again = 0, True
            for i in range(len(files) - 1, -1, -1):
                t = files[i].first_time()
                if t is not None and t <= last_time:
                    start = i
                    break
        out: list[bytes] = []
        for r in files[start:]:
            out.extend(r.lines())
        return out, again
    finally:
        close_all(opened)  # also the current file, if it was listed


def _ino(name: str) -> int:
    try:
        return os.stat(name).st_ino
    except OSError:
        return -1


def _rotated(path: str, ino: int) -> bool:
    try:
        return os.stat(path).st_ino != ino
    except FileNotFoundError:
        return True
