"""Which code a composerd runs, so the CLI can tell a daemon left over from before an upgrade.

composerd outlives the CLI that started it: after `git pull` or `pip install -U` the old
daemon would keep serving the new CLI (routes missing, payloads changed). The daemon tells
its code identity in the `X-Composer-Identity` header of `/_ping` (free for the CLI's quick
path, which pings first anyway) and in `/version`:

    <API_VERSION>/<content>/<stat>

- `content`: sha1 of the relative path and bytes of every `.py` file of the `runtime`
  package it was started from (~1.3 ms for ~140 files, warm cache);
- `stat`: sha1 of (relative path, size, mtime_ns) of the same files (~0.4 ms: 140 stats).

The CLI computes its own `stat` (one walk, cached for the process) and is done when it
matches; only when it differs (an upgrade, or a checkout with other mtimes) it hashes the
contents, so a `touch` or a second checkout of the same code is no mismatch. Only `runtime`
counts: it is all the daemon runs (composer/ is the CLI's own, loaded afresh each time).
"""
from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

HEADER = "X-Composer-Identity"
TEST_ENV = "COMPOSERD_IDENTITY"  # tests only: the identity a daemon reports (an "old" daemon)


def package_dir() -> Path:
    import runtime

    return Path(runtime.__file__).resolve().parent


def _sources(root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every .py file under `root` (no __pycache__), sorted.
    Strings, not Paths: Path objects and relpath cost ~3x the stats themselves."""
    base = str(root)
    cut = len(base) + 1
    out: list[tuple[str, int, int]] = []
    todo = [base]
    while todo:
        folder = todo.pop()
        with os.scandir(folder) as entries:
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    if e.name != "__pycache__":
                        todo.append(e.path)
                elif e.name.endswith(".py"):
                    st = e.stat()
                    out.append((e.path[cut:], st.st_size, st.st_mtime_ns))
    out.sort()
    return out


@cache
def stat_signature(root: Path | None = None) -> str:
    listing = "".join(f"{rel}\0{size}\0{mtime}\n" for rel, size, mtime in _sources(root or package_dir()))
    return hashlib.sha1(listing.encode()).hexdigest()[:16]


@cache
def content_signature(root: Path | None = None) -> str:
    base = root or package_dir()
    h = hashlib.sha1()
    for rel, _, _ in _sources(base):
        h.update(f"{rel}\0".encode())
        h.update((base / rel).read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def identity(root: Path | None = None) -> str:
    """This code's identity, as a daemon reports it."""
    from runtime.rpc import API_VERSION

    return f"{API_VERSION}/{content_signature(root)}/{stat_signature(root)}"


def reported(environ: os._Environ[str] | dict[str, str] = os.environ) -> str:
    """What composerd reports: its identity, or a test's stand-in for an older daemon's."""
    return environ.get(TEST_ENV) or identity()


def same_code(theirs: str | None, root: Path | None = None) -> bool:
    """Whether a daemon reporting `theirs` runs this code. None (a daemon from before this
    header) or anything malformed is other code."""
    from runtime.rpc import API_VERSION

    parts = (theirs or "").split("/")
    if len(parts) != 3 or parts[0] != API_VERSION:
        return False
    content, stat = parts[1], parts[2]
    if stat == stat_signature(root):
        return True
    return content == content_signature(root)
