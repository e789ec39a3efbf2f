"""OOM notification on cgroup v1: an eventfd the kernel signals on every OOM in the cgroup.

    w = OOMWatcher(cg)                     # registers via cgroup.event_control
    loop.add_reader(w.fileno(), on_oom)    # or w.read() after the fact: events so far
    w.close()

After a container has died, `Cgroup.oom_killed()` (counters) is the answer; this watcher is
for reacting while the container still runs (the daemon's "oom" event). cgroup v2 has no
event_control; there the daemon reads memory.events when the container exits.
"""

from __future__ import annotations

import os

from runtime.cgroups.cgroup import DirCgroup
from runtime.cgroups.errors import CgroupError


class OOMWatcher:
    def __init__(self, cg: DirCgroup) -> None:
        if cg.version != "v1":
            raise CgroupError(
                f"cgroup {cg.name}: OOM notification needs cgroup v1 (use oom_killed() on v2)",
                subject=cg.name,
            )
        d = cg.path("memory")
        self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            self._ofd = os.open(d / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:
                cg.target.fs.write(d / "cgroup.event_control", f"{self._efd} {self._ofd}")
            except OSError:
                os.close(self._ofd)
                raise
        except OSError as e:
            os.close(self._efd)
            raise CgroupError(
                f"cgroup {cg.name}: cannot watch for OOM in {d}: {e}", subject=cg.name
            ) from e

    def fileno(self) -> int:
        return self._efd

    def read(self) -> int:
        """OOM events since the last read (0 if none); never blocks."""
        try:
            return os.eventfd_read(self._efd)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        for fd in (self._efd, self._ofd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._efd = self._ofd = -1

    def __enter__(self) -> OOMWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
