"""A private state root for real composerd processes (`denv`), and `Env.foreground()`: one
`python -m runtime.daemon --foreground` started on it, once its socket is there, and
stopped at the end with the monitor its engine started, also when the test fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FAKE = "tests.unit.daemon.fake_engine:FakeEngine.open"


def alive(pid: int) -> bool:
    """`pid` is a composerd that has not exited (a zombie has)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return b"runtime.daemon" in cmdline and state != "Z"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def monitors_of(run: Path) -> list[int]:
    """The monitors (runtime.process.monitor) serving the run dir `run`: the real engine
    starts one; it is not composerd's child (it left composerd's session)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if (b"runtime.process.monitor" in argv and state != "Z"
                and any(a.startswith(str(run).encode() + b"/") for a in argv)):
            found.append(int(entry))
    return found


def stop_monitors(run: Path, grace: float = 5.0) -> list[int]:
    """Wait up to `grace` for the monitors of `run` to leave (an idle monitor does once no
    engine is connected), then SIGKILL the rest. Returns those that had to be killed."""
    end = time.monotonic() + grace
    while (left := monitors_of(run)) and time.monotonic() < end:
        time.sleep(0.02)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


class Env:
    def __init__(self, base: Path) -> None:
        from runtime.paths import Paths

        self.base = base
        self.paths = Paths(root=base / "root", run=base / "run")
        self.pids: set[int] = set()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            COMPOSER_ROOT=str(self.paths.root),
            COMPOSER_RUN=str(self.paths.run),
            COMPOSERD_ENGINE=FAKE,
            PYTHONPATH=str(REPO),
        )
        return env

    def note_pid_file(self) -> int:
        pid = int((self.paths.run / "composerd.pid").read_text())
        self.pids.add(pid)
        return pid

    @contextlib.contextmanager
    def foreground(self, env: dict[str, str] | None = None,
                   timeout: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
        """`python -m runtime.daemon --foreground` with `env` (default: self.env(), the fake
        engine), yielded once its socket exists. At the end, whatever happened in the block,
        it gets SIGTERM (SIGKILL after 15 s) and the monitor its engine started is gone.
        Its stderr goes to a file, shown if it dies before its socket appears."""
        err_path = self.base / f"foreground-{len(self.pids)}.err"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "runtime.daemon", "--foreground"],
                                    cwd=REPO, env=self.env() if env is None else env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err)
        self.pids.add(proc.pid)
        served = False
        try:
            end = time.monotonic() + timeout
            while not self.paths.socket.exists():
                if proc.poll() is not None:
                    pytest.fail(f"composerd exited with {proc.returncode} before its socket "
                                f"appeared: {err_path.read_text(errors='replace')}")
                if time.monotonic() > end:
                    pytest.fail(f"composerd made no socket in {timeout:g} s: "
                                f"{err_path.read_text(errors='replace')}")
                time.sleep(0.01)
            yield proc
            served = True
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            killed = stop_monitors(self.paths.run)
        assert not (served and killed), f"monitor left running after composerd: {killed}"


@pytest.fixture
def denv(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """A temp state root, every composerd started on it (and their monitors) stopped after."""
    base = Path(tempfile.mkdtemp(prefix="cmpd-", dir="/tmp"))
    e = Env(base)
    monkeypatch.setenv("COMPOSER_ROOT", str(e.paths.root))
    monkeypatch.setenv("COMPOSER_RUN", str(e.paths.run))
    monkeypatch.setenv("COMPOSERD_ENGINE", FAKE)
    monkeypatch.setenv("COMPOSER_TEST_HOOKS", "1")  # the starter passes the engine hook on
    try:
        yield e
    finally:
        pid_file = e.paths.run / "composerd.pid"
        if pid_file.exists():
            e.pids.add(int(pid_file.read_text()))
        for pid in e.pids:  # only daemons this test started, by pid
            if alive(pid):
                os.kill(pid, signal.SIGTERM)
                if not wait_gone(pid, 3):
                    os.kill(pid, signal.SIGKILL)
                    wait_gone(pid, 3)
        leftover = [p for p in e.pids if alive(p)]
        monitors = stop_monitors(e.paths.run)
        shutil.rmtree(base, ignore_errors=True)
        assert not leftover, f"composerd left running: {leftover}"
        assert not monitors, f"monitor left running: {monitors}"
