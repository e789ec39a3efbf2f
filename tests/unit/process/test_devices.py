"""The service's device nodes in the launch sequence (recording fake kernel, no root)."""
from __future__ import annotations

import stat

import pytest

from runtime import serde
from runtime.errors import InvalidArgument
from runtime.process import rootfs
from runtime.process.config import DeviceNode, LaunchConfig, check
from runtime.process.syscalls import MS_BIND, RecordingSyscalls
from tests.unit.process.test_launch_order import fake, make_cfg, run_all

DISK = DeviceNode("/dev/xvda", "b", 254, 0, 0o640, 0, 6, "/dev/vda")
SERIAL = DeviceNode("/opt/ttyUSB0", "c", 188, 0, 0o660, 0, 20, "/dev/ttyUSB0")


def test_nodes_are_made_after_the_mounts_and_before_pivot_root() -> None:
    sc = fake()
    run_all(make_cfg(devices=(DISK, SERIAL)), sc)
    disk = sc.index("mknod", "/m/dev/xvda")
    assert sc.calls[disk] == ("mknod", "/m/dev/xvda", stat.S_IFBLK | 0o640, 254, 0)
    assert sc.calls[disk + 1] == ("chmod", "/m/dev/xvda", 0o640)  # mknod honours the umask
    assert sc.calls[disk + 2] == ("chown", "/m/dev/xvda", 0, 6)
    assert sc.calls[disk - 1] == ("unlink", "/m/dev/xvda")  # a file of the image gives way
    serial = sc.index("mknod", "/m/opt/ttyUSB0")
    assert sc.calls[serial] == ("mknod", "/m/opt/ttyUSB0", stat.S_IFCHR | 0o660, 188, 0)
    assert ("makedirs", "/m/opt") in sc.calls
    assert sc.index("mount", "/host/d", "/m/data") < disk  # over the user's mounts (as runc)
    assert sc.index("mount", "/state/hosts") < disk
    assert disk < sc.index("pivot_root")


def test_in_a_user_namespace_the_host_node_is_bound_instead() -> None:
    sc = fake()
    cfg = make_cfg(devices=(DISK,), namespaces=("user", "mnt", "uts", "ipc", "pid", "net", "cgroup"))
    rootfs.make_devices(cfg, sc)
    assert "mknod" not in sc.names()
    assert sc.calls[-2:] == [("touch", "/m/dev/xvda"), ("mount", "/dev/vda", "/m/dev/xvda", None,
                                                          MS_BIND, None)]


def test_a_directory_in_the_way_is_an_error() -> None:
    sc = RecordingSyscalls(dirs={"/m/dev/xvda"})
    with pytest.raises(OSError, match="device /dev/xvda: the container has a directory there"):
        rootfs.make_devices(make_cfg(devices=(DISK,)), sc)


@pytest.mark.parametrize("bad", [
    DeviceNode("dev/x", "c", 1, 3), DeviceNode("/dev", "c", 1, 3), DeviceNode("/", "c", 1, 3),
    DeviceNode("/dev/x", "p", 1, 3),  # type: ignore[arg-type]
])
def test_check_rejects_bad_nodes(bad: DeviceNode) -> None:
    with pytest.raises(InvalidArgument):
        check(make_cfg(devices=(bad,)))


def test_devices_survive_the_trip_to_the_fork_server() -> None:
    cfg = make_cfg(devices=(DISK, SERIAL))
    assert serde.from_dict(LaunchConfig, serde.to_dict(cfg)) == cfg
