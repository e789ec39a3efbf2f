"""Durations (`1m30s`, `1.5s`, `100ms`) and byte sizes (`512m`, `1g`, `1.5GB`) as Compose reads them."""
from __future__ import annotations

import re

from composer.spec.where import Where, type_name

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_duration(value: object, w: Where) -> float:
    """Go-style duration text -> seconds (the schema wants a string, as Compose)."""
    if not isinstance(value, str):
        w.fail(f'expected a duration like "1m30s", got {type_name(value)}')
    text = value.strip()
    if not text:
        w.fail('invalid duration "" (use e.g. "30s", "1m30s", "500ms")')
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        w.fail(f'invalid duration "{text}" (use e.g. "30s", "1m30s", "500ms")')
    return total


def format_duration(seconds: float) -> str:
    """Seconds -> shortest Go-style text (`90.0` -> `1m30s`), as `composer config` prints."""
    if seconds == 0:
        return "0s"
    ns = round(seconds * 1e9)
    parts: list[str] = []
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if ns:
        if ns % 10**9 == 0:
            parts.append(f"{ns // 10**9}s")
        elif not parts and ns < 10**9 and ns % 10**6 == 0:
            parts.append(f"{ns // 10**6}ms")
        else:
            parts.append(f"{ns / 1e9:g}s")
    return "".join(parts)


def parse_bytes(value: object, w: Where) -> int:
    """`512m`, `1g`, `1.5GB`, `1024` -> bytes (binary units, as Docker's RAMInBytes)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        w.fail(f'expected a size like "512m", got {type_name(value)}')
    if isinstance(value, (int, float)):
        if value < 0:
            w.fail(f"invalid size {value} (must not be negative)")
        return int(value)
    m = _BYTES.match(value)
    if not m:
        w.fail(f'invalid size "{value}" (use e.g. "512m", "1g", "1.5GB")')
    return int(float(m.group(1)) * _BYTE_UNITS[m.group(2).lower()])
