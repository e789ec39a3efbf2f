"""runtime.daemon.warmstart: a composerd that compiled any of its modules execs itself once
more, so it runs on loaded bytecode (a heap ~8 MiB smaller for its whole life), and only once."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

from runtime.daemon import warmstart

REPO = Path(__file__).resolve().parents[3]

# what the process does: note its pid, then what composerd's main does after its imports
SCRIPT = """
import os, sys
import json, email.message  # stdlib modules compiled into the empty cache on the first run
from runtime.daemon import warmstart
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()}\\n")
warmstart.reexec_if_compiled()
print(os.getpid(), os.environ.get(warmstart.REEXEC_ENV))
"""


def run(cache: Path, log: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-X", f"pycache_prefix={cache}", "-c", SCRIPT, str(log)],
                         env=env, capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


def test_a_process_that_compiled_runs_again_once_on_its_bytecode(tmp_path: Path) -> None:
    cache, log = tmp_path / "pycache", tmp_path / "log"
    pid, leftover = run(cache, log).split()
    assert log.read_text().split() == [pid, pid]  # exec'd once: the same process, twice through
    assert leftover == "None"  # the guard is not passed on to what the daemon starts
    log.unlink()
    pid, _ = run(cache, log).split()
    assert log.read_text().split() == [pid]  # the bytecode is there now: no exec


def test_compiled_here_names_the_modules_whose_bytecode_is_newer(tmp_path: Path) -> None:
    old, new = tmp_path / "old.pyc", tmp_path / "new.pyc"
    old.write_bytes(b"")
    new.write_bytes(b"")
    started = time.time() - 5
    os.utime(old, (started - 60, started - 60))
    mods = [types.ModuleType(n) for n in ("old", "new", "gone", "builtin")]
    mods[0].__cached__ = str(old)  # type: ignore[attr-defined]
    mods[1].__cached__ = str(new)  # type: ignore[attr-defined]
    mods[2].__cached__ = str(tmp_path / "missing.pyc")  # type: ignore[attr-defined]
    assert warmstart.compiled_here(mods, started) == ["new"]


def test_process_start_is_when_the_process_began() -> None:
    before = time.time()
    out = subprocess.run([sys.executable, "-c", "from runtime.daemon import warmstart as w; "
                          "print(w.process_start())"], env={**os.environ, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, check=True)
    after = time.time()
    assert before - 0.05 <= float(out.stdout) <= after
