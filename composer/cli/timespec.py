"""`--since` / `--until` values as docker compose takes them (moby's GetTimestamp):

    10m, 1h30m, 2.5s      a Go duration: that long before now
    2024-01-02T03:04:05Z  RFC 3339, with a zone (Z, +02:00) or without one (local time);
                          also 2024-01-02T03:04, 2024-01-02T03, 2024-01-02 and fractions
    1704164645[.5]        Unix seconds

-> epoch seconds. A value that is none of these is a ComposerError naming the flag.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from composer.errors import ComposerError

_DURATION = re.compile(r"^([+-]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+)$")
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_UNIX = re.compile(r"^\d+(\.\d+)?$")
_ZONE = re.compile(r"(Z|[+-]\d\d:\d\d)$", re.IGNORECASE)
_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H",
            "%Y-%m-%d")


def parse_time(value: str, flag: str, now: float | None = None) -> float:
    text = value.strip()
    now = time.time() if now is None else now
    m = _DURATION.match(text)
    if m and text != "0":
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(m.group(2)))
        return now + seconds if m.group(1) == "-" else now - seconds
    if _UNIX.match(text):
        return float(text)
    zone = _ZONE.search(text)
    body = text[:zone.start()] if zone else text
    if "." in body:  # Python takes at most 6 digits of fraction
        head, _, frac = body.partition(".")
        body = f"{head}.{frac[:6]}"
    for fmt in _FORMATS:
        try:
            dt = datetime.strptime(body, fmt)
        except ValueError:
            continue
        if zone is None:
            return dt.timestamp()  # local time, as Docker
        z = zone.group(1).upper()
        offset = 0 if z == "Z" else (1 if z[0] == "+" else -1) * (int(z[1:3]) * 60 + int(z[4:6]))
        return dt.replace(tzinfo=timezone(timedelta(minutes=offset))).timestamp()
    raise ComposerError(
        f"{flag} {value!r}: use a duration (10m, 1h30m), an RFC 3339 time "
        "(2024-01-02T15:04:05Z) or Unix seconds")
