"""systemd over D-Bus: the delegated scope composer's containers live in (see docs/cgroups.md).

Under systemd on cgroup v2, systemd owns the tree. A cgroup we made beside its units could
be moved, killed or have its limits reset; a unit with `Delegate=yes` hands us its subtree.
composer asks systemd for one transient scope per engine parent (`composer.scope` in
system.slice) with Delegate=yes, and keeps everything it runs for containers inside it:

    system.slice/composer.scope/            Delegate=yes; controllers on in subtree_control
        supervisor/                         the monitor (the anchor)
        <container id>/                     one leaf per container, its limits on this level

Only the Manager methods below are used, through jeepney on the system bus (no systemctl,
no busctl). The `ScopeBus` protocol is the seam unit tests replace.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from runtime.cgroups.errors import CgroupError

SD_BOOTED = Path("/run/systemd/system")  # sd_booted(3): systemd is pid 1
SLICE = "system.slice"
_DEST = "org.freedesktop.systemd1"
_PATH = "/org/freedesktop/systemd1"
_MANAGER = "org.freedesktop.systemd1.Manager"
_UNIT = "org.freedesktop.systemd1.Unit"


class SystemdError(CgroupError):
    """systemd refused a request or could not be reached; `name` is the D-Bus error name."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


def booted() -> bool:
    return SD_BOOTED.is_dir()


class ScopeBus(Protocol):
    def start_scope(self, unit: str, pids: list[int], description: str) -> None:
        """StartTransientUnit(unit, Delegate=yes, Slice=system.slice, PIDs=pids); waits for
        the job. The pids are in the scope's own cgroup when it returns."""

    def attach(self, unit: str, subcgroup: str, pids: list[int]) -> None:
        """AttachProcessesToUnit: move pids into an existing subcgroup of a running unit."""

    def active_state(self, unit: str) -> str | None:
        """ActiveState ("active", "deactivating", ...) or None when systemd has no such unit."""

    def stop(self, unit: str) -> None:
        """StopUnit (kills what is left in it); waits for the job. A missing unit is fine."""


class SystemdBus:
    """`ScopeBus` over the system bus with jeepney; one short connection per request."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout

    def _connect(self) -> Any:
        from jeepney.io.blocking import open_dbus_connection

        try:
            return open_dbus_connection(bus="SYSTEM")
        except (OSError, ValueError) as e:  # no socket, refused, auth failed
            raise SystemdError(f"cannot reach systemd on the system bus: {e}") from e

    def _call(self, conn: Any, method: str, signature: str, args: tuple[Any, ...],
              path: str = _PATH, interface: str = _MANAGER) -> tuple[Any, ...]:
        from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call

        addr = DBusAddress(path, bus_name=_DEST, interface=interface)
        reply = conn.send_and_get_reply(new_method_call(addr, method, signature, args),
                                        timeout=self.timeout)
        if reply.header.message_type == MessageType.error:
            name = str(reply.header.fields.get(HeaderFields.error_name, ""))
            why = reply.body[0] if reply.body else name
            raise SystemdError(f"systemd refused {method}: {why}", name)
        return tuple(reply.body)

    def _job(self, method: str, signature: str, args: tuple[Any, ...], what: str) -> None:
        """Call a Manager method that queues a job and wait for the job's JobRemoved."""
        from jeepney import MatchRule, message_bus

        rule = MatchRule(type="signal", interface=_MANAGER, member="JobRemoved", path=_PATH)
        with self._connect() as conn:
            conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=self.timeout)
            with conn.filter(rule, bufsize=256) as queue:
                job = self._call(conn, method, signature, args)[0]
                deadline = time.monotonic() + self.timeout
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise SystemdError(f"systemd did not finish {what} in {self.timeout:g}s")
                    try:
                        sig = conn.recv_until_filtered(queue, timeout=left)
                    except TimeoutError:
                        continue
                    _id, path, _unit, result = sig.body
                    if path == job:
                        break
        if result != "done":
            raise SystemdError(f"systemd could not {what}: the job ended '{result}' "
                               "(see journalctl -xe)")

    def start_scope(self, unit: str, pids: list[int], description: str) -> None:
        props = [
            ("PIDs", ("au", pids)),
            ("Delegate", ("b", True)),
            ("Slice", ("s", SLICE)),
            ("Description", ("s", description)),
            ("CollectMode", ("s", "inactive-or-failed")),
        ]
        self._job("StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "fail", props, []),
                  f"start {unit}")

    def attach(self, unit: str, subcgroup: str, pids: list[int]) -> None:
        with self._connect() as conn:
            self._call(conn, "AttachProcessesToUnit", "ssau", (unit, subcgroup, pids))

    def active_state(self, unit: str) -> str | None:
        with self._connect() as conn:
            try:
                path = self._call(conn, "GetUnit", "s", (unit,))[0]
            except SystemdError as e:
                if e.name.endswith("NoSuchUnit"):
                    return None
                raise
            got = self._call(conn, "Get", "ss", (_UNIT, "ActiveState"), path=path,
                             interface="org.freedesktop.DBus.Properties")
            return str(got[0][1])

    def stop(self, unit: str) -> None:
        try:
            self._job("StopUnit", "ss", (unit, "replace"), f"stop {unit}")
        except SystemdError as e:
            if not e.name.endswith("NoSuchUnit"):
                raise
