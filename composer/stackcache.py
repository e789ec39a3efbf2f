"""What the read-only verbs need of a stack (its name, its services, the loader's warnings),
kept from one load to the next while nothing the load depends on has changed.

`composer ps` / `port` / `logs` / `exec` must know the project and its services, and loading
a stack means importing the spec loader: ~65 ms of a ~100 ms budget, for a file that
rarely changes between two commands. So the first load of a stack (the full loader, every
check, every error as before) stores a `StackSummary` with what it depended on:

- the inputs of the command: the working folder, the global options, the services named
  on the command line, the whole environment (interpolation, COMPOSE_*, `KEY` alone) but
  for the variables a shell changes on its own (SHELL_VOLATILE: OLDPWD after every `cd`):
  those count only when a file the load read names them;
- every file the loader looked at (composer.readlog), present or absent, by inode, size,
  mode, mtime and ctime: an edit, a new override file or `.env`, a removed include;
- composer's own loader code (the composer/spec modules and this one, by size and mtime).

Any difference is a miss: the full loader runs again (and its errors are the errors). A
failed load is never stored. A load whose files changed in the last STABLE_AFTER seconds
is not stored either: a file rewritten within the same clock tick keeps its mtime (and
maybe its size), as git's "racily clean" index entries, so such a file is trusted only
once it has aged.

Entries live in COMPOSER_RUN/cli-cache/UID/ (0700, cleared at boot), one JSON file per
key, at most MAX_ENTRIES.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

FORMAT = 1
STABLE_AFTER = 2.0  # seconds
MAX_ENTRIES = 64
_CODE_DIRS = ("spec",)  # composer/<dir>: the loader's modules
SHELL_VOLATILE = ("OLDPWD", "SHLVL", "_")


@dataclass(frozen=True)
class StackSummary:
    name: str
    services: tuple[str, ...]  # the enabled services, in stack order
    all_services: tuple[str, ...]  # with the ones a profile disables
    warnings: tuple[str, ...]  # the loader's, printed as WARN lines by every verb


def _stat_key(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns]


stat_key = _stat_key  # public: composer.cli.quickrun stamps the code of its plans so


def _code_stamp() -> list[object]:
    here = Path(__file__).parent
    out: list[object] = [_stat_key(__file__)]
    for sub in _CODE_DIRS:
        with os.scandir(here / sub) as entries:
            for e in sorted(entries, key=lambda e: e.name):
                if e.name.endswith(".py"):
                    out.append([e.name, _stat_key(e.path)])
    return out


def cache_dir(run_dir: Path) -> Path:
    return run_dir / "cli-cache" / str(os.getuid())


def _key(inputs: Sequence[object], environ: Mapping[str, str]) -> str:
    steady = sorted((k, v) for k, v in environ.items() if k not in SHELL_VOLATILE)
    text = json.dumps([FORMAT, os.getcwd(), list(inputs), steady, _code_stamp()], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _named_volatiles(files: Sequence[str], environ: Mapping[str, str]) -> dict[str, str | None]:
    """The SHELL_VOLATILE variables a file names (`${OLDPWD}`, `environment: [OLDPWD]`),
    with their values now: a cache entry is good only while they keep them."""
    out: dict[str, str | None] = {}
    for f in files:
        try:
            text = Path(f).read_text(errors="replace")
        except OSError:
            continue
        for name in SHELL_VOLATILE:
            if name not in out and re.search(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])", text):
                out[name] = environ.get(name)
    return out


def lookup_data(folder: Path, inputs: Sequence[object],
                environ: Mapping[str, str] | None = None) -> dict[str, object] | None:
    """The JSON object stored for these inputs if every file it depended on is unchanged."""
    environ = os.environ if environ is None else environ
    path = folder / f"{_key(inputs, environ)}.json"
    try:
        data = json.loads(path.read_bytes())
        if any(_stat_key(f) != st for f, st in data["files"]):
            return None
        if any(environ.get(k) != v for k, v in data["volatile"].items()):
            return None
        stored = data["stack"]
        return stored if isinstance(stored, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def summary_from(s: Mapping[str, object]) -> StackSummary:
    """A StackSummary from its JSON form (KeyError/TypeError when it is not one)."""
    return StackSummary(str(s["name"]), tuple(s["services"]),  # type: ignore[arg-type]
                        tuple(s["all_services"]), tuple(s["warnings"]))  # type: ignore[arg-type]


def summary_json(summary: StackSummary) -> dict[str, object]:
    return {"name": summary.name, "services": list(summary.services),
            "all_services": list(summary.all_services), "warnings": list(summary.warnings)}


def lookup(folder: Path, inputs: Sequence[object],
           environ: Mapping[str, str] | None = None) -> StackSummary | None:
    """The summary stored for these inputs if every file it depended on is unchanged."""
    data = lookup_data(folder, inputs, environ)
    try:
        return summary_from(data) if data is not None else None
    except (KeyError, TypeError):
        return None


def store(folder: Path, inputs: Sequence[object], summary: StackSummary, files: Sequence[str],
          environ: Mapping[str, str] | None = None, *, now: float | None = None) -> bool:
    """Keep `summary` for these inputs with the state of `files` (what the load looked at);
    False when not stored (a file too fresh to trust, or the folder not writable)."""
    return store_data(folder, inputs, summary_json(summary), files, environ, now=now)


def store_data(folder: Path, inputs: Sequence[object], stored: Mapping[str, object],
               files: Sequence[str], environ: Mapping[str, str] | None = None, *,
               now: float | None = None) -> bool:
    """store's, for any JSON object (composer.cli.quickrun keeps a run plan so)."""
    now = time.time() if now is None else now
    states = [(f, _stat_key(f)) for f in files]
    fresh = (now - STABLE_AFTER) * 1e9
    if any(st is not None and max(st[3], st[4]) >= fresh for _, st in states):
        return False
    environ = os.environ if environ is None else environ
    key = _key(inputs, environ)
    volatile = _named_volatiles([f for f, st in states if st is not None], environ)
    body = json.dumps({"files": states, "volatile": volatile, "stack": dict(stored)})
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:max(0, len(entries) - MAX_ENTRIES + 1)]:
            old.unlink(missing_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(body)
        os.replace(tmp, folder / f"{key}.json")  # a reader sees the old entry or the new one
    except OSError:
        return False
    return True


def summary_of(load: Callable[[], tuple[StackSummary, Sequence[str]]], folder: Path,
               inputs: Sequence[object]) -> StackSummary:
    """The cached summary for `inputs`, else `load()`'s (stored for next time); `load`
    returns the summary and the files it looked at, and raises as the loader does."""
    hit = lookup(folder, inputs)
    if hit is not None:
        return hit
    summary, files = load()
    store(folder, inputs, summary, files)
    return summary
