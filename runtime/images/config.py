"""The image config: what a container inherits from its image (OCI image config JSON).

`ImageConfig` is the typed view; the JSON is the truth for the image id (sha256 of its bytes),
so imported images keep their original bytes and only images we make are serialised here
(keys sorted, compact, so the same config gives the same id).
"""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field, replace
from typing import Any

from runtime.errors import InvalidArgument
from runtime.types import Healthcheck

_NS = 1_000_000_000
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_HC_DEFAULTS = Healthcheck(test=("NONE",))


def host_arch() -> str:
    m = platform.machine()
    return _ARCH.get(m, m)


@dataclass(frozen=True)
class ImageConfig:
    env: tuple[str, ...] = ()  # "KEY=value", in image order
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    volumes: tuple[str, ...] = ()  # container paths
    healthcheck: Healthcheck | None = None
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str | None = None
    shell: tuple[str, ...] | None = None
    architecture: str = field(default_factory=host_arch)
    os: str = "linux"
    variant: str | None = None
    created: str | None = None  # RFC 3339
    author: str | None = None
    history: tuple[dict[str, Any], ...] = ()  # OCI history entries, oldest first

    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def with_changes(self, **changes: Any) -> ImageConfig:
        return replace(self, **changes)

    # -- OCI JSON -------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: bytes | str | dict[str, Any]) -> tuple[ImageConfig, tuple[str, ...]]:
        """Parse an OCI/Docker image config; returns (config, rootfs diff_ids)."""
        if not isinstance(data, dict):
            try:
                data = json.loads(data)
            except ValueError as e:
                raise InvalidArgument(f"image config is not valid json ({e})") from e
        if not isinstance(data, dict):
            raise InvalidArgument("image config is not a json object")
        c = data.get("config") or data.get("container_config") or {}
        rootfs = data.get("rootfs") or {}
        diff_ids = tuple(rootfs.get("diff_ids") or ())
        cfg = cls(
            env=tuple(c.get("Env") or ()),
            cmd=_opt_tuple(c.get("Cmd")),
            entrypoint=_opt_tuple(c.get("Entrypoint")),
            working_dir=c.get("WorkingDir") or "",
            user=c.get("User") or "",
            exposed_ports=tuple(sorted(c.get("ExposedPorts") or {})),
            volumes=tuple(sorted(c.get("Volumes") or {})),
            healthcheck=_parse_healthcheck(c.get("Healthcheck")),
            labels=dict(c.get("Labels") or {}),
            stop_signal=c.get("StopSignal") or None,
            shell=_opt_tuple(c.get("Shell")),
            architecture=data.get("architecture") or host_arch(),
            os=data.get("os") or "linux",
            variant=data.get("variant") or None,
            created=data.get("created") or None,
            author=data.get("author") or None,
            history=tuple(data.get("history") or ()),
        )
        return cfg, diff_ids

    def to_dict(self, diff_ids: tuple[str, ...] | list[str]) -> dict[str, Any]:
        c: dict[str, Any] = {}
        if self.env:
            c["Env"] = list(self.env)
        if self.cmd is not None:
            c["Cmd"] = list(self.cmd)
        if self.entrypoint is not None:
            c["Entrypoint"] = list(self.entrypoint)
        if self.working_dir:
            c["WorkingDir"] = self.working_dir
        if self.user:
            c["User"] = self.user
        if self.exposed_ports:
            c["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.volumes:
            c["Volumes"] = {v: {} for v in self.volumes}
        if self.healthcheck is not None:
            c["Healthcheck"] = _dump_healthcheck(self.healthcheck)
        if self.labels:
            c["Labels"] = dict(self.labels)
        if self.stop_signal:
            c["StopSignal"] = self.stop_signal
        if self.shell is not None:
            c["Shell"] = list(self.shell)
        d: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "config": c,
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        }
        if self.variant:
            d["variant"] = self.variant
        if self.created:
            d["created"] = self.created
        if self.author:
            d["author"] = self.author
        if self.history:
            d["history"] = [dict(h) for h in self.history]
        return d

    def to_json(self, diff_ids: tuple[str, ...] | list[str]) -> bytes:
        return json.dumps(self.to_dict(diff_ids), sort_keys=True, separators=(",", ":")).encode()


def _opt_tuple(v: Any) -> tuple[str, ...] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return (v,)
    return tuple(str(x) for x in v)


def _parse_healthcheck(h: Any) -> Healthcheck | None:
    if not h or not h.get("Test"):
        return None

    def secs(key: str, default: float) -> float:
        v = h.get(key) or 0
        return v / _NS if v else default

    return Healthcheck(
        test=tuple(h["Test"]),
        interval=secs("Interval", _HC_DEFAULTS.interval),
        timeout=secs("Timeout", _HC_DEFAULTS.timeout),
        retries=int(h.get("Retries") or _HC_DEFAULTS.retries),
        start_period=secs("StartPeriod", _HC_DEFAULTS.start_period),
        start_interval=secs("StartInterval", _HC_DEFAULTS.start_interval),
    )


def _dump_healthcheck(h: Healthcheck) -> dict[str, Any]:
    return {
        "Test": list(h.test),
        "Interval": round(h.interval * _NS),
        "Timeout": round(h.timeout * _NS),
        "Retries": h.retries,
        "StartPeriod": round(h.start_period * _NS),
        "StartInterval": round(h.start_interval * _NS),
    }
