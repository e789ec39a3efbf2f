"""What a root test run makes on the host, claimed by its owner, and swept when the owner died.

A root fixture takes its world (temp dir with state and run roots, cgroup parent) from
`claim()`, which writes `<base>/.owner`: the pytest process (pid and start time) and the
cgroup parent. A fixture's teardown ends it with `force_clean()` after its leak snapshot.
A run killed outright (SIGKILL, CI's time limit, a lost VM console) runs no teardown; the next
root run's `sweep()` (tests/conftest.py, at session start) finds every claim whose owner is
gone and cleans it the same way, and removes test cgroup parents (`composer-<tier>-<pid>-...`)
whose pid is gone. A claim of a live run, this one's or a parallel one's, is never touched.

    python -m tests.sweep        sweep now, print what went
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OWNER = ".owner"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# the test tiers' cgroup parents: composer-e2e-<pid>-<suffix>, composer-rel-..., composer-it-...
TEST_PARENT = re.compile(r"^composer-(?:e2e|rel|it|test)-(\d+)-\w+$")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat): with the pid it
    names one process, also after the pid is reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def claim(prefix: str, tier: str) -> tuple[Path, str]:
    """A fresh temp dir and cgroup parent for one test, owned by this process."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    parent = f"composer-{tier}-{os.getpid()}-{base.name[-6:]}"
    owner = {"pid": os.getpid(), "start": _start_time(os.getpid()), "cgroup_parent": parent}
    (base / OWNER).write_text(json.dumps(owner))
    return base, parent


def _owner_alive(base: Path) -> bool:
    try:
        owner = json.loads((base / OWNER).read_text())
        return bool(_start_time(int(owner["pid"])) == owner["start"])
    except (OSError, ValueError, KeyError, TypeError):
        return True  # unreadable: not ours to judge


def stop_daemon(run: Path) -> None:
    """SIGTERM the composerd of a run root, SIGKILL after 5 s."""
    try:
        pid = int((run / "composerd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _unmount_under(base: Path) -> None:
    from runtime.process.syscalls import MNT_DETACH, LibcSyscalls

    with open("/proc/self/mountinfo") as f:
        targets = [line.split()[4] for line in f]
    sys_ = LibcSyscalls()
    for t in sorted((t for t in targets if t == str(base) or t.startswith(f"{base}/")),
                    key=len, reverse=True):
        try:
            sys_.umount2(t, MNT_DETACH)
        except OSError:
            pass


def force_clean(base: Path, cgroup_parent: str, environ: dict[str, str] | None = None) -> None:
    """End whatever a test world still runs and remove it all: its containers' processes, its
    networks (bridges, veths, firewall table), its cgroups, its mounts, its dir."""
    root, run = base / "root", base / "run"
    stop_daemon(run)
    for state in root.glob("containers/*/process.json"):
        try:
            data = json.loads(state.read_text())
            for key in ("pid", "monitor_pid"):
                os.kill(int(data[key]), signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass
    time.sleep(0.2)
    env = dict(environ if environ is not None else os.environ)
    env.update({"COMPOSER_ROOT": str(root), "COMPOSER_RUN": str(run),
                "COMPOSER_CGROUP_PARENT": cgroup_parent, "PYTHONPATH": str(REPO)})
    if (root / "networks").exists():
        subprocess.run([sys.executable, "-c", (
            "import asyncio; from runtime.paths import Paths; from runtime.network.manager import "
            "NetworkManager as N\n"
            "async def m():\n"
            "    n = N(Paths.from_env()); await n.start()\n"
            "    for i in n.list(): await n.remove(i.name, force=True)\n"
            "    await n.close()\n"
            "asyncio.run(m())")], env=env, capture_output=True, timeout=60, cwd=REPO)
    remove_cgroup_parent(cgroup_parent)
    _unmount_under(base)
    shutil.rmtree(base, ignore_errors=True)


def remove_cgroup_parent(parent: str) -> None:
    """Kill what runs under a cgroup parent and remove it, in every hierarchy (in a child
    process: the cgroup manager is the runtime's, and a failure must not end the caller)."""
    subprocess.run([sys.executable, "-c", (
        "from runtime.cgroups import open_manager; "
        f"open_manager(parent={parent!r}).remove_parent()")],
        capture_output=True, timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def _test_parents() -> set[tuple[str, int]]:
    """(name, pid) of every test cgroup parent on the host, in any hierarchy."""
    found = set()
    for hierarchy in [CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir())] \
            if CGROUP_ROOT.is_dir() else []:
        try:
            names = [e.name for e in os.scandir(hierarchy) if e.is_dir()]
        except OSError:
            continue
        for name in names:
            m = TEST_PARENT.match(name)
            if m:
                found.add((name, int(m.group(1))))
    return found


def sweep(tmp: Path | None = None) -> list[str]:
    """Clean every test world whose owner is gone; what was removed, one line each."""
    tmp = tmp or Path(tempfile.gettempdir())
    swept: list[str] = []
    for owner in sorted(tmp.glob(f"*/{OWNER}")):
        base = owner.parent
        if _owner_alive(base):
            continue
        try:
            parent = json.loads(owner.read_text())["cgroup_parent"]
        except (OSError, ValueError, KeyError):
            continue
        force_clean(base, parent)
        swept.append(f"{base} (cgroup parent {parent})")
    for name, pid in sorted(_test_parents()):
        if not Path(f"/proc/{pid}").exists():
            remove_cgroup_parent(name)
            swept.append(f"cgroup parent {name}")
    return swept


if __name__ == "__main__":
    for line in sweep():
        print(f"swept {line}")
