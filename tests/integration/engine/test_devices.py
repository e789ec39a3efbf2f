"""Device access through the real engine (busybox containers): the default allow-list keeps
the host's disks out even though CAP_MKNOD lets a container make their nodes; `devices:`
gives one in, with its own node and access; `device_cgroup_rules` opens numbers.

These scenarios run on whatever hierarchy the host has: here (hybrid, v1 devices controller)
and, imported by tests/host/devices, in the v2 VM, where the BPF filter does the work. They
use loop devices: safe to open and to write to while unbound, and openable by root on this
machine (whose own disk is not).
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from runtime.cgroups import CgroupError, DirCgroup
from runtime.engine import Engine
from runtime.errors import InvalidArgument
from runtime.hostdevices import host_devices
from runtime.types import ContainerSpec, DeviceMapping
from tests.loopdev import loop_devices

pytestmark = pytest.mark.usefixtures(loop_devices.__name__)

EPERM = "Operation not permitted"
OPENED = "opened"


def block_device(n: int = 0) -> tuple[str, int, int]:
    """(path, major, minor) of the host's /dev/loop<n>: a block device that is safe to open
    (unbound: reads return nothing) and that root may open on every host we test on."""
    path = f"/dev/loop{n}"
    st = os.stat(path)
    assert stat.S_ISBLK(st.st_mode), f"{path} is not a block device"
    return path, os.major(st.st_rdev), os.minor(st.st_rdev)


def opens(path: str) -> str:
    """Shell that prints OPENED when `path` can be opened for reading."""
    return f"head -c 1 {path} >/dev/null && echo {OPENED}"


async def run(engine: Engine, name: str, script: str, **kw: object) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `script` in a new busybox container."""
    await engine.create_container(ContainerSpec(name=name, image="busybox",
                                                command=("sh", "-c", script), **kw))  # type: ignore[arg-type]
    await engine.start_container(name)
    code = await engine.wait_container(name)
    lines = [line async for line in engine.logs(name)]
    return (code, "".join(x.data for x in lines if x.stream == "stdout"),
            "".join(x.data for x in lines if x.stream == "stderr"))


async def test_a_default_container_cannot_open_a_host_block_device(engine: Engine) -> None:
    path, major, minor = block_device()
    assert os.system(f"head -c 1 {path} >/dev/null") == 0  # control: the host can
    code, out, err = await run(engine, "nodisk", f"mknod /tmp/disk b {major} {minor} && echo made; "
                                                 + opens("/tmp/disk"))
    assert out == "made\n"  # CAP_MKNOD and the "b *:* m" rule: the node can be made ...
    assert err == f"head: /tmp/disk: {EPERM}\n" and code != 0  # ... but not opened


async def test_the_standard_nodes_work_in_a_default_container(engine: Engine) -> None:
    code, out, err = await run(engine, "std", "echo x > /dev/null && head -c 7 /dev/zero | wc -c && "
                                         "head -c 5 /dev/urandom | wc -c && "
                                         "head -c 3 /dev/random | wc -c && "
                                         "exec 3<>/dev/ptmx && echo ptmx-ok")
    assert (code, err) == (0, ""), err
    assert out.split() == ["7", "5", "3", "ptmx-ok"]


async def test_a_listed_device_gets_its_node_and_only_its_access(engine: Engine) -> None:
    path, major, minor = block_device(0)
    _, _, other = block_device(1)
    host = os.stat(path)
    code, out, err = await run(
        engine, "disk",
        "stat -c '%t:%T %a %u:%g' /dev/xvda && ls -l /dev/xvda | cut -c1 && "
        f"{opens('/dev/xvda')} && mknod /tmp/again b {major} {minor} && {opens('/tmp/again')}; "
        f"mknod /tmp/other b {major} {other} && {opens('/tmp/other')}; "
        "echo x > /dev/xvda || echo not-written",  # an unbound loop device: harmless if it were
        devices=(DeviceMapping(path, "/dev/xvda", "r"),))
    assert out.split("\n") == [
        f"{major:x}:{minor:x} {stat.S_IMODE(host.st_mode):o} {host.st_uid}:{host.st_gid}",
        "b",  # the host's type, numbers, mode and owner
        OPENED, OPENED,  # the rule is for the numbers, wherever the node is
        "not-written", ""]
    assert err.split("\n") == [
        f"head: /tmp/other: {EPERM}",  # another minor is not listed
        f"sh: can't create /dev/xvda: {EPERM}", ""]  # "r" only: no write


async def test_device_cgroup_rules_open_numbers(engine: Engine) -> None:
    _, major, minor = block_device()
    code, out, err = await run(engine, "rule", f"mknod /tmp/disk b {major} {minor} && "
                                          + opens("/tmp/disk"),
                          device_cgroup_rules=(f"b {major}:* r",))
    assert (code, out, err) == (0, f"{OPENED}\n", "")


async def test_a_privileged_container_is_not_filtered(engine: Engine) -> None:
    _, major, minor = block_device()
    code, out, err = await run(engine, "priv", f"mknod /tmp/disk b {major} {minor} && "
                                               + opens("/tmp/disk"), privileged=True)
    assert (code, out, err) == (0, f"{OPENED}\n", "")  # as Docker: privileged means every device


async def test_a_privileged_container_has_the_hosts_device_nodes(engine: Engine) -> None:
    path, major, minor = block_device()
    show = f"stat -c '%F %t:%T' {path} && " + opens(path)
    code, out, err = await run(engine, "privdev", show, privileged=True)
    assert (code, err) == (0, "")  # as Docker: the host's nodes at their paths, no mknod
    assert out == f"block special file {major:x}:{minor:x}\n{OPENED}\n"
    code, out, err = await run(engine, "plaindev", f"test -e {path} || echo absent")
    assert (code, out) == (0, "absent\n")


def test_host_devices_skips_pty_shm_and_helper_folders_and_the_console(tmp_path: Path) -> None:
    for d in ("pts", "shm", "mqueue", ".udev", "sub"):
        (tmp_path / d).mkdir()
    for name in ("pts/0", "shm/n", "mqueue/n", ".udev/n", "console", "ptmx", "sub/n", "n"):
        os.mknod(tmp_path / name, stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(tmp_path / name, 0o620)  # mknod honours the umask
    os.mknod(tmp_path / "blk", stat.S_IFBLK, os.makedev(7, 0))
    os.chmod(tmp_path / "blk", 0o660)
    (tmp_path / "regular").write_text("")
    found = [(n.path, n.type, n.major, n.minor, n.mode) for n in host_devices(str(tmp_path))]
    assert found == [(str(tmp_path / "blk"), "b", 7, 0, 0o660),
                     (str(tmp_path / "n"), "c", 1, 3, 0o620),
                     (str(tmp_path / "sub/n"), "c", 1, 3, 0o620)]


async def test_a_missing_device_fails_at_create_naming_it(engine: Engine) -> None:
    with pytest.raises(InvalidArgument) as e:
        await engine.create_container(ContainerSpec(
            name="proj-web-1", image="busybox", devices=(DeviceMapping("/dev/nosuch-composer"),)))
    assert str(e.value) == ("container proj-web-1: device /dev/nosuch-composer does not exist on "
                            "this host: connect it or remove it from devices")
    assert await engine.list_containers(all=True) == []


async def test_a_host_that_cannot_restrict_devices_does_not_start_the_container(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    why = "the kernel has no bpf(2) system call (CONFIG_BPF_SYSCALL is off)"

    def refuse(self: DirCgroup, extra: object = ()) -> None:
        raise CgroupError(f"cgroup {self.name}: cannot restrict device access on cgroup v2: {why}")

    monkeypatch.setattr(DirCgroup, "restrict_devices", refuse)  # what bpf.py reports, see
    await engine.create_container(ContainerSpec(name="nobpf", image="busybox", command=("true",)))
    with pytest.raises(CgroupError, match=re.escape(f"cannot restrict device access on cgroup v2: {why}")):
        await engine.start_container("nobpf")  # never an allow-all
    info = await engine.inspect_container("nobpf")
    assert info.state == "created" and not info.pid
    assert engine.cgroups.list() == []  # its cgroup is gone again
