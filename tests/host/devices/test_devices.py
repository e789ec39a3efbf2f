"""Device control on a pure cgroup v2 host: the engine's containers are held by our BPF
device filter (there is no devices.allow on v2).

The scenarios of tests/integration/engine/test_devices.py run here unchanged (on the native
host they exercise cgroup v1's devices controller), plus what only this host can show: the
filter is one program on each container's cgroup, and the host's own disk, which root can
read here, stays closed to a default container. Loop devices come from tests/loopdev.py
(the VM's kernel has loop as a module nothing loaded).
"""
from __future__ import annotations

import os
import stat

import pytest

from runtime.cgroups import bpf
from runtime.engine import Engine
from runtime.types import ContainerSpec, DeviceMapping
from tests.integration.engine.test_devices import (
    EPERM,
    run,
    test_a_default_container_cannot_open_a_host_block_device,
    test_a_listed_device_gets_its_node_and_only_its_access,
    test_a_missing_device_fails_at_create_naming_it,
    test_a_privileged_container_has_the_hosts_device_nodes,
    test_a_privileged_container_is_not_filtered,
    test_device_cgroup_rules_open_numbers,
    test_the_standard_nodes_work_in_a_default_container,
)
from tests.loopdev import loop_devices

pytestmark = pytest.mark.usefixtures(loop_devices.__name__)

__all__ = [  # collected here too, as host tests
    "loop_devices",
    "test_a_default_container_cannot_open_a_host_block_device",
    "test_a_listed_device_gets_its_node_and_only_its_access",
    "test_a_missing_device_fails_at_create_naming_it",
    "test_a_privileged_container_has_the_hosts_device_nodes",
    "test_a_privileged_container_is_not_filtered",
    "test_device_cgroup_rules_open_numbers",
    "test_the_standard_nodes_work_in_a_default_container",
]


def root_disk() -> tuple[str, int, int]:
    """(path, major, minor) of the block device holding /."""
    dev = os.stat("/").st_dev
    for name in sorted(os.listdir("/dev")):
        st = os.lstat(f"/dev/{name}")
        if stat.S_ISBLK(st.st_mode) and st.st_rdev == dev:
            return f"/dev/{name}", os.major(dev), os.minor(dev)
    raise AssertionError(f"no block device {os.major(dev)}:{os.minor(dev)} in /dev")


async def test_each_container_cgroup_holds_one_device_program(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(name="prog", image="busybox", command=("sleep", "300"),
                                                stop_grace_period=0.5))
    info = await engine.start_container("prog")
    cg = engine.cgroups.open(info.id)
    assert cg.version == "v2"
    [first] = bpf.attached_device_programs(cg.path("devices"))
    await engine.stop_container("prog", timeout=0.5)
    await engine.start_container("prog")  # a restart attaches anew: still one program
    assert len(bpf.attached_device_programs(engine.cgroups.open(info.id).path("devices"))) == 1


async def test_the_hosts_disk_is_closed_unless_listed(engine: Engine) -> None:
    path, major, minor = root_disk()
    with open(path, "rb") as disk:  # control: root on the host reads it
        assert len(disk.read(512)) == 512
    _, out, err = await run(engine, "closed", f"mknod /tmp/disk b {major} {minor} && "
                                              "head -c 512 /tmp/disk | wc -c")
    assert (out, err) == ("0\n", f"head: /tmp/disk: {EPERM}\n")
    _, out, err = await run(engine, "listed", "head -c 512 /dev/xvda | wc -c",
                            devices=(DeviceMapping(path, "/dev/xvda", "r"),))
    assert (out, err) == ("512\n", "")
