"""/proc/self/mountinfo inside a default container (issue 13 item 5): the rootfs is `overlay`
with short relative layer names, and no line names composer's state root.

What stays visible is documented in docs/security.md ("What a container sees of the host"):
the root of each bind mount's source inside its own filesystem (volumes), the filesystem types
and device numbers."""
from __future__ import annotations

import os

from tests.security.conftest import Stacks


def _root_line(text: str) -> list[str]:
    for line in text.splitlines():
        f = line.split()
        if f[4] == "/":
            return f
    raise AssertionError(f"no root mount in\n{text}")


def test_rootfs_line_hides_the_state_root(stacks: Stacks) -> None:
    r = stacks.sh("plain", "cat /proc/self/mountinfo")
    assert r.returncode == 0, r.stderr
    f = _root_line(r.stdout)
    sep = f.index("-")
    fstype, source, options = f[sep + 1], f[sep + 2], f[sep + 3]
    assert (fstype, source) == ("overlay", "overlay"), f
    opts = dict(o.split("=", 1) for o in options.split(",") if "=" in o)
    assert opts["lowerdir"].split(":")[0] == "l/0", options
    assert (opts["upperdir"], opts["workdir"]) == ("upper", "work"), options
    # the layers' and upper dir's paths are gone; what still names the state root is the three
    # files the engine binds over the image's (as Docker's /var/lib/docker/containers/<id>/...):
    # a bind mount's root field is its source's path inside its filesystem, which the kernel
    # always shows
    root = str(stacks.rig.env.root)
    naming = sorted(line.split()[4] for line in r.stdout.splitlines() if root in line)
    assert naming == ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"], naming


def test_the_short_names_are_the_real_layers(stacks: Stacks) -> None:
    """The control: the names the container sees resolve, in the container's state dir on the
    host, to the image's layers (so the mount really is built from them)."""
    dirs = list(stacks.rig.env.root.glob("containers/*/*/l"))
    assert len(dirs) >= 4, "each of the 4 containers has an l/ directory of layer links"
    for d in dirs:
        links = sorted(d.iterdir())
        assert links and all(os.path.isdir(p) for p in links), d
        # each points out of the container's own dir, at a shared image layer
        assert all(not os.path.realpath(p).startswith(str(d.parent)) for p in links), d
