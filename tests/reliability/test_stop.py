"""Stopping what does not want to stop: SIGTERM ignored, pid 1 without a handler, escapees."""
from __future__ import annotations

import os
import time

from tests import leaks as snapshots
from tests.reliability.conftest import Rig
from tests.reliability.figures import record

STUBBORN = """
services:
  trapper:
    image: busybox
    init: false
    stop_grace_period: 1s
    command: ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"]
  sleeper:
    image: busybox
    init: false
    stop_grace_period: 1s
    command: ["sleep", "600"]
"""

# children that ignore every catchable signal, one double-forked (reparented to pid 1), one in
# its own session (setsid), one nohup'd by hand in the background (HUP ignored, stdio
# detached: the busybox-static image has no `nohup` applet, so a `nohup` line never ran);
# the shell itself ignores TERM too
ESCAPEES = """
services:
  forker:
    image: busybox
    init: false
    stop_grace_period: 1s
    command:
      - sh
      - -c
      - |
        trap '' TERM HUP INT QUIT USR1 USR2
        ( ( trap '' TERM HUP INT; exec sleep 1001 ) & ) &
        setsid sh -c "trap '' TERM HUP INT; while :; do sleep 1; done" &
        sh -c "trap '' TERM HUP INT; exec sleep 1002" </dev/null >/dev/null 2>&1 &
        ( setsid sh -c "( trap '' TERM HUP; exec sleep 1003 ) &" & )
        while :; do sleep 1; done
"""


def _cgroup_procs(rig: Rig) -> set[int]:
    return snapshots.cgroup_pids(rig.scope.cgroup_parent)


def test_sigterm_ignored_is_killed_after_grace_period(rig: Rig) -> None:
    d = rig.project_dir(STUBBORN)
    rig.composer("up", "-d", cwd=d)
    time.sleep(0.5)  # let the shell install its trap
    t0 = time.monotonic()
    rig.composer("ps", cwd=d)
    cli_overhead = time.monotonic() - t0
    times: dict[str, float] = {}
    for svc in ("trapper", "sleeper"):
        t0 = time.monotonic()
        rig.composer("stop", svc, cwd=d)
        times[svc] = time.monotonic() - t0
    rows = {r["Service"]: r for r in rig.ps(d, "-a")}
    record("stop_grace_period", grace_s=1.0, cli_overhead_s=round(cli_overhead, 3),
           **{f"stop_{k}_s": round(v, 3) for k, v in times.items()})
    for svc, t in times.items():
        assert rows[svc]["State"] == "exited", rows[svc]
        assert rows[svc]["ExitCode"] == 137, rows[svc]  # SIGKILL, not a clean exit on TERM
        # ≈ 1 s grace + one CLI call, far from Docker's default 10 s
        assert 1.0 <= t < 1.0 + cli_overhead + 2.0, f"{svc}: stop took {t:.2f}s"
    assert not _cgroup_procs(rig)
    rig.composer("down", cwd=d)


def test_forked_children_that_ignore_signals_are_removed(rig: Rig) -> None:
    d = rig.project_dir(ESCAPEES)
    rig.composer("up", "-d", cwd=d)
    deadline = time.monotonic() + 10
    cmds: list[str] = []
    # each escapee a process of its own (`sleep 100N` exactly: the script's own command line,
    # and its subshells' before they exec, hold those words too: matching them, the wait
    # ended at once, before the children were forked, when `up -d` returned quickly)
    while time.monotonic() < deadline:
        cmds = [snapshots.cmdline(p) or "" for p in _cgroup_procs(rig)]
        if all(f"sleep {n}" in cmds for n in (1001, 1002, 1003)) and len(cmds) >= 6:
            break
        time.sleep(0.2)
    # the escapees are there (and in the container's cgroup) before we stop it
    for n in (1001, 1002, 1003):
        assert f"sleep {n}" in cmds, cmds
    assert len(cmds) >= 6, cmds
    t0 = time.monotonic()
    rig.composer("down", cwd=d)
    took = time.monotonic() - t0
    record("stop_escapees", processes_in_container=len(cmds), down_s=round(took, 3))
    assert not _cgroup_procs(rig)
    left = [f"{p} {snapshots.cmdline(p)}" for p in snapshots.scope_pids(rig.scope)
            if "sleep 100" in (snapshots.cmdline(p) or "")]
    assert not left, left
    # nothing anywhere on the host still runs our marker commands
    stray = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            c = snapshots.cmdline(int(p)) or ""
            if c in ("sleep 1001", "sleep 1002", "sleep 1003"):
                stray.append(f"{p} {c}")
    assert not stray, stray
