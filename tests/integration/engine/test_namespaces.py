"""ipc / pid / uts / cgroup namespaces on the real kernel: the container's own (default), the
host's, or another container's (joined with setns), as Docker's IpcMode / PidMode / UTSMode /
CgroupnsMode."""
from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from runtime.engine import Engine
from runtime.errors import Conflict, InvalidArgument
from runtime.types import ContainerSpec


def host_ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


async def run(engine: Engine, name: str, script: str, **kw: object) -> str:
    await engine.create_container(ContainerSpec(name=name, image="busybox", command=("sh", "-c", script),
                                                **kw))  # type: ignore[arg-type]
    await engine.start_container(name)
    code = await engine.wait_container(name)
    out = "".join([line.data async for line in engine.logs(name)])
    assert code == 0, out
    return out


async def daemon(engine: Engine, name: str, script: str = "exec sleep 600", **kw: object) -> None:
    await engine.create_container(ContainerSpec(name=name, image="busybox", init=True,
                                                command=("sh", "-c", script), **kw))  # type: ignore[arg-type]
    await engine.start_container(name)


async def exec_out(engine: Engine, name: str, script: str) -> str:
    for _ in range(50):
        res = await engine.exec_run(name, ["sh", "-c", script])
        if res.exit_code == 0:
            return res.stdout
        await asyncio.sleep(0.05)
    raise AssertionError(res.stderr)


async def test_ipc_shareable_and_joined_share_sysv_and_posix_shm(engine: Engine) -> None:
    await daemon(engine, "donor", "echo hello > /dev/shm/seg; exec sleep 600", ipc_mode="shareable")
    donor_ns = await exec_out(engine, "donor", "test -f /dev/shm/seg && readlink /proc/self/ns/ipc")
    out = await run(engine, "joiner", "readlink /proc/self/ns/ipc; cat /dev/shm/seg", ipc_mode="container:donor")
    assert out.splitlines() == [donor_ns.strip(), "hello"]
    own = await run(engine, "own", "readlink /proc/self/ns/ipc; ls /dev/shm | wc -l")
    assert own.splitlines()[0] not in (donor_ns.strip(), host_ns("ipc")) and own.splitlines()[1] == "0"
    await daemon(engine, "private")
    with pytest.raises(Conflict, match="it is not shareable"):
        await run(engine, "j2", "true", ipc_mode="container:private")
    # the shared /dev/shm is the donor's host tmpfs: gone when the donor stops
    donor = engine.table.get("donor")
    assert os.path.ismount(donor.dir / "shm")
    await engine.stop_container("donor", timeout=5)
    assert not (donor.dir / "shm").exists()


async def test_ipc_host_uses_the_hosts_namespace_and_dev_shm(engine: Engine) -> None:
    name = f"cmp-test-{uuid.uuid4().hex[:8]}"
    path = f"/dev/shm/{name}"
    with open(path, "w") as f:
        f.write("from-host\n")
    try:
        out = await run(engine, "h", f"readlink /proc/self/ns/ipc; cat /dev/shm/{name}", ipc_mode="host")
    finally:
        os.unlink(path)
    assert out.splitlines() == [host_ns("ipc"), "from-host"]


async def test_pid_host_and_pid_of_another_container(engine: Engine) -> None:
    out = await run(engine, "ph", "readlink /proc/self/ns/pid; echo $$", pid_mode="host")
    ns, pid = out.splitlines()
    assert ns == host_ns("pid") and int(pid) > 1  # not pid 1: the host's namespace
    await daemon(engine, "target", "exec sleep 600")
    target_ns = await exec_out(engine, "target", "readlink /proc/self/ns/pid")
    out = await run(engine, "pj", "readlink /proc/self/ns/pid; ps -o args", pid_mode="container:target")
    assert out.splitlines()[0] == target_ns.strip()
    assert "sleep 600" in out  # the target's process is visible
    own = await run(engine, "po", "readlink /proc/self/ns/pid; echo $$")
    assert own.splitlines()[0] not in (host_ns("pid"), target_ns.strip()) and own.splitlines()[1] == "1"
    await engine.create_container(ContainerSpec(name="late", image="busybox", command=("true",),
                                                pid_mode="container:stopped-one"))
    with pytest.raises(Exception, match="stopped-one"):
        await engine.start_container("late")


async def test_uts_host_uses_the_hosts_name_and_never_sets_it(engine: Engine) -> None:
    before = socket.gethostname()
    out = await run(engine, "u", "readlink /proc/self/ns/uts; hostname; cat /etc/hostname", uts_mode="host")
    assert out.splitlines() == [host_ns("uts"), before, before]
    assert socket.gethostname() == before
    with pytest.raises(InvalidArgument, match="hostname and uts_mode host conflict"):
        await engine.create_container(ContainerSpec(name="u2", image="busybox", hostname="x", uts_mode="host"))
    own = await run(engine, "u3", "readlink /proc/self/ns/uts; hostname", hostname="mine")
    assert own.splitlines() == [own.splitlines()[0], "mine"] and own.splitlines()[0] != host_ns("uts")


async def test_cgroup_namespace_host_or_private(engine: Engine) -> None:
    host = await run(engine, "ch", "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup", cgroupns_mode="host")
    lines = host.splitlines()
    assert lines[0] == host_ns("cgroup")
    assert any("composer" in line for line in lines[1:])  # the full path from the host's root
    private = await run(engine, "cp", "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup",
                        cgroupns_mode="private")
    lines = private.splitlines()
    assert lines[0] != host_ns("cgroup") and not any("composer" in line for line in lines[1:])
