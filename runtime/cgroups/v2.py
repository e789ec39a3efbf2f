"""cgroup v2 driver: one unified tree; container cgroups are leaves of one base directory.

| host                     | base (holds the container leaves)     | ours from   |
|--------------------------|---------------------------------------|-------------|
| no systemd (pid 1 other) | <root>/<parent>                       | <root>      |
| systemd                  | <root>/system.slice/<parent>.scope    | the scope   |

Controllers (cpu, memory, pids, io, cpuset) are enabled down the whole path from <root> to
the base, each level only what it is offered, through its cgroup.subtree_control. Levels
above "ours from" belong to systemd: they are only read (what systemd did not delegate is
missing). The kernel's no-internal-processes rule: a cgroup whose subtree_control enables
domain controllers may hold no process, so processes found in the base (ours: the monitor
under systemd) move into the leaf <base>/supervisor first. Controllers a
host cannot give are named once in a warning and their limits are refused, never ignored.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from runtime.cgroups.base import DEFAULT_PARENT, DEFAULT_ROOT, Target, Version
from runtime.cgroups.cgroup import DirCgroup, _rmtree
from runtime.cgroups.errors import CgroupError, CgroupNotFound
from runtime.cgroups.fs import CgroupFS
from runtime.cgroups.systemd import SLICE, ScopeBus
from runtime.errors import InvalidArgument
from runtime.paths import safe_name

log = logging.getLogger(__name__)

CONTROLLERS = ("cpu", "memory", "pids", "io", "cpuset")
# Keys a controller module asks for; in v2 they all live in the one directory. "freezer"
# (cgroup.freeze, cgroup.kill, cgroup.events) is core, and "devices" is where the BPF device
# filter is attached: every cgroup has both.
KEYS = ("memory", "cpu", "cpuset", "pids", "io", "freezer", "devices")
CORE = {"freezer", "devices"}
SUPERVISOR = "supervisor"  # the leaf for our own processes inside the base


class V2Manager:
    version: Version = "v2"

    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        parent: str = DEFAULT_PARENT,
        fs: CgroupFS | None = None,
        systemd: ScopeBus | None = None,
    ) -> None:
        """`systemd`: when given, containers live in the delegated scope `<parent>.scope`."""
        self.root = Path(root)
        self.parent = safe_name(parent, "cgroup parent")
        self.fs = fs or CgroupFS()
        self.systemd = systemd
        if not self.fs.exists(self.root / "cgroup.controllers"):
            raise CgroupError(f"{self.root} is not a cgroup v2 hierarchy (no cgroup.controllers)")
        if systemd is None:
            self.base = self.root / self.parent
            self._ours = self.root
        else:
            self.unit = f"{self.parent}.scope"
            self.base = self.root / SLICE / self.unit
            self._ours = self.base
        self._anchors: list[int] = []  # what delegate() put in the supervisor leaf
        self._warned = False

    def __repr__(self) -> str:
        return f"<V2Manager {self.base}>"

    # -- delegation -------------------------------------------------------------------------
    def delegate(self, pids: Sequence[int], timeout: float = 10.0) -> None:
        """Under systemd: make sure the delegated scope exists and put `pids` (the engine's
        long-lived helper: the monitor) in its supervisor leaf. They anchor the scope:
        systemd ends a scope once nothing runs in it. No-op without systemd."""
        if self.systemd is None:
            return
        self._anchors = list(pids)
        leaf = self.base / SUPERVISOR
        deadline = time.monotonic() + timeout
        while True:
            state = self.systemd.active_state(self.unit)
            try:
                if state == "active":  # left by an earlier daemon: containers may live in it
                    self._mkdir(leaf)
                    self.systemd.attach(self.unit, "/" + SUPERVISOR, list(pids))
                    return
                if state in (None, "inactive", "failed"):
                    self.systemd.start_scope(
                        self.unit, list(pids), f"composer containers ({self.parent})")
                    self._mkdir(leaf)
                    for pid in pids:
                        self._move(pid, leaf)
                    return
            except CgroupError:
                # the scope ended (its last process exited) between our question and our
                # request, or is still being removed: ask again until the deadline
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise CgroupError(f"{self.unit} stayed '{state}' for {timeout:g}s: "
                                  f"see systemctl status {self.unit}")
            time.sleep(0.05)  # activating / deactivating: systemd is on it

    def _move(self, pid: int, d: Path) -> None:
        try:
            self.fs.write(d / "cgroup.procs", str(pid))
        except ProcessLookupError:
            pass
        except OSError as e:
            raise CgroupError(f"cannot move process {pid} into {d}: {e.strerror or e}") from e

    def _mkdir(self, d: Path) -> bool:
        """mkdir; False when it was there already."""
        try:
            self.fs.mkdir(d)
            return True
        except FileExistsError:
            return False
        except OSError as e:
            raise CgroupError(f"cannot create cgroup directory {d}: {e.strerror or e}") from e

    # -- controllers down the path ----------------------------------------------------------
    def _levels(self) -> list[Path]:
        rel = self.base.relative_to(self.root)
        return [self.root] + [self.root / Path(*rel.parts[: i + 1]) for i in range(len(rel.parts))]

    def _words(self, path: Path) -> list[str]:
        try:
            return self.fs.read(path).split()
        except FileNotFoundError:
            return []

    def _enable_path(self) -> list[str]:
        """Enable what the containers need at every level from the root to the base; return
        the controllers the container leaves get. Names what is missing once."""
        wanted = [c for c in CONTROLLERS if c in self._words(self.root / "cgroup.controllers")]
        missing: dict[str, str] = {c: "the kernel does not offer it" for c in CONTROLLERS
                                   if c not in wanted}
        for level in self._levels():
            offered = self._words(level / "cgroup.controllers")
            for c in [c for c in wanted if c not in offered]:
                missing[c] = f"{level.parent} does not pass it down"
                wanted.remove(c)
            have = self._words(level / "cgroup.subtree_control")
            todo = [c for c in wanted if c not in have]
            if not todo:
                continue
            mine = level == self._ours or self._ours in level.parents
            if not mine:  # systemd's: what it did not delegate is missing
                for c in todo:
                    missing[c] = f"systemd did not enable it in {level}"
                    wanted.remove(c)
                continue
            if level != self.root and self._words(level / "cgroup.procs"):
                if level == self.base:  # ours: they go to the leaf first
                    self._to_supervisor(level)
                else:
                    # even a threaded controller (cpu, pids) would make it a thread root,
                    # where our domain leaves could hold no process: enable nothing there
                    for c in todo:
                        missing[c] = (f"{level} holds processes (no internal processes); "
                                      "move them into a child cgroup")
                        wanted.remove(c)
                    continue
            for c in todo:
                why = self._enable(level, c)
                if why:
                    missing[c] = why
                    wanted.remove(c)
        if missing and not self._warned:
            self._warned = True
            names = ", ".join(sorted(missing))
            reasons = "; ".join(f"{c}: {why}" for c, why in sorted(missing.items()))
            log.warning("cgroup v2: no %s controller for containers (%s); composer runs them "
                        "without those limits and refuses a limit that needs one", names, reasons)
        return wanted

    def _to_supervisor(self, level: Path) -> None:
        leaf = level / SUPERVISOR
        self._mkdir(leaf)
        for pid in self._words(level / "cgroup.procs"):
            self._move(int(pid), leaf)

    def _enable(self, level: Path, controller: str) -> str:
        """Write +controller into `level`'s subtree_control; why it failed ("" if not)."""
        control = level / "cgroup.subtree_control"
        try:
            self.fs.write(control, f"+{controller}")
            return ""
        except OSError as e:
            what = ("it holds processes (no internal processes)" if e.errno == errno.EBUSY
                    else e.strerror or str(e))
            return f"cannot enable it in {control}: {what}"

    # -- containers ---------------------------------------------------------------------------
    def _cgroup(self, name: str) -> DirCgroup:
        safe_name(name, "cgroup name")
        d = self.base / name
        enabled = set(self._words(d / "cgroup.controllers")) | CORE
        return DirCgroup(Target("v2", name, {k: d for k in KEYS if k in enabled}, self.fs), [d])

    def create(self, name: str) -> DirCgroup:
        """Make (or reuse) <base>/<name> with the controllers the host gives; on failure
        nothing new is left."""
        safe_name(name, "cgroup name")
        if name == SUPERVISOR:
            raise InvalidArgument(f"invalid cgroup name {name!r}: reserved", subject=name)
        if self.systemd is not None and not self.fs.is_dir(self.base):
            if not self._anchors:
                raise CgroupError(f"no delegated scope {self.unit}: the engine must call "
                                  "delegate() with its monitor first")
            self.delegate(self._anchors)  # someone stopped the scope: ask again
        created: list[Path] = []
        try:
            for level in self._levels()[1:]:
                if self._mkdir(level):
                    created.append(level)
            self._enable_path()
            if self._mkdir(self.base / name):
                created.append(self.base / name)
        except BaseException:
            for d in reversed(created):
                with contextlib.suppress(CgroupError):  # keep the original error
                    _rmtree(self.fs, d, name, 0.0)
            raise
        return self._cgroup(name)

    def open(self, name: str) -> DirCgroup:
        cg = self._cgroup(name)
        if not cg.exists():
            raise CgroupNotFound(f"no cgroup {name} under {self.parent}", subject=name)
        return cg

    def list(self) -> list[str]:
        return [d for d in self.fs.subdirs(self.base) if d != SUPERVISOR]

    def remove_parent(self, timeout: float = 5.0) -> None:
        """Kill and remove every container cgroup, then the base: under systemd by stopping
        the scope (which also ends its supervisor leaf)."""
        for name in self.list():
            cg = self._cgroup(name)
            cg.kill_all(timeout=timeout)
            cg.remove(timeout)
        if self.systemd is not None:
            self.systemd.stop(self.unit)
            deadline = time.monotonic() + timeout
            while self.fs.is_dir(self.base) and time.monotonic() < deadline:
                time.sleep(0.02)
            if not self.fs.is_dir(self.base):
                return
        _rmtree(self.fs, self.base, self.parent, timeout)
