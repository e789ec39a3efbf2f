"""The default seccomp filter on the real kernel, in busybox containers."""
from __future__ import annotations

import re

from runtime.launchcfg import seccomp_profile
from runtime.process.config import DEFAULT_CAPS, ExecConfig
from runtime.types import ContainerSpec
from tests.integration.process.conftest import Env, sh

ADMIN = (*DEFAULT_CAPS, "SYS_ADMIN")


def field(status: str, name: str) -> int:
    m = re.search(rf"^{name}:\s+(\d+)", status, re.M)
    assert m, f"no {name} in {status!r}"
    return int(m.group(1))


async def test_default_filter_denies_dockers_syscalls(env: Env) -> None:
    script = (
        "grep -E '^(Seccomp|NoNewPrivs)' /proc/self/status; "
        "unshare -U true && echo UNSHARE-OK; "
        "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m && echo MOUNT-OK; "
        "swapoff /nonexistent; echo swapoff=$?; "
        "reboot -f; echo reboot=$?; "
        "echo ALIVE")
    status, out, err = await env.run(sh("exec 2>&1; " + script), seccomp="default")
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
    status, out, err = await env.run(sh(script), seccomp="default",
                                     capabilities=(*DEFAULT_CAPS, "NET_ADMIN"))
    assert status.code == 0, out + err
    assert "busybox" in out and "DONE" in out


async def test_sys_admin_lifts_mount_but_not_swapoff(env: Env) -> None:
    """Docker's rule: CAP_SYS_ADMIN allows mount/unshare; swapoff stays denied by the filter."""
    script = ("mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo MOUNT-OK; "
              "swapoff /nonexistent 2>&1; unshare -U true && echo UNSHARE-OK")
    status, out, _ = await env.run(sh(script), seccomp="default", capabilities=ADMIN)
    assert "MOUNT-OK" in out and "UNSHARE-OK" in out, out
    assert "Operation not permitted" in out, out  # from the filter: the kernel would say ENOENT
    # without the filter the same capabilities reach the kernel's own answer
    status, out, _ = await env.run(sh("swapoff /nonexistent 2>&1"), capabilities=ADMIN)
    assert "Operation not permitted" not in out and "No such file" in out, out


async def test_unconfined_and_privileged_get_no_filter(env: Env) -> None:
    unconfined = ContainerSpec(name="p-a-1", image="busybox", security_opt=("seccomp=unconfined",))
    privileged = ContainerSpec(name="p-b-1", image="busybox", privileged=True)
    assert seccomp_profile(unconfined) is None and seccomp_profile(privileged) is None
    status, out, _ = await env.run(
        sh("grep Seccomp: /proc/self/status; unshare -U true && echo UNSHARE-OK"),
        seccomp=seccomp_profile(unconfined))
    assert field(out, "Seccomp") == 0 and "UNSHARE-OK" in out, out
    status, out, _ = await env.run(sh("grep Seccomp: /proc/self/status"),
                                   seccomp=seccomp_profile(privileged), privileged=True,
                                   capabilities=tuple(sorted(set(ADMIN))))
    assert status.code == 0 and field(out, "Seccomp") == 0, out


async def test_filter_installed_with_and_without_no_new_privs(env: Env) -> None:
    """no_new_privs: installed last, unprivileged; without it: first, while still root."""
    for nnp in (True, False):
        for user in ("", "65534:65534"):
            status, out, err = await env.run(
                sh("grep -E '^(Seccomp|NoNewPrivs|Uid)' /proc/self/status; "
                   "unshare -U true 2>/dev/null && echo UNSHARE-OK; true"),
                seccomp="default", no_new_privs=nnp, user=user)
            assert status.code == 0, out + err
            assert field(out, "Seccomp") == 2 and field(out, "NoNewPrivs") == int(nnp), out
            assert field(out, "Uid") == (65534 if user else 0)
            assert "UNSHARE-OK" not in out


async def test_reaper_init_and_exec_get_the_filter(env: Env) -> None:
    cfg = env.config(["sleep", "30"], seccomp="default", init=True)
    launched = await env.launch(cfg)
    code, raw, _ = await env.launcher.exec_run(
        launched, ExecConfig(argv=("sh", "-c", "grep -h Seccomp: /proc/1/status /proc/self/status;"
                                   " unshare -U true 2>&1")), timeout=10)
    out = raw.decode()
    assert [int(v) for v in re.findall(r"Seccomp:\s+(\d)", out)] == [2, 2], out
    assert code != 0 and "Operation not permitted" in out
    code, raw, _ = await env.launcher.exec_run(
        launched, ExecConfig(argv=("grep", "Seccomp:", "/proc/self/status"), seccomp=None),
        timeout=10)
    assert field(raw.decode(), "Seccomp") == 0  # an explicit unconfined exec

    plain = await env.launch(env.config(["sleep", "30"]))
    code, raw, _ = await env.launcher.exec_run(
        plain, ExecConfig(argv=("grep", "Seccomp:", "/proc/self/status")), timeout=10)
    assert field(raw.decode(), "Seccomp") == 0  # inherits "none" from an unconfined container
