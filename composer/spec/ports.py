"""`ports:` and `expose:` entries.

Short syntax `[[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/PROTOCOL]` with ranges
(`8000-8002:80-82`) and bracketed IPv6 (`[::1]:80:80`), or the long mapping. A range
expands to one `PortSpec` per port, as Compose does. A host range for one container port
(`8000-8010:80`, long form `published: "8000-8010"`) stays one `PortSpec` with
`published_end`: the engine binds the first free host port in the range, as Docker does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from composer.spec.where import Where, as_int, as_map, as_str, check_keys, scalar_text

PROTOCOLS = ("tcp", "udp", "sctp")
LONG_KEYS = ("name", "mode", "host_ip", "target", "published", "protocol", "app_protocol")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class PortSpec:
    target: int
    published: int | None = None  # None: a free host port
    host_ip: str = ""
    protocol: str = "tcp"
    mode: str = "ingress"
    name: str | None = None
    app_protocol: str | None = None
    published_end: int | None = None  # a host range published..published_end (first free port)
    # `config --no-interpolate` only: a short entry holding a variable, kept as written (its
    # numbers are unknown until substituted; Compose prints it as written too)
    as_written: str | None = None

    @property
    def published_text(self) -> str | None:
        """`published` as Compose writes it: "8080", "8000-8010", or None."""
        if self.published is None:
            return None
        return f"{self.published}-{self.published_end}" if self.published_end else str(self.published)

    @classmethod
    def parse(cls, raw: Any, w: Where) -> list[PortSpec]:
        if isinstance(raw, dict):
            return [cls._parse_long(raw, w)]
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            w.fail("expected a port like \"8080:80\" or a mapping with target/published")
        if isinstance(raw, float):
            w.fail(f"invalid port {raw} (use an integer)")
        return cls._parse_short(str(raw), w)

    @classmethod
    def _parse_long(cls, raw: dict[str, Any], w: Where) -> PortSpec:
        raw = as_map(raw, w)
        check_keys(raw, w, LONG_KEYS)
        if "target" not in raw:
            w.fail("missing key target (the port inside the container)")
        target = _port(as_int(raw["target"], w.key("target")), w.key("target"))
        published: int | None = None
        published_end: int | None = None
        if "published" in raw and raw["published"] != "":
            text = scalar_text(raw["published"], w.key("published"))
            lo, hi = _range(str(text), w.key("published"))
            published, published_end = lo, (hi if hi != lo else None)
        protocol = _protocol(as_str(raw.get("protocol", "tcp"), w.key("protocol")), w.key("protocol"))
        mode = as_str(raw.get("mode", "ingress"), w.key("mode"))
        if mode not in ("ingress", "host"):
            w.key("mode").fail(f'invalid port mode "{mode}" (use "ingress" or "host")')
        return cls(
            target=target,
            published=published,
            published_end=published_end,
            host_ip=as_str(raw.get("host_ip", ""), w.key("host_ip")),
            protocol=protocol,
            mode=mode,
            name=as_str(raw["name"], w.key("name")) if "name" in raw else None,
            app_protocol=(
                as_str(raw["app_protocol"], w.key("app_protocol")) if "app_protocol" in raw else None
            ),
        )

    @classmethod
    def _parse_short(cls, text: str, w: Where) -> list[PortSpec]:
        if "${" in text:  # only unsubstituted (config --no-interpolate) can it hold one
            return [cls(target=0, as_written=text)]
        body, _, proto = text.partition("/")
        protocol = _protocol(proto or "tcp", w)
        host_ip = ""
        if body.startswith("["):
            close = body.find("]")
            if close < 0 or body[close + 1:close + 2] != ":":
                w.fail(f'invalid port "{text}" (use "[::1]:8080:80")')
            host_ip, body = body[1:close], body[close + 2:]
            parts = body.split(":")
            if len(parts) == 1:
                parts = ["", parts[0]]
        else:
            parts = body.split(":")
            if len(parts) == 3:
                host_ip, parts = parts[0], parts[1:]
            elif len(parts) > 3:
                w.fail(f'invalid port "{text}" (use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL])')
        if len(parts) == 1:
            lo, hi = _range(parts[0], w, text)
            return [cls(target=p, protocol=protocol, host_ip=host_ip) for p in range(lo, hi + 1)]
        host, container = parts
        clo, chi = _range(container, w, text)
        if not host:
            return [cls(target=p, protocol=protocol, host_ip=host_ip) for p in range(clo, chi + 1)]
        hlo, hhi = _range(host, w, text)
        if clo == chi and hlo != hhi:  # one container port, the first free host port of a range
            return [cls(target=clo, published=hlo, published_end=hhi, protocol=protocol, host_ip=host_ip)]
        if hhi - hlo != chi - clo:
            w.fail(f'invalid port "{text}": host and container ranges differ in length')
        return [
            cls(target=c, published=h, protocol=protocol, host_ip=host_ip)
            for h, c in zip(range(hlo, hhi + 1), range(clo, chi + 1), strict=True)
        ]


def _protocol(text: str, w: Where) -> str:
    proto = text.lower()
    if proto not in PROTOCOLS:
        w.fail(f'invalid protocol "{text}" (use tcp, udp or sctp)')
    return proto


def _port(value: int, w: Where) -> int:
    if not 0 < value < 65536:
        w.fail(f"invalid port {value} (must be 1-65535)")
    return value


def _range(text: str, w: Where, whole: str | None = None) -> tuple[int, int]:
    m = _RANGE.match(text.strip())
    if not m:
        w.fail(f'invalid port "{whole or text}" (use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL])')
    lo = _port(int(m.group(1)), w)
    hi = _port(int(m.group(2)), w) if m.group(2) else lo
    if hi < lo:
        w.fail(f'invalid port range "{text}" (end before start)')
    return lo, hi


def parse_expose(raw: Any, w: Where) -> tuple[str, ...]:
    """`expose:` -> ("3306", "5000-5002/udp", ...): kept as text, validated."""
    out: list[str] = []
    if not isinstance(raw, list):
        w.fail(f"expected a sequence, got {type(raw).__name__}")
    for i, item in enumerate(raw):
        wi = w.idx(i)
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            wi.fail("expected a port number or string like \"3306\" or \"5000-5002/udp\"")
        text = str(item)
        body, _, proto = text.partition("/")
        if proto:
            _protocol(proto, wi)
        _range(body, wi, text)
        out.append(text)
    return tuple(out)
