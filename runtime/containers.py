"""Container records: what the engine knows of each container, persisted in its state dir.

    <state root>/containers/<id>/
        config.json   ContainerSpec + what was resolved at create (argv, env, image id, ...)
        state.json    pid, start time, state, exit code, ... (rewritten atomically)
        exit.json     written by the monitor when the container's process ends
        log.json      stdout/stderr, JSON lines with stream and time (written by the monitor)
        hosts, hostname, resolv.conf      bound over the container's /etc files
        upper/ work/ merged/              overlay directories

The engine re-reads every record when it opens, so `inspect` after a restart tells the truth.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from runtime import serde
from runtime.api import ContainerInfo, Health, State
from runtime.errors import Conflict, NotFound
from runtime.types import ContainerSpec, Healthcheck, Mount, PortBinding


@dataclass(frozen=True)
class Resolved:
    """Decided once at create time from the spec over the image's config."""

    image_id: str
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str
    hostname: str
    stop_signal: str
    lowerdirs: tuple[str, ...]
    image_volumes: tuple[str, ...] = ()
    extra_mounts: tuple[Mount, ...] = ()  # anonymous volumes for the image's VOLUMEs
    healthcheck: Healthcheck | None = None  # the spec's, else the image's
    seccomp_profile: str = ""  # a custom seccomp profile's JSON, read at create ("" = none)


@dataclass(frozen=True)
class RunState:
    state: State = "created"
    pid: int = 0
    monitor_pid: int = 0  # the monitor holding its stdio (runtime.process.monitor)
    start_ticks: int = 0  # /proc/<pid>/stat field 22, to tell a reused pid apart
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    restart_count: int = 0
    stopped_by_user: bool = False
    error: str = ""
    ports: tuple[PortBinding, ...] = ()
    addresses: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerRecord:
    id: str
    spec: ContainerSpec
    resolved: Resolved
    created_at: float
    dir: Path
    run: RunState = field(default_factory=RunState)
    health: Health = ""

    @property
    def name(self) -> str:
        return self.spec.name

    def info(self) -> ContainerInfo:
        r = self.run
        return ContainerInfo(
            id=self.id, name=self.name, image=self.spec.image, spec=self.spec, state=r.state,
            pid=r.pid, exit_code=r.exit_code, oom_killed=r.oom_killed, created_at=self.created_at,
            started_at=r.started_at, finished_at=r.finished_at, restart_count=r.restart_count,
            health=self.health, error=r.error, ports=r.ports, addresses=dict(r.addresses),
            command=self.resolved.argv, image_id=self.resolved.image_id,
            mounts=(*self.spec.mounts, *self.resolved.extra_mounts),
        )

    def update(self, **changes: object) -> None:
        self.run = replace(self.run, **changes)  # type: ignore[arg-type]
        _write_json(self.dir / "state.json", serde.to_dict(self.run))

    def save_config(self) -> None:
        _write_json(self.dir / "config.json", {
            "id": self.id, "created_at": self.created_at,
            "spec": serde.to_dict(self.spec), "resolved": serde.to_dict(self.resolved),
        })

    @classmethod
    def load(cls, d: Path) -> ContainerRecord:
        cfg = json.loads((d / "config.json").read_text())
        rec = cls(
            id=cfg["id"], spec=serde.from_dict(ContainerSpec, cfg["spec"]),
            resolved=serde.from_dict(Resolved, cfg["resolved"]), created_at=cfg["created_at"], dir=d,
        )
        st = d / "state.json"
        if st.exists():
            raw = json.loads(st.read_text())
            if "shim_pid" in raw:  # written before the monitor replaced per-container shims
                raw["monitor_pid"] = raw.pop("shim_pid")
            rec.run = serde.from_dict(RunState, raw)
        return rec


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


class ContainerTable:
    """Index of records by id and name; prefix ids resolve as with Docker."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.by_id: dict[str, ContainerRecord] = {}

    def load_all(self) -> list[ContainerRecord]:
        self.root.mkdir(parents=True, exist_ok=True)
        for d in sorted(self.root.iterdir()):
            if not (d / "config.json").exists():
                continue  # not a container: see leftover_dirs
            rec = ContainerRecord.load(d)
            self.by_id[rec.id] = rec
        return list(self.by_id.values())

    def leftover_dirs(self) -> list[Path]:
        """Directories with no config.json: a create or a removal (rmtree) that an engine's
        death interrupted. No record points at them, so only a sweep at start removes them."""
        if not self.root.is_dir():
            return []
        return [d for d in sorted(self.root.iterdir())
                if d.is_dir() and d.name not in self.by_id and not (d / "config.json").exists()]

    def new_id(self) -> str:
        return secrets.token_hex(32)

    def add(self, rec: ContainerRecord) -> None:
        if any(r.name == rec.name for r in self.by_id.values()):
            raise Conflict(
                f"container name {rec.name!r} is already in use: remove it first or pick another name",
                subject=rec.name,
            )
        self.by_id[rec.id] = rec

    def discard(self, cid: str) -> None:
        self.by_id.pop(cid, None)

    def get(self, ref: str) -> ContainerRecord:
        rec = self.by_id.get(ref)
        if rec:
            return rec
        for r in self.by_id.values():
            if r.name == ref:
                return r
        matches = [r for r in self.by_id.values() if len(ref) >= 4 and r.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"no such container: {ref}", subject=ref)

    def all(self) -> list[ContainerRecord]:
        return list(self.by_id.values())

    def name_taken(self, name: str) -> bool:
        return any(r.name == name for r in self.by_id.values())


def now() -> float:
    return time.time()
