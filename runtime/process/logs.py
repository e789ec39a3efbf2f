"""Container logs in Docker's json-file format, one JSON object per line,

    {"log": "hello\\n", "stream": "stdout", "time": "2024-01-02T03:04:05.123456789Z"}

written by the monitor (`JsonLogWriter`, small and synchronous) and read by the engine
(runtime.process.logread). As Docker: a line longer than MAX_LINE is split into entries whose
`log` has no trailing newline (readers join them); a line still open when the output ends is
written without one.

Bytes, not text: output that is not UTF-8 is kept as lone surrogates (Python's
"surrogateescape", written as `\\udcXX` escapes), so `logs` gives back exactly the bytes the
container wrote (`head -c 4096 /bin/busybox` has the same md5). Docker replaces them with
U+FFFD; a JSON reader that is not ours sees the escapes.

Rotation (Docker's json-file `max-size` / `max-file` / `compress`): before a write, a file
that reached `max_size` becomes `<log>.1` (`.1` -> `.2`, ..., the oldest beyond `max_files`
is removed) and a new file is started; with `max_files` 1 the file is simply started over.
With `compress` a child process gzips `<log>.1` into `<log>.1.gz` (written aside and renamed,
then `<log>.1` is removed) while the monitor goes on; the next rotation waits for it. The
monitor reaps every child of its own; it takes a compressor's pid out of `compressors` when
it reaps one, so the writer knows it has ended.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import json.encoder
import os
import resource
import shutil
import time
from datetime import UTC, datetime

from runtime.process.fluentd import FluentdSender

_encode_str = json.encoder.encode_basestring  # the C encoder; returns the quoted string
_encode_ascii = json.encoder.encode_basestring_ascii
MAX_LINE = 16 * 1024  # Docker splits longer lines into 16 KiB pieces
# The cap when a container's `logging:` says nothing (Docker's `local` driver's defaults;
# Docker's json-file alone never rotates): at most 5 files of 20 MB, ~100 MB per container.
DEFAULT_MAX_SIZE = 20 * 1000 * 1000
DEFAULT_MAX_FILE = 5
LOCAL_MAX_SIZE = 20 * 1024 * 1024  # Docker's `local` driver: 20 MiB x 5, compressed
LOCAL_MAX_FILE = 5
compressors: set[int] = set()  # gzip children still running (the monitor reaps them)


def rfc3339_nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


def parse_rfc3339(ts: str) -> float:
    """'2024-01-02T03:04:05.123456789Z' -> epoch seconds (float)."""
    base, _, frac = ts.rstrip("Z").partition(".")
    dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return dt.timestamp() + (int(frac) / 10 ** len(frac) if frac else 0.0)


def rotation(driver: str, max_size: int | None, max_file: int | None,
             compress: bool | None) -> tuple[int, int, bool]:
    """(bytes per file or 0 = never rotate, files kept, gzip rotated files) for a LogConfig.

    json-file with nothing set gets our cap (DEFAULT_*); with only max-size, one file as
    Docker (started over when full); with only max-file, our max-size (Docker would never
    rotate: an unbounded log is what the cap exists for). local: Docker's local defaults."""
    if driver == "none":
        return 0, 1, False
    if driver in ("local", "fluentd"):  # fluentd: Docker's dual-logging cache, local's defaults
        return (max_size or LOCAL_MAX_SIZE, max_file or LOCAL_MAX_FILE,
                True if compress is None else compress)
    if max_size is None and max_file is None:
        return DEFAULT_MAX_SIZE, DEFAULT_MAX_FILE, bool(compress)
    return max_size or DEFAULT_MAX_SIZE, max_file or 1, bool(compress)


def rotated_name(path: str, n: int, compressed: bool) -> str:
    return f"{path}.{n}.gz" if compressed else f"{path}.{n}"


def encode_entries(stream: str, pieces: list[bytes], ts: str) -> bytes:
    """json-file lines for `pieces` (what json.dumps gives for each, ~10x faster: the monitor
    writes what a busy container prints). Bytes that are not UTF-8 survive as \\udcXX."""
    tail = f',"stream":"{stream}","time":"{ts}"}}\n'
    try:
        texts = [p.decode() for p in pieces]
        enc = _encode_str
    except UnicodeDecodeError:
        texts = [p.decode("utf-8", "surrogateescape") for p in pieces]
        enc = _encode_ascii  # escapes the surrogates: the file stays valid UTF-8
    return "".join(['{"log":' + enc(t) + tail for t in texts]).encode()


def _time_field(ts: str) -> bytes:
    """How an entry's time ends it; in the `log` text the quotes would be escaped, so this
    sequence only ever is the time field."""
    return f',"time":"{ts}"}}'.encode()


class JsonLogWriter:
    """Feed raw bytes per stream; complete lines are written as JSON lines to `path`
    (None: the `none` driver, nothing is kept). `max_size` 0: the file is never rotated."""

    def __init__(self, path: str | None, max_size: int = 0, max_files: int = 1,
                 compress: bool = False, forward: FluentdSender | None = None) -> None:
        self.path = path
        self.forward = forward  # the fluentd driver: every line also goes there
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self.compress = compress and self.max_files > 1
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self.fd = -1
        self.size = 0
        self.compressor = 0  # pid of the child gzipping <path>.1
        self.last_ns = 0  # time of the last batch written
        if path is not None:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
            self.size = os.fstat(self.fd).st_size

    def feed(self, stream: str, data: bytes) -> None:
        if self.fd < 0:
            return
        buf = self.partial[stream] + data if self.partial[stream] else data
        end = buf.rfind(b"\n") + 1  # complete lines: buf[:end]
        rest = buf[end:]
        pieces = buf[:end].split(b"\n")
        pieces.pop()  # the empty string after the last newline
        lines = [p + b"\n" for p in pieces]
        if any(len(x) > MAX_LINE for x in lines):
            lines = [x[i:i + MAX_LINE] for x in lines for i in range(0, len(x), MAX_LINE)]
        while len(rest) >= MAX_LINE:  # a long line without its end yet: 16 KiB pieces now
            lines.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self.partial[stream] = rest
        if lines:
            self._write(stream, lines)

    def flush(self, stream: str) -> None:
        if self.partial[stream]:
            self._write(stream, [self.partial[stream]])
            self.partial[stream] = b""

    def _write(self, stream: str, pieces: list[bytes]) -> None:
        if self.forward is not None:
            self.forward.send(stream, pieces)
        if self.fd < 0:
            return
        ts = self._stamp()
        data = encode_entries(stream, pieces, ts)
        if not self.max_size:
            self._append(data)
            return
        # as Docker: a file is rotated once it reached max_size, before the next entry,
        # so it holds at most one entry more than max_size
        start = 0
        while start < len(data):
            if self.size >= self.max_size:
                self._rotate()
                if start:  # the rest of the batch gets a later time than what went before
                    new = self._stamp()
                    data = data[:start] + data[start:].replace(_time_field(ts), _time_field(new))
                    ts = new
            room = self.max_size - self.size
            cut = data.find(b"\n", start + max(room, 1) - 1) + 1 or len(data)
            self._append(data[start:cut])
            start = cut

    def _stamp(self) -> str:
        """Now, strictly later than the last entry's time: readers that meet an entry twice
        across a rotation tell them apart by time (runtime.process.logread)."""
        ns = max(time.time_ns(), self.last_ns + 1)
        self.last_ns = ns
        return rfc3339_nano(ns)

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.size += len(data)

    def _rotate(self) -> None:
        assert self.path is not None
        self._wait_compressor()
        os.close(self.fd)
        path = self.path
        if self.max_files < 2:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(rotated_name(path, self.max_files - 1, self.compress))
            for n in range(self.max_files - 1, 1, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(rotated_name(path, n - 1, self.compress),
                              rotated_name(path, n, self.compress))
            os.rename(path, rotated_name(path, 1, False))
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC,
                          0o640)
        self.size = 0
        if self.compress:
            self.compressor = _compress_aside(rotated_name(path, 1, False))

    def _wait_compressor(self) -> None:
        """Until the gzip child has ended; the monitor may have reaped it already (then it
        is no longer in `compressors`), else it is still our unreaped child: wait here."""
        if self.compressor in compressors:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.compressor, 0)
            compressors.discard(self.compressor)
        self.compressor = 0

    def close(self) -> None:
        for stream in self.partial:
            self.flush(stream)
        if self.forward is not None:
            self.forward.close()
        self._wait_compressor()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _compress_aside(src: str) -> int:
    """gzip `src` into `src.gz` in a child (the monitor must keep pumping output); returns its
    pid, or 0 when it was done here because fork failed."""
    try:
        pid = os.fork()
    except OSError:
        _gzip(src)
        return 0
    if pid:
        compressors.add(pid)
        return pid
    code = 1
    try:  # hold nothing of the monitor's: a pipe kept open here would delay the container's EOF
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        _gzip(src)
        code = 0
    finally:
        os._exit(code)


def _gzip(src: str) -> None:
    tmp = src + ".gz.tmp"
    with open(src, "rb") as fin, open(tmp, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    os.rename(tmp, src + ".gz")
    os.unlink(src)
