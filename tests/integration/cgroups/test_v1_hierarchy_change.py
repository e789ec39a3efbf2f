"""A cgroup v1 hierarchy unmounted after the manager (composerd) listed them: the next
cgroup, and the next container, are still made -- in the hierarchies mounted now.

The manager works on a private cgroup root, so the host's /sys/fs/cgroup never changes:
a temp dir holding bind mounts of this host's v1 hierarchies (the cgroups made through
them are the host's, under a `composer-test-...`/`composer-it-...` parent) plus a named
hierarchy of our own (`-o none,name=composertest_<random>`), which the tests unmount.
At the end, also after a failure: every process killed, every cgroup removed (the named
hierarchy is mounted again to reach those an unmount hid: they would keep it alive in the
kernel), every mount undone, and the named hierarchy is gone from /proc/self/cgroup."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from runtime.cgroups import V1Manager
from runtime.engine import Engine
from runtime.paths import Paths
from runtime.types import ContainerSpec, Resources
from tests.leaks import Scope, take
from tests.sweep import claim

ROOT = Path("/sys/fs/cgroup")
pytestmark = pytest.mark.cgroup_v1  # one directory per hierarchy is v1's layout


def is_mounted(path: Path) -> bool:
    return any(line.split()[4] == str(path)
               for line in Path("/proc/self/mountinfo").read_text().splitlines())


def rmdir_tree(d: Path) -> None:
    """rmdir `d` and its subdirectories, deepest first (cgroups: no files to unlink)."""
    if not d.is_dir():
        return
    for sub in d.iterdir():
        if sub.is_dir():
            rmdir_tree(sub)
    for _ in range(200):  # EBUSY while the kernel releases a cgroup whose last task exited
        try:
            d.rmdir()
            return
        except OSError:
            time.sleep(0.01)
    d.rmdir()


class PrivateRoot:
    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="cmpcgroot-"))
        self.name = f"composertest_{uuid.uuid4().hex[:8]}"
        self.named = self.path / "composertest"  # its directory: what the manager calls it
        self.binds: list[Path] = []

    def mount_named(self) -> None:
        self.named.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", f"none,name={self.name}", "cgroup",
                        str(self.named)], check=True)

    def unmount_named(self, keep_mount_point: bool) -> None:
        subprocess.run(["umount", str(self.named)], check=True)
        if not keep_mount_point:
            self.named.rmdir()

    def in_kernel(self) -> bool:
        """The named hierarchy still exists (mounted, or kept alive by its cgroups)."""
        return f":name={self.name}:" in Path("/proc/self/cgroup").read_text()


@pytest.fixture
def private_root() -> Iterator[PrivateRoot]:
    r = PrivateRoot()
    try:
        for d in sorted(ROOT.iterdir()):
            if d.is_symlink() or not (d / "cgroup.procs").exists() or \
                    (d / "cgroup.controllers").exists():
                continue  # cpu -> cpu,cpuacct links, the hybrid host's cgroup2
            (r.path / d.name).mkdir()
            subprocess.run(["mount", "--bind", str(d), str(r.path / d.name)], check=True)
            r.binds.append(r.path / d.name)
        r.mount_named()
        yield r
    finally:
        errors: list[str] = []

        def run(*argv: str) -> None:  # every step, also after one failed
            out = subprocess.run(argv, capture_output=True, text=True)
            if out.returncode:
                errors.append(f"{' '.join(argv)}: {out.stderr.strip()}")

        # the named hierarchy: mounted again if cgroups an unmount hid keep it alive, its
        # cgroups (ours: composer-*) removed, unmounted. The kernel frees it at an unmount
        # that finds it without children -- a removed cgroup leaves that list only after a
        # grace period, so an unmount right after the rmdir may leave it alive: again, then.
        for _ in range(20):
            if is_mounted(r.named):
                for d in r.named.glob("composer-*"):
                    rmdir_tree(d)
                time.sleep(0.05)
                run("umount", str(r.named))
            end = time.monotonic() + 1
            while r.in_kernel() and time.monotonic() < end:
                time.sleep(0.02)
            if not r.in_kernel() or errors:
                break
            r.named.mkdir(exist_ok=True)
            run("mount", "-t", "cgroup", "-o", f"none,name={r.name}", "cgroup", str(r.named))
        if r.named.is_dir() and not is_mounted(r.named):  # plain dirs a create left there
            for d in r.named.glob("composer-*"):
                rmdir_tree(d)
        for b in r.binds:
            run("umount", str(b))
        for d in [*r.path.iterdir(), r.path]:  # never recursive: a mount may be left
            if not is_mounted(d):
                with contextlib.suppress(OSError):
                    d.rmdir()
        assert not errors, errors
    assert not r.in_kernel(), f"the named hierarchy {r.name} outlived the test"
    assert not r.path.exists(), f"{r.path} left behind"


@pytest.fixture
def manager(private_root: PrivateRoot) -> Iterator[V1Manager]:
    """A manager on the private root under a unique `composer-test-...` parent."""
    parent = f"composer-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    mgr = V1Manager(private_root.path, parent)
    try:
        yield mgr
    finally:
        mgr.remove_parent()  # what is still mounted; private_root reaches the named one
    assert not list(ROOT.glob(f"*/{parent}")), "cgroup directories left behind"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "600"])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def cgroups_of(pid: int) -> dict[str, str]:
    """/proc/<pid>/cgroup: hierarchy (controllers or name=...) -> path."""
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, what, path = line.split(":", 2)
        out[what] = path
    return out


@pytest.mark.parametrize("keep_mount_point", [True, False])
def test_a_cgroup_made_after_an_unmount_goes_into_what_is_mounted(
        private_root: PrivateRoot, manager: V1Manager, sleeper: subprocess.Popen[bytes],
        keep_mount_point: bool) -> None:
    first = manager.create("before")
    assert private_root.named / manager.parent / "before" in first.directories()
    first.remove()
    private_root.unmount_named(keep_mount_point)
    # what the engine does for a container: create, limits, device rules, the process joins
    cg = manager.create("after")
    cg.apply(Resources(pids_limit=50))
    cg.restrict_devices()
    cg.add_pid(sleeper.pid)
    assert not (private_root.named / manager.parent).exists()  # no plain dirs where it was
    assert all(d.parent.parent != private_root.named for d in cg.directories())
    where = cgroups_of(sleeper.pid)
    assert where["pids"] == where["devices"] == f"/{manager.parent}/after"
    assert (cg.path("pids") / "pids.max").read_text().strip() == "50"
    assert cg.pids() == [sleeper.pid]
    assert "composertest" not in manager.hierarchies
    manager.create("again")  # the fresh list holds: no further scan
    assert manager.scans == 2  # the one at the start, the one after the unmount


def test_a_process_joining_after_an_unmount_joins_what_is_mounted(
        private_root: PrivateRoot, manager: V1Manager, sleeper: subprocess.Popen[bytes]) -> None:
    cg = manager.create("c1")
    cg.apply(Resources(pids_limit=50))
    private_root.unmount_named(keep_mount_point=True)  # between create and join
    cg.add_pid(sleeper.pid)
    assert manager.scans == 2
    where = cgroups_of(sleeper.pid)
    assert where["pids"] == f"/{manager.parent}/c1"
    assert where[f"name={private_root.name}"] == "/"  # never joined: it went away before
    assert cg.pids() == [sleeper.pid]


@pytest.fixture
async def engine_on(private_root: PrivateRoot) -> AsyncIterator[Engine]:
    """A real engine whose cgroup root is the private one (as tests/integration/engine)."""
    base, parent = claim("cmpeng", "it")
    scope = Scope.for_base(base, parent)
    before = take(scope)
    eng = await Engine.open(Paths(base / "root", base / "run"), cgroup_parent=parent,
                            cgroup_root=private_root.path)
    eng.images.ensure_busybox()
    try:
        yield eng
    finally:
        try:
            for c in await eng.list_containers(all=True):
                await eng.remove_container(c.id, force=True, volumes=True)
            await eng.close()
            leaks = take(scope).leaks_since(before)
        finally:
            with contextlib.suppress(Exception):
                eng.cgroups.remove_parent()
            shutil.rmtree(base, ignore_errors=True)
        assert not leaks, f"left behind: {leaks}"


async def test_the_engine_starts_containers_after_a_hierarchy_it_listed_went_away(
        private_root: PrivateRoot, engine_on: Engine) -> None:
    eng = engine_on
    assert isinstance(eng.cgroups, V1Manager) and "composertest" in eng.cgroups.hierarchies
    spec = ContainerSpec(name="before", image="busybox", command=("sleep", "60"),
                         network_mode="none")
    first = await eng.create_container(spec)
    running = await eng.start_container(first.id)
    assert f"name={private_root.name}" in cgroups_of(running.pid)
    private_root.unmount_named(keep_mount_point=True)  # as a peer's trick ends
    later = await eng.create_container(ContainerSpec(
        name="after", image="busybox", command=("sleep", "60"), network_mode="none"))
    info = await eng.start_container(later.id)
    assert info.state == "running"
    where = cgroups_of(info.pid)
    assert where["memory"] == where["pids"] == f"/{eng.cgroups.parent}/{later.id}"
    assert eng.cgroups.scans == 2 and "composertest" not in eng.cgroups.hierarchies
    # the container started before the unmount still stops and goes
    await eng.stop_container(first.id, timeout=1)
    await eng.remove_container(first.id)
    await eng.remove_container(later.id, force=True)
