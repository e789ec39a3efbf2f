"""`composer logs` as docker compose's: --tail 0 -f shows only new lines, long lines whole,
--since/--until, following a service across restarts, rotation by default (bounded files
that still read in order), logging drivers."""
from __future__ import annotations

import datetime
import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.conftest import Env, taken_down, write_stack


def _lines_of(proc: subprocess.Popen[str], out: list[str]) -> threading.Thread:
    def read() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, ""):
            out.append(line)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def _wait_for(cond, timeout: float = 60) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_tail_0_long_lines_since_until(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "tail"
    write_stack(d, """\
services:
  talker:
    image: busybox
    init: true
    command: sh -c 'echo old-1; echo old-2; head -c 40000 /dev/zero | tr "\\0" x; echo;
                    while [ ! -f /tmp/go ]; do sleep 0.1; done; echo new-1; sleep 600'
""")
    with taken_down(env, d) as procs:
        env.composer("up", "-d", cwd=d)
        assert _wait_for(lambda: "old-2" in env.composer("logs", cwd=d).stdout)
        time.sleep(1.5)
        middle = time.time()
        time.sleep(1.5)

        # a 40000-byte line is stored as three 16 KiB pieces; it comes back as one line
        out = env.composer("logs", "--no-log-prefix", cwd=d).stdout.splitlines()
        assert out[:2] == ["old-1", "old-2"] and out[2] == "x" * 40000 and len(out) == 3, out[3:]
        prefixed = env.composer("logs", cwd=d).stdout.splitlines()
        assert prefixed[2] == "talker-1  | " + "x" * 40000

        follow: list[str] = []
        proc = env.popen("logs", "-f", "--tail", "0", "--no-log-prefix", cwd=d)
        procs.append(proc)
        reader = _lines_of(proc, follow)
        time.sleep(3)  # it is following now
        env.composer("exec", "-T", "talker", "touch", "/tmp/go", cwd=d)
        assert _wait_for(lambda: "new-1\n" in follow), follow
        assert follow == ["new-1\n"]  # only the new line, nothing of the history
        proc.terminate()
        proc.wait(30)
        reader.join(5)

        # --since/--until: RFC 3339, Unix seconds, durations (as docker compose)
        rfc = datetime.datetime.fromtimestamp(middle, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for since in (rfc, f"{middle:.3f}", f"{int(time.time() - middle)}s"):
            got = env.composer("logs", "--no-log-prefix", "--since", since, cwd=d).stdout
            assert got == "new-1\n", (since, got[:200])
        got = env.composer("logs", "--no-log-prefix", "--until", rfc, cwd=d).stdout.splitlines()
        assert got[:2] == ["old-1", "old-2"] and "new-1" not in got
        bad = env.composer("logs", "--since", "yesterday", cwd=d, check=False)
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr
        env.composer("down", "-t", "1", cwd=d)


def test_logs_f_follows_the_service_across_restarts(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "restarts"
    write_stack(d, """\
services:
  flaky:
    image: busybox
    command: sh -c 'echo run-$$(date +%s%N); sleep 2; exit 1'
    restart: always
""")
    with taken_down(env, d) as procs:
        env.composer("up", "-d", cwd=d)
        seen: list[str] = []
        proc = env.popen("logs", "-f", "--no-log-prefix", cwd=d)
        procs.append(proc)
        reader = _lines_of(proc, seen)
        # the restart policy brings it back several times: logs -f stays with it
        assert _wait_for(lambda: len([x for x in seen if x.startswith("run-")]) >= 3, 90), seen
        assert proc.poll() is None
        before = len(seen)
        env.composer("restart", "-t", "1", cwd=d)  # and so does `composer restart`
        assert _wait_for(lambda: len(seen) > before, 60), seen
        assert proc.poll() is None
        env.composer("stop", "-t", "1", cwd=d)  # stopped for good: logs -f ends, as compose's
        assert proc.wait(60) == 0
        reader.join(5)
        runs = [x for x in seen if x.startswith("run-")]
        assert len(runs) == len(set(runs)) >= 4  # every run once, none repeated
        env.composer("down", "-t", "1", cwd=d)


def _log_files(env: Env) -> dict[str, int]:
    out = {}
    for p in (env.root / "containers").glob("*/container.log*"):
        out[f"{p.parent.name[:6]}/{p.name}"] = p.stat().st_size
    return out


def test_logs_are_rotated_by_default_and_read_in_order(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "rotate"
    write_stack(d, """\
services:
  chatty:
    image: busybox
    command: sh -c 'seq -w 1 2000000 | sed "s/$$/ ......................................................................................./"'
  small:
    image: busybox
    command: sh -c 'seq 1 3000'
    logging:
      driver: json-file
      options: {max-size: 20k, max-file: "4"}
  packed:
    image: busybox
    command: sh -c 'seq 1 3000'
    logging:
      options: {max-size: 20k, max-file: "3", compress: "true"}
""")
    with taken_down(env, d):
        env.composer("up", "-d", cwd=d)

        def last_line() -> str:
            out = env.composer("logs", "--tail", "1", "--no-log-prefix", "chatty", cwd=d).stdout
            return out.split(" ")[0]

        assert _wait_for(lambda: last_line() == "2000000", 900)
        files = _log_files(env)
        # 200 MB written (~340 MB as json-file): the default cap keeps 5 files of 20 MB
        assert sum(files.values()) < 110_000_000, files
        assert any(k.endswith("container.log.4") for k in files), files
        last = env.composer("logs", "--tail", "2", "--no-log-prefix", "chatty", cwd=d).stdout
        assert [x.split()[0] for x in last.splitlines()] == ["1999999", "2000000"]

        for svc in ("small", "packed"):
            got = env.composer("logs", "--no-log-prefix", svc, cwd=d).stdout.split()
            nums = [int(x) for x in got]
            assert nums == list(range(nums[0], 3001)) and nums[0] > 1, (svc, nums[:5])  # in order
        names = sorted(_log_files(env))
        assert any(n.endswith(".log.2.gz") for n in names), names  # packed: compressed
        env.composer("down", "-t", "1", cwd=d)


def test_logging_drivers(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "drivers"
    write_stack(d, """\
services:
  quiet:
    image: busybox
    command: sh -c 'echo not-kept; sleep 1'
    logging: {driver: none}
""")
    with taken_down(env, d):
        up = env.composer("up", cwd=d, timeout=120)
        assert "quiet-1  | not-kept" in up.stdout  # attached up shows it: attach needs no log
        logs = env.composer("logs", cwd=d)
        assert "not-kept" not in logs.stdout and "logging driver is none" in logs.stderr
        env.composer("down", "-t", "1", cwd=d)
    bad_dir = tmp_path / "bad"  # `config` alone: nothing is created
    write_stack(bad_dir, "services:\n  s:\n    image: busybox\n    logging: {driver: syslog}\n")
    bad = env.composer("config", cwd=bad_dir, check=False)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1, bad.stderr
    assert "syslog" in bad.stderr and "json-file" in bad.stderr
    write_stack(bad_dir, "services:\n  s:\n    image: busybox\n    logging:\n"
                         "      options: {max-file: '0'}\n")
    bad = env.composer("config", cwd=bad_dir, check=False)
    assert bad.returncode != 0 and "max-file cannot be less than 1" in bad.stderr
