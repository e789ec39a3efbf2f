"""AppArmor on a typical user host (Debian 12: AppArmor on, the apparmor package installed),
through the installed CLI and the composerd it starts: every container process -- pid 1, an
exec, a health check -- runs under composer-default; what the profile denies is denied where
the other layers would allow it; apparmor=unconfined and apparmor=NAME are honoured; a profile
that is not loaded is one clear error."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host.test_smoke import composer

STACK = """\
name: hostaa
services:
  confined:
    image: busybox
    command: sleep 3600
    healthcheck:
      test: ["CMD-SHELL", "grep -qx 'composer-default (enforce)' /proc/self/attr/current"]
      interval: 200ms
      retries: 100
  open:
    image: busybox
    command: sleep 3600
    security_opt: ["apparmor=unconfined"]
  admin:
    image: busybox
    command: sleep 3600
    cap_add: [SYS_ADMIN]
    security_opt: ["seccomp=unconfined"]
  admin-open:
    image: busybox
    command: sleep 3600
    cap_add: [SYS_ADMIN]
    security_opt: ["seccomp=unconfined", "apparmor=unconfined"]
  named:
    image: busybox
    command: sleep 3600
    security_opt: ["apparmor=NAMED"]
"""
NAMED = f"composer-test-{os.getpid()}"
# a profile an admin could load: allows everything our tests do (its name is what counts)
NAMED_PROFILE = f"""profile {NAMED} flags=(attach_disconnected,mediate_deleted) {{
  file, network, capability, signal, ptrace, umount, unix,
}}
"""


def loaded() -> dict[str, str]:
    out = {}
    for line in Path("/sys/kernel/security/apparmor/profiles").read_text().splitlines():
        name, _, mode = line.rpartition(" (")
        out[name] = mode.rstrip(")")
    return out


def ours() -> set[str]:
    found = {f"link {n}" for n in os.listdir("/sys/class/net") if n.startswith("cmp")}
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        found |= {f"cgroup {dirpath}/{d}" for d in dirnames if "hostaa" in d}
    with open("/proc/self/mountinfo") as f:
        found |= {f"mount {line.split()[4]}" for line in f if "hostaa" in line}
    return found


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Path]:
    assert Path("/sys/module/apparmor/parameters/enabled").read_text().startswith("Y")
    profile = tmp_path / "named.apparmor"
    profile.write_text(NAMED_PROFILE)
    subprocess.run(["apparmor_parser", "-Kr", str(profile)], check=True)
    (tmp_path / "compose.yaml").write_text(STACK.replace("NAMED", NAMED))
    warm_up(tmp_path)
    before = ours()
    try:
        yield tmp_path
    finally:
        composer("down", "-t", "1", cwd=tmp_path, check=False)
        subprocess.run(["apparmor_parser", "-R", str(profile)], check=False)
    assert NAMED not in loaded()
    left = ours() - before
    assert not left, f"down left things behind: {sorted(left)}"


def warm_up(cwd: Path) -> None:
    """Have composerd running before the test: on a loaded emulated host its first start can
    outlast the CLI's 60 s wait (it goes on starting; the next command finds it). What this
    file tests is AppArmor, not start-up time (test_smoke.py covers that)."""
    for _ in range(5):
        if composer("ps", cwd=cwd, check=False).returncode == 0:
            return
    raise AssertionError("composerd did not come up in 5 tries")


def exec_(cwd: Path, service: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return composer("exec", "-T", service, *cmd, cwd=cwd, check=False)


def test_every_process_runs_under_composer_default(stack: Path) -> None:
    composer("up", "-d", "--wait", cwd=stack)  # --wait: the health check ran confined
    assert loaded().get("composer-default") == "enforce"  # composerd loaded it

    for path in ("/proc/1/attr/current", "/proc/self/attr/current"):  # pid 1, then the exec
        assert exec_(stack, "confined", "cat", path).stdout.strip() == \
            "composer-default (enforce)", path
    assert exec_(stack, "open", "cat", "/proc/self/attr/current").stdout.strip() == "unconfined"
    assert exec_(stack, "named", "cat", "/proc/1/attr/current").stdout.strip() == \
        f"{NAMED} (enforce)"
    assert exec_(stack, "named", "cat", "/proc/self/attr/current").stdout.strip() == \
        f"{NAMED} (enforce)"

    # /proc/kcore is masked (/dev/null): readable, empty -- unless the profile denies it
    denied = exec_(stack, "confined", "cat", "/proc/kcore")
    assert denied.returncode != 0 and "Permission denied" in denied.stderr, denied
    assert exec_(stack, "open", "cat", "/proc/kcore").returncode == 0

    # mount with CAP_SYS_ADMIN and no seccomp filter: only AppArmor stands in the way
    mount = "exec 2>&1; mkdir -p /m && mount -t tmpfs none /m && echo MOUNTED"
    res = exec_(stack, "admin", "sh", "-c", mount)
    assert "MOUNTED" not in res.stdout and "Permission denied" in res.stdout, res
    assert "MOUNTED" in exec_(stack, "admin-open", "sh", "-c", mount).stdout


def test_a_profile_that_is_not_loaded_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "name: hostaa2\nservices:\n  x:\n    image: busybox\n    command: sleep 5\n"
        "    security_opt: [apparmor=no-such-profile]\n")
    warm_up(tmp_path)
    try:
        res = composer("up", "-d", cwd=tmp_path, check=False)
        assert res.returncode != 0
        assert "AppArmor profile 'no-such-profile' is not loaded" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    finally:
        composer("down", "-t", "1", cwd=tmp_path, check=False)
