"""Small service sub-objects: healthcheck, depends_on, networks, env_file, secrets/configs, extends."""
from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass
from typing import Any

from composer.spec.units import parse_duration
from composer.spec.where import (
    Where,
    as_bool,
    as_int,
    as_list,
    as_map,
    as_str,
    check_keys,
    str_list,
    type_name,
    unique_items,
)

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...] | None = None  # None: keep the image's test; ("NONE",) disables
    interval: float | None = None  # seconds; None: default (30s)
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    start_interval: float | None = None
    disable: bool = False

    @classmethod
    def parse(cls, raw: Any, w: Where) -> Healthcheck:
        raw = as_map(raw, w)
        check_keys(raw, w, ("test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"))
        disable = as_bool(raw.get("disable", False), w.key("disable"))
        test: tuple[str, ...] | None = None
        if "test" in raw:
            test = parse_health_test(raw["test"], w.key("test"))
        if disable:
            test = ("NONE",)
        durations = {
            k: parse_duration(raw[k], w.key(k)) if k in raw else None
            for k in ("interval", "timeout", "start_period", "start_interval")
        }
        retries = None
        if "retries" in raw:
            value = raw["retries"]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            retries = as_int(value, w.key("retries"))
            if retries < 0:
                w.key("retries").fail("retries must not be negative")
        return cls(test=test, retries=retries, disable=disable or test == ("NONE",), **durations)


def parse_health_test(raw: Any, w: Where) -> tuple[str, ...]:
    if isinstance(raw, str):
        return ("CMD-SHELL", raw) if raw.strip() else ("NONE",)
    items = str_list(raw, w)
    if not items:
        w.fail('empty test (use ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"])')
    if items[0] not in ("CMD", "CMD-SHELL", "NONE"):
        w.fail(f'test must start with "CMD", "CMD-SHELL" or "NONE", got "{items[0]}"')
    if items[0] == "CMD-SHELL" and len(items) != 2:
        items = ("CMD-SHELL", " ".join(items[1:]))
    if items[0] == "CMD" and len(items) < 2:
        w.fail('"CMD" needs a command after it')
    return items


@dataclass(frozen=True)
class DependsOn:
    """One dependency; `parse_all` returns them sorted by service name (canonical order)."""

    service: str
    condition: str = "service_started"
    restart: bool = False
    required: bool = True

    @classmethod
    def parse_all(cls, raw: Any, w: Where) -> tuple[DependsOn, ...]:
        if isinstance(raw, list):
            unique_items(raw, w)
            names = [_service_name(s, w.idx(i)) for i, s in enumerate(str_list(raw, w))]
            return tuple(cls(s) for s in sorted(names))
        out: list[DependsOn] = []
        for name, opts in as_map(raw, w).items():
            wi = w.key(name)
            _service_name(name, wi)
            opts = as_map(opts, wi)
            check_keys(opts, wi, ("condition", "restart", "required"))
            if "required" in opts and not isinstance(opts["required"], bool):
                wi.key("required").fail(f"expected a boolean, got {type_name(opts['required'])}")
            if "condition" not in opts:
                wi.fail(f"missing key condition (one of {', '.join(CONDITIONS)})")
            condition = as_str(opts["condition"], wi.key("condition"))
            if condition not in CONDITIONS:
                wi.key("condition").fail(f'invalid condition "{condition}" (use one of {", ".join(CONDITIONS)})')
            out.append(cls(
                name, condition,
                restart=as_bool(opts.get("restart", False), wi.key("restart")),
                required=bool(opts.get("required", True)),
            ))
        return tuple(sorted(out, key=lambda d: d.service))


def _service_name(name: str, w: Where) -> str:
    if not SERVICE_NAME.match(name):
        w.fail(f'invalid service name "{name}" (use letters, digits, ".", "_", "-")')
    return name


@dataclass(frozen=True)
class ServiceNetwork:
    """One network of a service; `parse_all` sorts them by name (the runtime orders by priority)."""

    name: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    priority: int = 0
    gw_priority: int = 0
    mac_address: str | None = None
    interface_name: str | None = None
    link_local_ips: tuple[str, ...] = ()

    @classmethod
    def parse_all(cls, raw: Any, w: Where) -> tuple[ServiceNetwork, ...]:
        if isinstance(raw, list):
            unique_items(raw, w)
            names = [_network_name(n, w.idx(i)) for i, n in enumerate(str_list(raw, w))]
            return tuple(cls(n) for n in sorted(names))
        out = []
        for name, opts in as_map(raw, w).items():
            wi = w.key(name)
            _network_name(name, wi)
            if opts is None:
                out.append(cls(name))
                continue
            opts = as_map(opts, wi)
            check_keys(
                opts, wi, ("aliases", "ipv4_address", "ipv6_address", "priority", "gw_priority",
                           "mac_address", "interface_name", "link_local_ips"),
                unsupported={"driver_opts": "driver_opts on a service network"},
            )
            aliases: tuple[str, ...] = ()
            if "aliases" in opts:
                unique_items(as_list(opts["aliases"], wi.key("aliases")), wi.key("aliases"))
                aliases = str_list(opts["aliases"], wi.key("aliases"))
            out.append(cls(
                name, aliases,
                ipv4_address=_opt_str(opts, "ipv4_address", wi),
                ipv6_address=_opt_str(opts, "ipv6_address", wi),
                priority=_strict_int(opts.get("priority", 0), wi.key("priority")),
                gw_priority=_strict_int(opts.get("gw_priority", 0), wi.key("gw_priority")),
                mac_address=parse_mac(opts["mac_address"], wi.key("mac_address")) if "mac_address" in opts else None,
                interface_name=_ifname(opts["interface_name"], wi.key("interface_name"))
                if "interface_name" in opts else None,
                link_local_ips=_link_local(opts["link_local_ips"], wi.key("link_local_ips"))
                if "link_local_ips" in opts else (),
            ))
        return tuple(sorted(out, key=lambda n: n.name))


MAC = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")
IFNAME = re.compile(r"^[^/:\s]{1,15}$")


def parse_mac(value: Any, w: Where) -> str:
    """A unicast Ethernet address, `02:42:ac:11:00:02` (or with `-`), lowercase with `:`."""
    text = as_str(value, w)
    if not MAC.match(text):
        w.fail(f'invalid MAC address "{text}" (use six hex pairs like 02:42:ac:11:00:02)')
    mac = text.replace("-", ":").lower()
    if int(mac[:2], 16) & 1:
        w.fail(f'MAC address "{text}" is a multicast address (the first byte must be even)')
    return mac


def _ifname(value: Any, w: Where) -> str:
    text = as_str(value, w)
    if not IFNAME.match(text) or text in (".", "..", "lo"):
        w.fail(f'invalid interface_name "{text}" (1 to 15 characters, no "/", ":" or spaces, not lo)')
    return text


def _link_local(value: Any, w: Where) -> tuple[str, ...]:
    items = as_list(value, w)
    unique_items(items, w)
    out = []
    for i, text in enumerate(str_list(items, w)):
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            w.idx(i).fail(f'invalid IP address "{text}"')
        if ip.version == 6:
            w.idx(i).fail(f"not supported: IPv6 link-local address {text} (IPv6 is not supported)")
        if not ip.is_link_local:
            w.idx(i).fail(f"{text} is not a link-local address (use one of 169.254.0.0/16)")
        out.append(text)
    return tuple(out)


def _network_name(name: str, w: Where) -> str:
    if not SERVICE_NAME.match(name):
        w.fail(f'invalid network name "{name}" (use letters, digits, ".", "_", "-")')
    return name


def _opt_str(raw: dict[str, Any], key: str, w: Where) -> str | None:
    return as_str(raw[key], w.key(key)) if key in raw else None


def _strict_int(value: Any, w: Where) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        w.fail(f"expected an integer, got {type_name(value)}")
    return value


ENV_FILE_FORMATS = ("", "raw")  # "": Compose's .env syntax; raw: `docker run --env-file`


@dataclass(frozen=True)
class EnvFile:
    path: str  # absolute
    required: bool = True
    format: str = ""

    @classmethod
    def parse_all(cls, raw: Any, w: Where, base_dir: str) -> tuple[EnvFile, ...]:
        from composer.spec.mounts import resolve_path

        items = [raw] if isinstance(raw, str) else as_list(raw, w)
        out = []
        for i, item in enumerate(items):
            wi = w if isinstance(raw, str) else w.idx(i)
            if isinstance(item, str):
                out.append(cls(resolve_path(item, base_dir)))
                continue
            item = as_map(item, wi)
            check_keys(item, wi, ("path", "required", "format"))
            if "path" not in item:
                wi.fail("missing key path")
            fmt = as_str(item["format"], wi.key("format")) if "format" in item else ""
            if fmt not in ENV_FILE_FORMATS:
                wi.key("format").fail(f'unsupported env_file format "{fmt}" (use raw, or leave it out)')
            out.append(cls(
                resolve_path(as_str(item["path"], wi.key("path")), base_dir),
                as_bool(item.get("required", True), wi.key("required")), fmt,
            ))
        return tuple(out)


@dataclass(frozen=True)
class FileRef:
    """A service's use of a top-level secret or config."""

    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None

    @classmethod
    def parse_all(cls, raw: Any, w: Where) -> tuple[FileRef, ...]:
        from composer.spec.mounts import parse_mode

        out = []
        for i, item in enumerate(as_list(raw, w)):
            wi = w.idx(i)
            if isinstance(item, str):
                out.append(cls(item))
                continue
            item = as_map(item, wi)
            check_keys(item, wi, ("source", "target", "uid", "gid", "mode"))
            if "source" not in item:
                wi.fail("missing key source")
            for key in ("uid", "gid"):
                if key in item and not as_str(item[key], wi.key(key)).isdigit():
                    wi.key(key).fail(f"expected a numeric {key}, got {item[key]!r} (names are not "
                                     "resolved: use the number)")
            mode = parse_mode(item["mode"], wi.key("mode")) if "mode" in item else None
            if mode is not None and not 0 <= mode <= 0o7777:
                wi.key("mode").fail(f"file mode {mode:o} is out of range (0 to 7777)")
            out.append(cls(
                as_str(item["source"], wi.key("source")),
                _opt_str(item, "target", wi), _opt_str(item, "uid", wi), _opt_str(item, "gid", wi),
                mode,
            ))
        return tuple(out)


def parse_command(raw: Any, w: Where) -> tuple[str, ...] | None:
    """`command`/`entrypoint`: a string is split like a shell (as Compose), a list is kept."""
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            return tuple(shlex.split(raw))
        except ValueError as exc:
            w.fail(f"cannot split command: {exc}")
    return str_list(raw, w)
