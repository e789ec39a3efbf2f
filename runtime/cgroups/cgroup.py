"""`DirCgroup`: the `Cgroup` both drivers return. The drivers differ only in where the
directories are (v1: one per hierarchy; v2: one) and in which files the controller modules
pick, which `Target.version` tells them."""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from runtime.cgroups import cpu, cpuset, devices, freezer, io, memory, pids
from runtime.cgroups.base import CgroupStats, Target, Version
from runtime.cgroups.errors import CgroupError
from runtime.cgroups.fs import CgroupFS
from runtime.devrules import DeviceRule
from runtime.types import Resources

POLL = 0.01


class DirCgroup:
    def __init__(self, target: Target, directories: list[Path],
                 renew: Callable[[], DirCgroup] | None = None) -> None:
        self._t = target
        self._dirs = directories  # every directory of this cgroup (one per v1 hierarchy)
        self.name = target.name
        self.version: Version = target.version
        # v1: the manager re-scans its hierarchies and makes this cgroup again in those
        # mounted now (add_pid found one gone); what apply/restrict_devices wrote is written
        # again then
        self._renew = renew
        self._resources: Resources | None = None
        self._device_rules: Sequence[DeviceRule] | None = None

    def __repr__(self) -> str:
        return f"<Cgroup {self.version} {self.name} {self._dirs[0] if self._dirs else ''}>"

    @property
    def target(self) -> Target:
        return self._t

    def path(self, controller: str) -> Path:
        """Directory holding `controller`'s files ("memory", "cpu", "pids", "freezer", ...)."""
        self._t.file(controller, "")  # raises for a controller the host lacks
        return self._t.dirs[controller]

    def directories(self) -> list[Path]:
        return list(self._dirs)

    def exists(self) -> bool:
        return any(self._t.fs.is_dir(d) for d in self._dirs)

    # limits ---------------------------------------------------------------------------
    def apply(self, resources: Resources) -> None:
        """Write every limit set in `resources`. Checks all values before the first write."""
        memory.validate(self.name, resources)
        cpu.validate(self.name, resources)
        self._resources = resources
        memory.apply(self._t, resources)
        cpu.apply(self._t, resources)
        pids.apply(self._t, resources)
        cpuset.apply(self._t, resources)
        io.apply(self._t, resources)

    def restrict_devices(self, extra: Sequence[DeviceRule] = ()) -> None:
        """Docker's default device allow-list plus `extra` (unprivileged containers)."""
        self._device_rules = tuple(extra)
        devices.restrict(self._t, extra)

    # membership -------------------------------------------------------------------------
    def add_pid(self, pid: int) -> None:
        """Move process `pid` (all its threads) into this cgroup, in every hierarchy.

        v1: a `cgroup.procs` that is missing means a hierarchy was unmounted since the
        manager listed them; the manager re-scans once (renew), this cgroup is made again
        in the hierarchies mounted now, its limits and device rules are written again, and
        so is every cgroup.procs."""
        try:
            self._add_pid(pid, missing_ok=self._renew is not None)
            return
        except _Missing:
            assert self._renew is not None
        fresh = self._renew()
        self._t, self._dirs = fresh._t, fresh._dirs
        # a directory may be new (a hierarchy mounted since, or mounted again at the same
        # place): the limits and device rules again, before the process is in
        if self._resources is not None:
            self.apply(self._resources)
        if self._device_rules is not None:
            self.restrict_devices(self._device_rules)
        self._add_pid(pid, missing_ok=False)

    def _add_pid(self, pid: int, missing_ok: bool) -> None:
        for d in self._dirs:
            try:
                self._t.fs.write(d / "cgroup.procs", str(pid))
            except FileNotFoundError as e:
                if missing_ok:
                    raise _Missing from e
                raise CgroupError(
                    f"cgroup {self.name}: cannot add process {pid} to {d}: {e.strerror or e}",
                    subject=self.name) from e
            except OSError as e:
                why = "the process is gone" if e.errno == errno.ESRCH else (e.strerror or str(e))
                raise CgroupError(
                    f"cgroup {self.name}: cannot add process {pid} to {d}: {why}", subject=self.name
                ) from e

    def pids(self) -> list[int]:
        """Every process in the cgroup (union over hierarchies, so none is missed)."""
        found: set[int] = set()
        for d in self._dirs:
            try:
                text = self._t.fs.read(d / "cgroup.procs")
            except FileNotFoundError:
                continue
            except OSError as e:
                raise CgroupError(f"cgroup {self.name}: cannot read {d}/cgroup.procs: {e}") from e
            found.update(int(x) for x in text.split())
        return sorted(found)

    # stats ------------------------------------------------------------------------------
    def stats(self) -> CgroupStats:
        used, peak, limit = memory.usage(self._t)
        read, written = io.usage(self._t)
        return CgroupStats(
            memory_usage=used,
            memory_peak=peak,
            memory_limit=limit,
            cpu_usage_ns=cpu.usage_ns(self._t),
            pids=pids.current(self._t),
            io_read_bytes=read,
            io_write_bytes=written,
        )

    def oom_killed(self) -> bool:
        return memory.oom_killed(self._t)

    # freezing and killing -----------------------------------------------------------------
    def freeze(self, timeout: float = 5.0) -> None:
        freezer.apply(self._t, True, timeout)

    def thaw(self) -> None:
        freezer.apply(self._t, False)

    def kill_all(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Signal every process; with SIGKILL, return only once the cgroup is empty.

        Each round freezes the cgroup so nothing can fork while we list and signal, then
        thaws it so the signals are delivered. v2's cgroup.kill does it all in the kernel.
        A cgroup that is already gone is fine (teardown is idempotent).
        """
        if not self.exists() or not self.pids():
            # empty (a container whose init has exited, as at every exit): nothing can fork
            # in it, so no freeze/thaw round (~0.3 ms of cgroupfs writes in v1's freezer)
            return
        if sig == signal.SIGKILL and self.version == "v2" and self._t.has("freezer", "cgroup.kill"):
            self._t.write("freezer", "cgroup.kill", "1", limit="kill", shown="all")
            self._wait_empty(timeout, "kill_all")
            return
        can_freeze = freezer.available(self._t)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if can_freeze:
                    try:
                        freezer.apply(
                            self._t, True, min(1.0, max(0.1, deadline - time.monotonic()))
                        )
                    except CgroupError:
                        pass  # a task stuck in the kernel: signal the rest anyway, thaw below
                victims = self.pids()
                for pid in victims:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            finally:
                if can_freeze:
                    freezer.apply(self._t, False)
            if sig != signal.SIGKILL or not victims:
                return
            if self._wait_empty(min(0.2, max(0.0, deadline - time.monotonic())), None):
                return
            if time.monotonic() > deadline:
                raise CgroupError(
                    f"cgroup {self.name}: processes {self.pids()} survived SIGKILL for {timeout:g}s",
                    subject=self.name,
                )

    def _wait_empty(self, timeout: float, what: str | None) -> bool:
        deadline = time.monotonic() + timeout
        while self.pids():
            if time.monotonic() >= deadline:
                if what is None:
                    return False
                raise CgroupError(
                    f"cgroup {self.name}: {what}: processes {self.pids()} still running after "
                    f"{timeout:g}s",
                    subject=self.name,
                )
            time.sleep(POLL)
        return True

    # removal ----------------------------------------------------------------------------
    def remove(self, timeout: float = 2.0) -> None:
        """Remove the cgroup everywhere. Idempotent. Waits up to `timeout` for it to empty;
        a cgroup that keeps processes is an error (call kill_all first)."""
        if not self.exists():
            return
        try:
            self._wait_empty(timeout, "remove")
        except CgroupError as e:
            raise CgroupError(f"{e}; call kill_all() before remove()", subject=self.name) from None
        for d in self._dirs:
            _rmtree(self._t.fs, d, self.name, timeout)


class _Missing(Exception):
    """add_pid: a directory's cgroup.procs is not there (its hierarchy went away)."""


def _rmtree(fs: CgroupFS, d: Path, name: str, timeout: float) -> None:
    """rmdir `d` and any child cgroups, deepest first; a missing directory is fine."""
    for sub in fs.subdirs(d):
        _rmtree(fs, d / sub, name, timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fs.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            # EBUSY right after the last task exits: the kernel is still releasing it.
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(
                    f"cgroup {name}: cannot remove {d}: {e.strerror or e}", subject=name
                ) from e
            time.sleep(POLL)
