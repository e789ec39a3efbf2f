"""Top-level `networks:`, `volumes:`, `secrets:` and `configs:` entries."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from composer.spec.keys import CONFIG_KEYS, NETWORK_KEYS, SECRET_KEYS, VOLUME_KEYS
from composer.spec.mounts import resolve_path
from composer.spec.where import (
    Where,
    as_bool,
    as_list,
    as_map,
    as_str,
    check_keys,
    extensions,
    list_or_dict,
    scalar_text,
)
from runtime.paths import is_safe_name


def _external(raw: dict[str, Any], w: Where) -> tuple[bool, str | None]:
    """`external: true` or the deprecated `external: {name: x}` -> (external, name)."""
    if "external" not in raw:
        return False, None
    value = raw["external"]
    if isinstance(value, dict):
        check_keys(value, w.key("external"), ("name",))
        name = as_str(value["name"], w.key("external").key("name")) if "name" in value else None
        return True, name
    return as_bool(value, w.key("external")), None


def _labels(raw: dict[str, Any], w: Where) -> dict[str, str]:
    return {k: v or "" for k, v in list_or_dict(raw.get("labels", {}), w.key("labels")).items()}


def _opts(raw: dict[str, Any], w: Where) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in as_map(raw.get("driver_opts", {}), w.key("driver_opts")).items():
        if isinstance(v, bool) or v is None:
            w.key("driver_opts").key(k).fail("expected a string or number")
        out[k] = scalar_text(v, w.key("driver_opts").key(k)) or ""
    return out


def _check_external(raw: dict[str, Any], w: Where, external: bool, allowed: tuple[str, ...]) -> None:
    if external:
        extra = [k for k in raw if k not in allowed and not k.startswith("x-")]
        if extra:
            w.key(extra[0]).fail(f"an external resource cannot set {extra[0]} (remove it or external)")


@dataclass(frozen=True)
class IpamPool:
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    aux_addresses: dict[str, str] = field(default_factory=dict)

    @property
    def ipv6(self) -> bool:
        return ":" in (self.subnet or "")


@dataclass(frozen=True)
class NetworkConfig:
    key: str  # name in the stack file
    name: str | None = None  # explicit engine name (`name:` or external name)
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    ipam: tuple[IpamPool, ...] = ()
    ipam_driver: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, key: str, raw: Any, w: Where) -> NetworkConfig:
        if raw is None:
            return cls(key)
        raw = as_map(raw, w)
        check_keys(raw, w, NETWORK_KEYS)
        external, ext_name = _external(raw, w)
        _check_external(raw, w, external, ("name", "external"))
        driver = as_str(raw["driver"], w.key("driver")) if "driver" in raw else None
        if driver not in (None, "bridge", "default"):
            w.key("driver").fail(f'not supported: network driver "{driver}" (only bridge)')
        pools, ipam_driver = _ipam(raw["ipam"], w.key("ipam")) if "ipam" in raw else ((), None)
        if "enable_ipv4" in raw and not as_bool(raw["enable_ipv4"], w.key("enable_ipv4")):
            w.key("enable_ipv4").fail("not supported: networks without IPv4")
        return cls(
            key, as_str(raw["name"], w.key("name")) if "name" in raw else ext_name, driver,
            _opts(raw, w), external,
            as_bool(raw.get("internal", False), w.key("internal")),
            as_bool(raw.get("attachable", False), w.key("attachable")),
            as_bool(raw.get("enable_ipv6", False), w.key("enable_ipv6")),
            _labels(raw, w), pools, ipam_driver, extensions(raw),
        )


def _ipam(raw: Any, w: Where) -> tuple[tuple[IpamPool, ...], str | None]:
    raw = as_map(raw, w)
    check_keys(raw, w, ("driver", "config", "options"))
    driver = as_str(raw["driver"], w.key("driver")) if "driver" in raw else None
    if driver not in (None, "default"):
        w.key("driver").fail(f'not supported: IPAM driver "{driver}" (only the default one)')
    if "options" in raw:
        for k, v in as_map(raw["options"], w.key("options")).items():
            as_str(v, w.key("options").key(k))
        if raw["options"]:
            w.key("options").fail("not supported: IPAM driver options (the default IPAM driver has none)")
    pools: list[IpamPool] = []
    for i, item in enumerate(as_list(raw.get("config", []), w.key("config"))):
        wi = w.key("config").idx(i)
        item = as_map(item, wi)
        check_keys(item, wi, ("subnet", "gateway", "ip_range", "aux_addresses"))
        aux = {k: as_str(v, wi.key("aux_addresses").key(k))
               for k, v in as_map(item.get("aux_addresses", {}), wi.key("aux_addresses")).items()}
        subnet, gateway, ip_range = (
            as_str(item[k], wi.key(k)) if k in item else None for k in ("subnet", "gateway", "ip_range"))
        pool = IpamPool(subnet, gateway, ip_range, aux)
        if (pool.ip_range or pool.gateway or aux) and not pool.subnet:
            wi.fail("gateway, ip_range and aux_addresses need the pool's subnet (add subnet:)")
        if not pool.ipv6 and any(not p.ipv6 for p in pools):
            wi.fail("not supported: a second IPv4 pool (a bridge network has one IPv4 subnet, as "
                    "Docker's bridge driver)")
        pools.append(pool)
    return tuple(pools), driver


@dataclass(frozen=True)
class VolumeConfig:
    key: str
    name: str | None = None
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, key: str, raw: Any, w: Where, base_dir: str = "/") -> VolumeConfig:
        if raw is None:
            return cls(key)
        raw = as_map(raw, w)
        check_keys(raw, w, VOLUME_KEYS)
        external, ext_name = _external(raw, w)
        _check_external(raw, w, external, ("name", "external"))
        driver = as_str(raw["driver"], w.key("driver")) if "driver" in raw else None
        if driver not in (None, "local"):
            w.key("driver").fail(f'not supported: volume driver "{driver}" (only local)')
        name = as_str(raw["name"], w.key("name")) if "name" in raw else ext_name
        if name is not None and not external and not is_safe_name(name):
            w.key("name").fail(f'invalid volume name "{name}": use letters, digits, "_", ".", "-" '
                               f"and start with a letter or digit")
        return cls(
            key, name, driver, _volume_opts(_opts(raw, w), w.key("driver_opts"), base_dir),
            external, _labels(raw, w), extensions(raw),
        )


def _volume_opts(opts: dict[str, str], w: Where, base_dir: str) -> dict[str, str]:
    """The local driver's options: only its bind form (`type: none`, `o: bind`, `device:
    DIR`, a relative DIR against the project directory as compose-go resolves it) makes a
    volume here; its tmpfs, nfs or block forms need a mount of their own (not supported)."""
    if not opts:
        return opts
    flags = {f.strip() for f in opts.get("o", "").split(",") if f.strip()}
    if set(opts) - {"type", "o", "device"} or opts.get("type") != "none" or not flags & {"bind", "rbind"} \
            or flags - {"bind", "rbind"} or "device" not in opts:
        shown = ", ".join(f"{k}: {v}" for k, v in opts.items())
        w.fail(f"not supported: local volume options {shown} (only the bind form: type: none, "
               "o: bind, device: DIR)")
    if not opts["device"]:  # e.g. an unset ${VAR}: Compose loads it, the volume's creation fails
        return opts
    return {**opts, "device": resolve_path(opts["device"], base_dir)}


@dataclass(frozen=True)
class FileObject:
    """A top-level secret or config: its content comes from a file, a variable or inline text."""

    key: str
    kind: str  # "secret" | "config"
    name: str | None = None
    file: str | None = None  # absolute path
    environment: str | None = None  # variable name
    content: str | None = None  # configs only
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, key: str, kind: str, raw: Any, w: Where, base_dir: str) -> FileObject:
        raw = as_map(raw, w)
        allowed = SECRET_KEYS if kind == "secret" else CONFIG_KEYS
        check_keys(raw, w, allowed, unsupported={"driver": f"{kind} drivers"} if kind == "secret" else None)
        external, ext_name = _external(raw, w)
        if "driver" in raw:
            w.key("driver").fail(f"not supported: {kind} drivers (swarm only)")
        if "template_driver" in raw:
            w.key("template_driver").fail(f"not supported: {kind} template_driver")
        if "driver_opts" in raw:
            w.key("driver_opts").fail(f"not supported: {kind} driver_opts")
        sources = [k for k in ("file", "environment", "content") if k in raw]
        if not external and len(sources) != 1:
            w.fail(f"a {kind} needs exactly one of file, environment" + (", content" if kind == "config" else ""))
        return cls(
            key, kind, as_str(raw["name"], w.key("name")) if "name" in raw else ext_name,
            resolve_path(as_str(raw["file"], w.key("file")), base_dir) if "file" in raw else None,
            as_str(raw["environment"], w.key("environment")) if "environment" in raw else None,
            as_str(raw["content"], w.key("content")) if "content" in raw else None,
            external, _labels(raw, w), extensions(raw),
        )
