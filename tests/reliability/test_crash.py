"""kill -9 of composerd at random points of `up` and of `down` (seeded; the seed is printed).

After each kill the next CLI call starts a new composerd, which must adopt what runs; every
process in our cgroups must belong to a container that `ps -a` shows, and the only helper
outside them is the monitor (no process running without the engine knowing it); `up -d` converges again and `down` leaves
the host as it was before the run.
"""
from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from tests import leaks as snapshots
from tests.reliability.conftest import Rig
from tests.reliability.figures import record, summary
from tests.reliability.test_cycles import STACK

RUNS = int(os.environ.get("COMPOSER_RELIABILITY_CRASH_RUNS", "20"))
RUNNING = ("running", "paused", "restarting")


def _seed() -> int:
    env = os.environ.get("COMPOSER_RELIABILITY_SEED")
    return int(env) if env else random.SystemRandom().randrange(2**32)


def engine_pids(rig: Rig) -> set[int]:
    """The live composerd, its children and the monitor it holds a session with: expected,
    not leaks."""
    pid = rig.env.daemon_pid()
    if not pid or snapshots.cmdline(pid) is None:
        return set()
    out = {pid}
    sock = f"runtime.process.monitor {rig.env.run}/monitor.sock"
    for p in os.listdir("/proc"):
        if p.isdigit() and (snapshots.ppid(int(p)) == pid
                            or (snapshots.cmdline(int(p)) or "").endswith(sock)):
            out.add(int(p))
    return out


def unknown_processes(rig: Rig, d: Path) -> list[str]:
    """Processes of our scope that no container `ps -a` lists as running can account for."""
    rows = rig.ps(d, "-a")
    running = {r["ID"] for r in rows if r["State"] in RUNNING}
    monitors = {int(rig.container_state(cid).get("monitor_pid") or 0) for cid in running}
    states = {r["ID"]: r["State"] for r in rows}
    problems: list[str] = []
    in_cgroups: set[int] = set()
    orphans: dict[str, set[int]] = {}
    for cg in snapshots.cgroup_dirs(rig.scope.cgroup_parent):
        try:
            pids = {int(x) for x in (cg / "cgroup.procs").read_text().split()}
        except OSError:
            continue
        in_cgroups |= pids
        if pids and cg.name not in running:
            orphans.setdefault(cg.name, set()).update(pids)
    for cid, pids in sorted(orphans.items()):
        record_state = rig.container_state(cid)
        cmds = [f"{p} {snapshots.cmdline(p)}" for p in sorted(pids)]
        problems.append(
            f"container {cid[:12]}: ps -a says {states.get(cid, 'nothing')!r}, state.json says "
            f"{record_state.get('state', 'nothing')!r} (monitor_pid {record_state.get('monitor_pid')}), "
            f"process.json {'exists' if (rig.env.root / 'containers' / cid / 'process.json').exists() else 'missing'}"
            f", but its cgroup runs {cmds}")
    engine = engine_pids(rig)
    run_dir = str(rig.env.run)
    for pid in snapshots.scope_pids(rig.scope) - in_cgroups - engine:
        cmd = snapshots.cmdline(pid)
        if not cmd:  # exited meanwhile, or a zombie waiting for init
            continue
        if run_dir in cmd and pid not in monitors:
            problems.append(f"{pid} unknown monitor or helper: {cmd}")
    return problems


def _kill_daemon_after(rig: Rig, d: Path, verb: tuple[str, ...], delay: float) -> tuple[int, str]:
    pid = rig.env.daemon_pid()
    assert pid, "composerd is not running"
    proc = rig.env.popen(*verb, cwd=d)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    _out, err = proc.communicate(timeout=120)
    for _ in range(100):  # gone from the process table (reaped by init)
        if snapshots.cmdline(pid) in (None, ""):
            break
        time.sleep(0.02)
    return proc.returncode, err


def test_kill_daemon_during_up_and_down(rig: Rig) -> None:
    seed = _seed()
    print(f"\ncrash test seed: {seed} (COMPOSER_RELIABILITY_SEED={seed} to replay)")
    rng = random.Random(seed)
    d = rig.project_dir(STACK)
    # calibrate: kill points fall inside the CLI's own run of `up` / `down` (its start-up,
    # the requests, the engine's work), scaled to how long they take on this machine
    t0 = time.monotonic()
    rig.composer("up", "-d", cwd=d)
    t_up = time.monotonic() - t0
    t0 = time.monotonic()
    rig.composer("down", cwd=d)
    t_down = time.monotonic() - t0
    base_procs = engine_pids(rig)
    before = rig.snapshot()
    failures: list[str] = []
    recoveries: list[float] = []
    cli_failed = 0
    for i in range(RUNS):
        phase = "up" if i % 2 == 0 else "down"
        delay = rng.uniform(0.25, 1.0) * (t_up if phase == "up" else t_down)
        if phase == "down":
            rig.composer("up", "-d", cwd=d)
            rig.scope.learn()
            code, err = _kill_daemon_after(rig, d, ("down",), delay)
        else:
            code, err = _kill_daemon_after(rig, d, ("up", "-d"), delay)
        cli_failed += code != 0
        where = f"run {i} ({phase}, kill after {delay:.3f}s, seed {seed})"
        if "Traceback" in err:
            failures.append(f"{where}: the CLI printed a traceback:\n{err}")
        t0 = time.monotonic()
        problems = unknown_processes(rig, d)  # the first CLI call starts a new composerd
        recoveries.append(time.monotonic() - t0)
        if problems:
            failures.append(f"{where}: processes the engine does not know: {problems}")
        up = rig.composer("up", "-d", cwd=d, check=False)
        if up.returncode != 0:
            failures.append(f"{where}: up -d after the crash failed: {up.stderr.strip()[-500:]}")
        else:
            rig.scope.learn()
            states = sorted(r["State"] for r in rig.ps(d))
            if states != ["running"] * 5:
                failures.append(f"{where}: after recovery up -d the stack is {states}")
        down = rig.composer("down", cwd=d, check=False)
        if down.returncode != 0:
            failures.append(f"{where}: down after the crash failed: {down.stderr.strip()[-500:]}")
        after = rig.snapshot()
        expected = {f"{p} {snapshots.cmdline(p)}" for p in engine_pids(rig) | base_procs}
        leaks = {k: [x for x in v if not (k == "processes" and x in expected)]
                 for k, v in after.leaks_since(before).items()}
        leaks = {k: v for k, v in leaks.items() if v}
        if leaks:
            failures.append(f"{where}: down left {leaks}")
            rig.composer("down", cwd=d, check=False)
    record("kill_composerd", seed=seed, faults=RUNS, cli_failed=cli_failed,
           calibration_s={"up": round(t_up, 3), "down": round(t_down, 3)},
           problems=len(failures), first_call_after_crash_s=summary(recoveries))
    assert not failures, "\n".join(failures)


def test_kill_daemon_as_the_first_container_process_appears(rig: Rig) -> None:
    """The narrowest window, hit on purpose: the container's process is in its cgroup, the
    engine has not yet recorded it as running. The next composerd must know it or end it."""
    d = rig.project_dir(STACK)
    rig.composer("ps", cwd=d)
    pid = rig.env.daemon_pid()
    assert pid
    proc = rig.env.popen("up", "-d", cwd=d)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until a container's command runs (exec done)
        if any(snapshots.cmdline(p) == "sleep 600" for p in snapshots.cgroup_pids(rig.scope.cgroup_parent)):
            break
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode != 0, "up finished before the kill: the window was missed"
    problems = unknown_processes(rig, d)
    rig.composer("down", cwd=d)
    assert not problems, problems
