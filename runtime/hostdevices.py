"""A container's host devices (`devices:`) and extra device rules (`device_cgroup_rules`).

`resolve(spec)` looks each `DeviceMapping` up on the host, as Docker does: a device node
gives one node in the container with the host's type, numbers, permission bits and owner; a
directory gives every node under it (e.g. /dev/snd), at the same relative paths under the
target; a symlink is followed when it leads into /dev (/dev/disk/by-id/...). Each node gets
an allow rule "TYPE MAJOR:MINOR PERMISSIONS"; `device_cgroup_rules` are parsed and added
after them. A privileged container gets every device node of the host's /dev first (Docker
through containerd's HostDevices: not below pts, shm, fd, mqueue and the .lxc/.lxd-mounts/
.udev helpers, not /dev/console nor /dev/ptmx, which stay the container's own), and a
`devices:` entry at the same path wins. Called at create (a missing device is an error before
anything is made) and at every start (numbers can change when a device is plugged again).
"""
from __future__ import annotations

import os
import stat

from runtime.devrules import DeviceRule, RuleError, normalize_access
from runtime.errors import InvalidArgument
from runtime.process.config import DeviceNode
from runtime.types import ContainerSpec, DeviceMapping


def _follow(path: str) -> str:
    """`path` with symlinks resolved when they lead into /dev (moby's rule); else itself."""
    real = os.path.realpath(path)
    return real if real == "/dev" or real.startswith("/dev/") else path


def _node(path: str, target: str) -> DeviceNode | None:
    """The device node at host `path` (None when it is something else)."""
    host = _follow(path)
    st = os.lstat(host)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return DeviceNode(target, "b" if stat.S_ISBLK(st.st_mode) else "c",
                          os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode),
                          st.st_uid, st.st_gid, host)
    return None


HOST_SKIP_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
HOST_SKIP_FILES = frozenset({"console", "ptmx"})


def host_devices(top: str = "/dev") -> list[DeviceNode]:
    """Every device node under the host's `top`, at the same path (a privileged container's);
    symlinks are not followed (/dev/disk/by-id/... name nodes listed anyway)."""
    found: list[DeviceNode] = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in HOST_SKIP_DIRS)
        for f in sorted(files):
            if f in HOST_SKIP_FILES:
                continue
            path = os.path.join(folder, f)
            try:
                st = os.lstat(path)
            except OSError:
                continue  # gone while we walked
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                found.append(DeviceNode(path, "b" if stat.S_ISBLK(st.st_mode) else "c",
                                        os.major(st.st_rdev), os.minor(st.st_rdev),
                                        stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, path))
    return found


def _nodes(name: str, m: DeviceMapping) -> list[DeviceNode]:
    target = m.target or m.source
    for what, path in (("source", m.source), ("target", target)):
        if not os.path.isabs(path):
            raise InvalidArgument(f"container {name}: device {what} {path!r} must be an absolute path",
                                  subject=name)
    try:
        node = _node(m.source, target)
        if node is not None:
            return [node]
        top = _follow(m.source)
        if not os.path.isdir(top):
            raise InvalidArgument(
                f"container {name}: device {m.source} is not a device node (nor a directory "
                "of them): give a path under /dev", subject=name)
        found = []
        for folder, _dirs, files in os.walk(top):
            for f in sorted(files):
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, top)
                try:
                    child = _node(path, os.path.join(target, rel))
                except OSError:
                    continue  # gone while we walked, or a dangling link
                if child is not None:
                    found.append(child)
    except FileNotFoundError:
        raise InvalidArgument(
            f"container {name}: device {m.source} does not exist on this host: connect it "
            "or remove it from devices", subject=name) from None
    except OSError as e:
        raise InvalidArgument(f"container {name}: cannot read device {m.source}: {e.strerror}",
                              subject=name) from None
    if not found:
        raise InvalidArgument(f"container {name}: device directory {m.source} holds no "
                              "device nodes", subject=name)
    return found


def resolve(spec: ContainerSpec) -> tuple[tuple[DeviceNode, ...], tuple[DeviceRule, ...]]:
    """(nodes to make in the container, rules to add to its device allow-list)."""
    nodes: dict[str, DeviceNode] = {}  # by container path: a later entry wins (Compose)
    access: dict[str, str] = {}
    if spec.privileged:
        for node in host_devices():
            nodes[node.path] = node
            access[node.path] = "rwm"
    for m in spec.devices:
        try:
            perms = normalize_access(m.permissions)
        except RuleError as e:
            raise InvalidArgument(f"container {spec.name}: device {m.source}: {e}",
                                  subject=spec.name) from None
        for node in _nodes(spec.name, m):
            nodes.pop(node.path, None)
            nodes[node.path] = node
            access[node.path] = perms
    rules = [DeviceRule(n.type, n.major, n.minor, access[n.path]) for n in nodes.values()]
    for text in spec.device_cgroup_rules:
        try:
            rules.append(DeviceRule.parse(text))
        except RuleError as e:
            raise InvalidArgument(f"container {spec.name}: {e}", subject=spec.name) from None
    return tuple(nodes.values()), tuple(rules)
