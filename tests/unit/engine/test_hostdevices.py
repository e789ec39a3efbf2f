"""`devices:` looked up on the host (no root: /dev/null and friends exist everywhere, and a
directory of devices is made of symlinks into /dev, which are followed as Docker does)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runtime.devrules import DeviceRule
from runtime.errors import InvalidArgument
from runtime.hostdevices import resolve
from runtime.process.config import DeviceNode
from runtime.types import ContainerSpec, DeviceMapping


def spec(*devices: DeviceMapping, rules: tuple[str, ...] = ()) -> ContainerSpec:
    return ContainerSpec(name="proj-web-1", image="busybox", devices=devices, device_cgroup_rules=rules)


def host(path: str) -> DeviceNode:
    st = os.stat(path)
    return DeviceNode(path, "c", os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode),
                      st.st_uid, st.st_gid, path)


def test_a_node_keeps_the_hosts_numbers_mode_and_owner() -> None:
    nodes, rules = resolve(spec(DeviceMapping("/dev/null", "/dev/mynull", "r")))
    assert nodes == (DeviceNode("/dev/mynull", "c", 1, 3, host("/dev/null").mode, 0, 0, "/dev/null"),)
    assert rules == (DeviceRule("c", 1, 3, "r"),)


def test_target_defaults_to_the_host_path_and_permissions_to_rwm() -> None:
    nodes, rules = resolve(spec(DeviceMapping("/dev/zero")))
    assert [n.path for n in nodes] == ["/dev/zero"]
    assert rules == (DeviceRule("c", 1, 5, "rwm"),)


def test_a_directory_gives_every_node_under_it(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a").symlink_to("/dev/null")
    (tmp_path / "sub" / "b").symlink_to("/dev/zero")
    (tmp_path / "notes.txt").write_text("not a device")
    (tmp_path / "evil").symlink_to("/etc/passwd")  # outside /dev: not followed, not a node
    nodes, rules = resolve(spec(DeviceMapping(str(tmp_path), "/dev/snd", "rw")))
    assert sorted((n.path, n.major, n.minor, n.host_path) for n in nodes) == [
        ("/dev/snd/a", 1, 3, "/dev/null"), ("/dev/snd/sub/b", 1, 5, "/dev/zero")]
    assert sorted(str(r) for r in rules) == ["c 1:3 rw", "c 1:5 rw"]


def test_a_later_entry_for_the_same_container_path_wins() -> None:
    nodes, rules = resolve(spec(DeviceMapping("/dev/null", "/dev/x"), DeviceMapping("/dev/zero", "/dev/x", "r")))
    assert [(n.path, n.minor) for n in nodes] == [("/dev/x", 5)]
    assert rules == (DeviceRule("c", 1, 5, "r"),)


def test_cgroup_rules_come_after_the_nodes_rules() -> None:
    _, rules = resolve(spec(DeviceMapping("/dev/null"), rules=("c 188:* rwm", "a *:* rwm")))
    assert [str(r) for r in rules] == ["c 1:3 rwm", "c 188:* rwm", "a *:* rwm"]


@pytest.mark.parametrize(("mapping", "message"), [
    (DeviceMapping("/dev/nosuchdevice"),
     "container proj-web-1: device /dev/nosuchdevice does not exist on this host: connect it or "
     "remove it from devices"),
    (DeviceMapping("/etc/hostname"),
     "container proj-web-1: device /etc/hostname is not a device node (nor a directory of them): "
     "give a path under /dev"),
    (DeviceMapping("dev/null"), "container proj-web-1: device source 'dev/null' must be an absolute path"),
    (DeviceMapping("/dev/null", "null"), "container proj-web-1: device target 'null' must be an absolute path"),
    (DeviceMapping("/dev/null", "", "rx"),
     'container proj-web-1: device /dev/null: invalid device access "rx": use one or more of r, w and m'),
])
def test_errors_name_the_container_and_the_device(mapping: DeviceMapping, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        resolve(spec(mapping))
    assert str(e.value) == message


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="holds no device nodes"):
        resolve(spec(DeviceMapping(str(tmp_path))))


def test_a_bad_cgroup_rule_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match='container proj-web-1: invalid device cgroup rule "c 1:3"'):
        resolve(spec(rules=("c 1:3",)))


def test_a_privileged_container_gets_the_hosts_device_nodes_but_not_its_ptys() -> None:
    nodes, _ = resolve(ContainerSpec(name="p", image="busybox", privileged=True))
    paths = {n.path for n in nodes}
    assert {"/dev/null", "/dev/zero", "/dev/full"} <= paths
    assert host("/dev/null") in nodes
    assert not [p for p in paths if p.startswith(("/dev/pts/", "/dev/shm/", "/dev/mqueue/"))]
    assert "/dev/console" not in paths and "/dev/ptmx" not in paths  # the container's own
    assert not [n for n in nodes if not os.path.exists(n.host_path)]


def test_a_devices_entry_wins_over_the_privileged_hosts_node() -> None:
    nodes, _ = resolve(ContainerSpec(name="p", image="busybox", privileged=True,
                                     devices=(DeviceMapping("/dev/zero", "/dev/null", "r"),)))
    at_null = [n for n in nodes if n.path == "/dev/null"]
    assert [(n.major, n.minor) for n in at_null] == [(1, 5)]


def test_an_unprivileged_container_gets_only_its_devices() -> None:
    nodes, _ = resolve(spec(DeviceMapping("/dev/zero")))
    assert [n.path for n in nodes] == ["/dev/zero"]


def test_host_devices_never_follows_links(tmp_path: Path) -> None:
    from runtime.hostdevices import host_devices
    (tmp_path / "sub").mkdir()
    for link in ("sub/null", "null"):
        (tmp_path / link).symlink_to("/dev/null")  # /dev/disk/by-id/...: the node is listed itself
    assert host_devices(str(tmp_path)) == []
