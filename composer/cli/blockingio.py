"""`exec` without a terminal on threads instead of an event loop (the quick path of
composer.cli.quick): the same bytes, order, end of input and exit code as stdio.session.

    code = blocking_session(stream, in_fd=0)   # stream: runtime.quickclient.QuickAttach

The main thread reads the container's output (and so notices EXIT and the end); a daemon
thread copies our stdin into the stream in READ_SIZE reads, each written whole before the
next is read (backpressure: a 100 MB `< dump.sql` never piles up in memory), then ends the
container's stdin. Ctrl-C interrupts the main thread's read; the CLI's main turns it into
130 and the stream is closed on the way out, as the asyncio path does.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

READ_SIZE = 256 * 1024


def write_output(name: str, data: bytes) -> None:
    """Container stdout to ours, its stderr to ours; flushed: live, not when we exit."""
    f = sys.stdout.buffer if name == "stdout" else sys.stderr.buffer
    try:
        f.write(data)
        f.flush()
    except BrokenPipeError:  # `composer exec ... | head -1`: the reader has gone
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), f.fileno())
        raise


def stdin_fd() -> int:
    """fd 0 when we have a stdin at all (a CLI started with it closed has none): -1 else."""
    if sys.stdin is None:
        return -1
    try:
        os.fstat(0)
    except OSError:
        return -1
    return 0


def blocking_session(stream: Any, in_fd: int) -> int:
    """Input from `in_fd` (-1: none, stdin closed at once) while the output goes to ours;
    the command's exit code (255 when the stream ended without one)."""
    from runtime.quickclient import run_now

    def feed() -> None:
        try:
            while data := os.read(in_fd, READ_SIZE):
                run_now(stream.write(data))
        except OSError:
            pass  # our stdin broke: end the container's as at EOF
        run_now(stream.close_stdin())

    if in_fd >= 0:
        threading.Thread(target=feed, name="stdin", daemon=True).start()
    else:
        run_now(stream.close_stdin())
    try:
        while (item := run_now(stream.read())) is not None:
            write_output(*item)
    except BrokenPipeError:  # our reader left (`| head -1`): as a shell pipeline would
        return 141
    finally:
        run_now(stream.close())
    return stream.exit_code if stream.exit_code is not None else 255
