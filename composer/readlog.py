"""Which files a stack load looked at, so that a cache of its result can tell when it is stale.

The loader (composer.spec) probes and reads files through `is_file` and `noted`; while a
`recording()` block is open, each path it touched is kept, whether it was there or not: a
`compose.override.yaml` or `.env` that appears later changes the stack as surely as an
edit does. A leaf module (no composer.spec import) so that a cache hit never imports the
loader (~65 ms).

    with recording() as paths:
        stack = load_stack(opts)
    # paths: every file looked at, in order, absent ones included
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_RECORDERS: list[dict[str, None]] = []  # the open recording() blocks, innermost last


def noted(path: Path | str) -> Path:
    """`path`, remembered by every open recording; returns it unchanged."""
    if _RECORDERS:
        text = os.path.abspath(path)
        for seen in _RECORDERS:
            seen[text] = None
    return Path(path)


def is_file(path: Path | str) -> bool:
    """`Path.is_file()` that the open recordings remember (an absent file too)."""
    return noted(path).is_file()


@contextmanager
def recording() -> Iterator[dict[str, None]]:
    """The absolute paths the loader touches inside the block (an ordered set)."""
    seen: dict[str, None] = {}
    _RECORDERS.append(seen)
    try:
        yield seen
    finally:
        _RECORDERS.remove(seen)
