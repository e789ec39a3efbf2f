"""Seccomp filters on the real kernel, in busybox containers: Docker's default profile (an
allow-list), a custom JSON profile, unconfined; the init and an exec under the same filter."""
from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.process import sysnr
from runtime.process.config import DEFAULT_CAPS, ExecConfig, Security
from runtime.process.security import make
from tests.integration.process.conftest import Env, sh
from tests.integration.process.sysprobe import build

ADMIN = (*DEFAULT_CAPS, "SYS_ADMIN")
DEFAULT = make(seccomp_profile="default")


def field(status: str, name: str) -> int:
    m = re.search(rf"^{name}:\s+(\d+)", status, re.M)
    assert m, f"no {name} in {status!r}"
    return int(m.group(1))


@pytest.fixture(scope="module")
def sysprobe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = build(tmp_path_factory.mktemp("sysprobe") / "sysprobe")
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture
def probe_env(env: Env, sysprobe: Path) -> Env:
    shutil.copy(sysprobe, env.rootfs / "bin" / "sysprobe")
    return env


def probes(*calls: tuple[str | int, ...]) -> list[str]:
    """A script running sysprobe once per call, each answer on a line 'NAME: answer'."""
    lines = []
    for name, *args in calls:
        nr = sysnr.number(name) if isinstance(name, str) else name
        lines.append(f"echo -n '{name}: '; sysprobe {nr} {' '.join(str(a) for a in args)}")
    return sh("; ".join(lines))


def answers(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


CLASSES = (
    ("getppid",),  # allowed
    ("io_uring_setup", 1, 0),  # denied: EPERM from the filter (the kernel would say EFAULT)
    ("keyctl", 0, -3, 0),  # denied (KEYCTL_GET_KEYRING_ID of the session keyring works
    #                         without the filter)
    ("file_getattr", 0, 0, 0, 0, 0),  # in the table, newer than Docker's list: ENOSYS
    (sysnr.highest() + 1,),  # newer than the table: ENOSYS
    (1000,),
    ("clone3", 0, 0),  # Docker's ENOSYS for clone3 (libc falls back to clone)
    ("socket", 40, 1, 0),  # AF_VSOCK: EPERM
)


async def test_allowed_denied_and_newer_syscalls(probe_env: Env) -> None:
    status, out, err = await probe_env.run(probes(*CLASSES), security=DEFAULT)
    assert status.code == 0, out + err
    got = answers(out)
    assert got["getppid"] == "ok 1"  # the shell is pid 1
    assert got["io_uring_setup"] == "err 1 EPERM"
    assert got["keyctl"] == "err 1 EPERM"
    assert got["file_getattr"] == "err 38 ENOSYS"
    assert got[str(sysnr.highest() + 1)] == "err 38 ENOSYS"
    assert got["1000"] == "err 38 ENOSYS"
    assert got["clone3"] == "err 38 ENOSYS"
    assert got["socket"] == "err 1 EPERM"
    # the same calls unconfined: the kernel's own answers, none of them the filter's EPERM
    status, out, err = await probe_env.run(probes(*CLASSES))
    got = answers(out)
    assert got["io_uring_setup"] == "err 14 EFAULT", got
    assert got["keyctl"].startswith("ok "), got
    assert got["clone3"] == "err 22 EINVAL", got  # size 0: the kernel checks it
    assert got["1000"] == "err 38 ENOSYS", got


async def test_default_filter_denies_dockers_syscalls(env: Env) -> None:
    script = (
        "grep -E '^(Seccomp|NoNewPrivs)' /proc/self/status; "
        "unshare -U true && echo UNSHARE-OK; "
        "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m && echo MOUNT-OK; "
        "swapoff /nonexistent; echo swapoff=$?; "
        "reboot -f; echo reboot=$?; "
        "echo ALIVE")
    status, out, err = await env.run(sh("exec 2>&1; " + script), security=DEFAULT)
    assert status.code == 0, out + err
    assert field(out, "Seccomp") == 2
    assert "UNSHARE-OK" not in out and "MOUNT-OK" not in out, out
    assert "Operation not permitted" in out, out  # unshare(CLONE_NEWUSER) needs no capability
    assert re.search(r"swapoff=[1-9]", out) and re.search(r"reboot=[1-9]", out), out
    assert "ALIVE" in out


async def test_normal_programs_run_under_the_filter(env: Env) -> None:
    script = ("ip link set lo up && httpd -p 127.0.0.1:8080 -h /etc && "
              "wget -q -O - http://127.0.0.1:8080/hostname && ls / | grep -c . && "
              "linux32 true && linux64 true && (sleep 0.1 & wait) && echo DONE")
    sec = make((*DEFAULT_CAPS, "NET_ADMIN"), seccomp_profile="default")
    status, out, err = await env.run(sh(script), security=sec)
    assert status.code == 0, out + err
    assert "busybox" in out and "DONE" in out


async def test_sys_admin_lifts_mount_but_not_swapoff(env: Env) -> None:
    """Docker's rule: CAP_SYS_ADMIN allows mount/unshare; swapoff stays denied by the filter."""
    script = ("mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo MOUNT-OK; "
              "swapoff /nonexistent 2>&1; unshare -U true && echo UNSHARE-OK")
    status, out, _ = await env.run(sh(script), security=make(ADMIN, seccomp_profile="default"))
    assert "MOUNT-OK" in out and "UNSHARE-OK" in out, out
    assert "Operation not permitted" in out, out  # from the filter: the kernel would say ENOENT
    # without the filter the same capabilities reach the kernel's own answer
    status, out, _ = await env.run(sh("swapoff /nonexistent 2>&1"), security=make(ADMIN))
    assert "Operation not permitted" not in out and "No such file" in out, out


async def test_a_custom_profile_denies_one_syscall(probe_env: Env) -> None:
    """moby's JSON format: allow everything but mkdir/mkdirat (EACCES) and io_uring_setup."""
    profile = json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 13},
                     {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                      "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]}]})
    sec = make(seccomp_profile=profile)
    script = (f"mkdir /tmp/x 2>&1; echo mkdir=$?; unshare -U true && echo UNSHARE-OK; "
              f"echo -n 'a: '; sysprobe {sysnr.number('getppid')} 7; "
              f"echo -n 'b: '; sysprobe {sysnr.number('getppid')} 8")
    status, out, err = await probe_env.run(sh(script), security=sec)
    assert status.code == 0, out + err
    assert "Permission denied" in out and "mkdir=1" in out, out
    assert "UNSHARE-OK" in out  # not in this profile: the kernel decides
    assert answers(out)["a"] == "err 22 EINVAL" and answers(out)["b"] == "ok 0", out


async def test_unconfined_and_privileged_get_no_filter(env: Env) -> None:
    status, out, _ = await env.run(
        sh("grep Seccomp: /proc/self/status; unshare -U true && echo UNSHARE-OK"),
        security=make())
    assert field(out, "Seccomp") == 0 and "UNSHARE-OK" in out, out
    status, out, _ = await env.run(sh("grep Seccomp: /proc/self/status"), privileged=True,
                                   security=make(tuple(sorted(set(ADMIN)))))
    assert status.code == 0 and field(out, "Seccomp") == 0, out


async def test_filter_installed_with_and_without_no_new_privs(env: Env) -> None:
    """no_new_privs: installed last, unprivileged; without it: first, while still root."""
    for nnp in (True, False):
        for user in ("", "65534:65534"):
            status, out, err = await env.run(
                sh("grep -E '^(Seccomp|NoNewPrivs|Uid)' /proc/self/status; "
                   "unshare -U true 2>/dev/null && echo UNSHARE-OK; true"),
                security=make(seccomp_profile="default", no_new_privs=nnp), user=user)
            assert status.code == 0, out + err
            assert field(out, "Seccomp") == 2 and field(out, "NoNewPrivs") == int(nnp), out
            assert field(out, "Uid") == (65534 if user else 0)
            assert "UNSHARE-OK" not in out


async def test_filter_flags_reach_the_kernel(env: Env) -> None:
    """A profile with flags is installed with seccomp(2) (SECCOMP_FILTER_FLAG_LOG here)."""
    profile = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                          "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO"}]})
    status, out, _ = await env.run(sh("grep Seccomp: /proc/self/status; mkdir /x 2>&1"),
                                   security=make(seccomp_profile=profile))
    assert field(out, "Seccomp") == 2 and "Operation not permitted" in out, out


async def test_reaper_init_and_exec_get_the_filter(env: Env) -> None:
    cfg = env.config(["sleep", "30"], security=DEFAULT, init=True)
    launched = await env.launch(cfg)
    code, raw, _ = await env.launcher.exec_run(
        launched, ExecConfig(argv=("sh", "-c", "grep -h Seccomp: /proc/1/status /proc/self/status;"
                                   " unshare -U true 2>&1"), security=cfg.security), timeout=10)
    out = raw.decode()
    assert [int(v) for v in re.findall(r"Seccomp:\s+(\d)", out)] == [2, 2], out
    assert code != 0 and "Operation not permitted" in out
    code, raw, _ = await env.launcher.exec_run(
        launched, ExecConfig(argv=("grep", "Seccomp:", "/proc/self/status"),
                             security=Security()), timeout=10)
    assert field(raw.decode(), "Seccomp") == 0  # the launcher applies what it is given
