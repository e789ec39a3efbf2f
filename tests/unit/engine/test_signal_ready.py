"""A stop waits until the container's pid 1 can receive its signal: a pid-namespace init
drops one it neither catches nor blocks (sent while tini is still starting, it was lost)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime.engine import signal_deliverable


def test_a_process_that_catches_or_blocks_the_signal_can_receive_it() -> None:
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})\n"
            "print('ready', flush=True); time.sleep(30)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
        assert signal_deliverable(p.pid, signal.SIGTERM)  # caught
        assert signal_deliverable(p.pid, signal.SIGUSR2)  # blocked: queued
        assert not signal_deliverable(p.pid, signal.SIGUSR1)  # default: pid 1 would drop it
        assert signal_deliverable(p.pid, signal.SIGKILL)
    finally:
        p.kill()
        p.wait()
        assert p.stdout is not None
        p.stdout.close()


def test_a_process_waiting_in_sigtimedwait_can_receive_it() -> None:
    """tini's way: block everything, then wait in sigtimedwait. /proc shows the waited-for
    signals as neither blocked nor caught meanwhile (a stop once waited 2 s for nothing)."""
    code = ("import signal\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
            "print('ready', flush=True)\n"
            "signal.sigtimedwait({signal.SIGTERM}, 30)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 10
        while "sigtimedwait" not in Path(f"/proc/{p.pid}/wchan").read_text():
            assert time.monotonic() < deadline, "the child never waited"
            time.sleep(0.01)
        assert signal_deliverable(p.pid, signal.SIGTERM)
        p.send_signal(signal.SIGTERM)  # taken by sigtimedwait: the child ends normally
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        assert p.stdout is not None
        p.stdout.close()


def test_a_gone_process_is_sent_to_anyway() -> None:
    p = subprocess.Popen(["true"])
    p.wait()
    time.sleep(0.01)
    assert signal_deliverable(p.pid, signal.SIGTERM)
    assert os.path.exists("/proc/self/status")
