"""Prefixed container output for `logs` and an attached `up`, as docker compose prints it:

    web-1  | GET / 200
    db-1   | ready for connections
    web-1 exited with code 0

Bytes in, bytes out: a container's stdout goes to our stdout and its stderr to our stderr
(docker compose mixes them for `logs`; it separated them for `up` in docker/compose#10070
after #8098); each complete line gets the prefix (the name padded to the longest name + 1,
coloured on a terminal unless --no-color), an optional timestamp, and is written as soon as
the event loop is idle -- a burst is one write, a lone line leaves at once. A line comes
whole even when the log splits it into 16 KiB pieces or the stream cuts it; a line still
open when its container stops is ended with a newline.
"""
from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from typing import BinaryIO

COLOURS = ("36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1")


def stamp(t: float) -> str:
    """RFC3339 with nanoseconds in UTC, as `docker logs -t`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


@dataclass
class _Source:
    name: str
    colour: str
    prefix: bytes = b""
    partial: dict[str, bytes] = field(default_factory=dict)  # stream -> bytes of an open line
    started: dict[str, float] = field(default_factory=dict)  # stream -> time of that line


class LogPrinter:
    def __init__(self, *, colour: bool, prefix: bool = True, timestamps: bool = False,
                 out: BinaryIO | None = None, err: BinaryIO | None = None) -> None:
        self.colour = colour
        self.prefix = prefix
        self.timestamps = timestamps
        self.out = out or sys.stdout.buffer
        self.err = err or sys.stderr.buffer
        self.sources: dict[str, _Source] = {}
        self._flush_pending = False

    def register(self, key: str, name: str) -> None:
        """A container (key: its id) shown as `name`; the prefixes of all are re-padded."""
        if key in self.sources:
            return
        colour = COLOURS[len(self.sources) % len(COLOURS)] if self.colour else ""
        self.sources[key] = _Source(name, colour)
        width = max(len(s.name) for s in self.sources.values()) + 1
        for s in self.sources.values():
            s.prefix = self._paint(s, f"{s.name:<{width}} | ").encode() if self.prefix else b""

    def _paint(self, s: _Source, text: str) -> str:
        return f"\033[{s.colour}m{text}\033[0m" if s.colour else text

    def output(self, key: str, stream: str, data: bytes, t: float | None = None) -> None:
        """Bytes the container wrote on `stream` (at time `t`, for --timestamps)."""
        s = self.sources[key]
        buf = s.partial.get(stream, b"") + data
        if stream not in s.started or not s.partial.get(stream):
            s.started[stream] = time.time() if t is None else t
        *lines, rest = buf.split(b"\n")
        if lines:
            f = self.out if stream == "stdout" else self.err
            first_t = s.started[stream]
            parts = []
            for i, line in enumerate(lines):
                parts.append(s.prefix + self._stamp(first_t if i == 0 else t) + line + b"\n")
            f.write(b"".join(parts))
            s.started[stream] = time.time() if t is None else t
            self._schedule_flush()
        s.partial[stream] = rest

    def _stamp(self, t: float | None) -> bytes:
        if not self.timestamps:
            return b""
        return (stamp(time.time() if t is None else t) + " ").encode()

    def end(self, key: str) -> None:
        """The container's output ended (a run ended): an open line is ended here."""
        s = self.sources[key]
        for stream, rest in list(s.partial.items()):
            if rest:
                self.output(key, stream, b"\n", s.started.get(stream))
        s.partial.clear()

    def status(self, key: str, message: str) -> None:
        """`web-1 exited with code 0`, on our stdout, in the container's colour."""
        self.end(key)
        s = self.sources[key]
        self.out.write(self._paint(s, f"{s.name} {message}").encode() + b"\n")
        self.flush()

    def _schedule_flush(self) -> None:
        if self._flush_pending:
            return
        asyncio = sys.modules.get("asyncio")  # not imported: no loop (`logs`' quick path)
        try:
            if asyncio is None:
                raise RuntimeError("no event loop")
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_pending = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        for f in (self.out, self.err):
            with contextlib.suppress(ValueError):
                f.flush()


def short_name(container_name: str, project: str) -> str:
    """`myproj-web-1` -> `web-1`, as docker compose names containers in its output; a
    `container_name:` is shown whole."""
    return container_name.removeprefix(project + "-") if container_name.startswith(
        project + "-") else container_name
