"""A test run killed outright leaves its world behind; the next run's sweep removes it, and
never touches the world of a run that is still alive (tests/sweep.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.leaks import CGROUP_ROOT, Scope, take
from tests.sweep import REPO, sweep

# a stand-in for a pytest run: claims a world, starts a stack in it, then waits to be killed
KILLED_RUN = textwrap.dedent("""
    import os, subprocess, sys, time
    from tests.sweep import claim
    base, parent = claim("cmpkilled", "e2e")
    (base / "stack").mkdir()
    (base / "stack" / "compose.yaml").write_text(
        "services:\\n  idle:\\n    image: busybox\\n    command: sleep 600\\n")
    env = {**os.environ, "COMPOSER_ROOT": str(base / "root"), "COMPOSER_RUN": str(base / "run"),
           "COMPOSER_CGROUP_PARENT": parent, "PYTHONPATH": os.getcwd()}
    subprocess.run([sys.executable, "-m", "composer.cli", "up", "-d"], cwd=base / "stack",
                   env=env, check=True, capture_output=True, timeout=120)
    print(base, parent, flush=True)
    time.sleep(600)
""")


def _parent_dirs(parent: str) -> list[Path]:
    return [p for p in [CGROUP_ROOT / parent, *CGROUP_ROOT.glob(f"*/{parent}")] if p.is_dir()]


def test_the_world_of_a_killed_run_is_swept_and_a_live_one_is_not() -> None:
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    base = None
    try:
        assert run.stdout is not None
        line = run.stdout.readline()
        assert line, run.stderr.read() if run.stderr else ""
        base_s, parent = line.split()
        base = Path(base_s)
        scope = Scope.for_base(base, parent)
        scope.learn()
        held = take(scope)
        assert held.links and held.cgroups and held.processes and held.netns, held

        assert not any(str(base) in s for s in sweep())  # its owner lives: not touched
        assert take(scope).processes == held.processes
        assert base.is_dir()

        os.kill(run.pid, signal.SIGKILL)  # no teardown runs; composerd and the stack stay
        run.wait()
        assert take(scope).processes, "the stack should outlive its killed run"
        swept = sweep()
        assert any(str(base) in s for s in swept), swept
        after = take(scope)
        assert after.total() == 0, after
        assert not base.exists()
        assert not _parent_dirs(parent)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for f in (run.stdout, run.stderr):
            if f is not None:
                f.close()
        if base is not None and base.exists():
            sweep()  # the test failed midway: its world is a killed run's now
