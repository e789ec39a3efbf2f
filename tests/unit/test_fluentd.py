"""runtime.process.fluentd: the msgpack it writes (decoded by a reader written here from the
spec, not by the encoder's code), the addresses it takes, and Compose's `logging:` options."""
from __future__ import annotations

import struct
from typing import Any

import pytest

from composer.errors import SpecError
from composer.spec.resources import Logging
from composer.spec.where import Where
from runtime.process.fluentd import EventTime, pack, parse_address


def unpack_all(data: bytes) -> list[Any]:
    """Every msgpack value in `data` (str, uint, bool, array, map, EventTime as a tuple)."""
    out, pos = [], 0
    while pos < len(data):
        value, pos = _unpack(data, pos)
        out.append(value)
    return out


def _unpack(b: bytes, i: int) -> tuple[Any, int]:
    t = b[i]
    i += 1
    if t < 0x80:
        return t, i
    if 0xA0 <= t <= 0xBF or t in (0xD9, 0xDA, 0xDB):
        if t <= 0xBF:
            n = t & 0x1F
        else:
            size = {0xD9: 1, 0xDA: 2, 0xDB: 4}[t]
            n = int.from_bytes(b[i:i + size], "big")
            i += size
        return b[i:i + n].decode(), i + n
    if 0x90 <= t <= 0x9F or t in (0xDC, 0xDD) or 0x80 <= t <= 0x8F or t in (0xDE, 0xDF):
        is_map = 0x80 <= t <= 0x8F or t in (0xDE, 0xDF)
        if t in (0xDC, 0xDE):
            n, i = int.from_bytes(b[i:i + 2], "big"), i + 2
        elif t in (0xDD, 0xDF):
            n, i = int.from_bytes(b[i:i + 4], "big"), i + 4
        else:
            n = t & 0x0F
        items = []
        for _ in range(n * 2 if is_map else n):
            v, i = _unpack(b, i)
            items.append(v)
        return (dict(zip(items[::2], items[1::2], strict=True)) if is_map else items), i
    if t == 0xCE:
        return int.from_bytes(b[i:i + 4], "big"), i + 4
    if t in (0xC2, 0xC3):
        return t == 0xC3, i
    if t == 0xD7 and b[i] == 0:  # fixext 8, type 0: EventTime
        return struct.unpack(">II", b[i + 1:i + 9]), i + 9
    raise AssertionError(f"unexpected msgpack type byte {t:#x} at {i - 1}")


def test_pack_round_trips_every_size_class() -> None:
    values: list[Any] = ["", "x" * 31, "y" * 32, "z" * 300, "w" * 70000, "é", 0, 127, 128,
                         2**32 - 1, True, False, [], list(range(20)), {"k": "v"},
                         {str(i): i for i in range(17)}]
    assert unpack_all(b"".join(pack(v) for v in values)) == values
    assert pack("abc") == b"\xa3abc" and pack(300) == b"\xce\x00\x00\x01\x2c"
    assert unpack_all(pack(EventTime(1700000000, 5))) == [(1700000000, 5)]
    with pytest.raises(ValueError):
        pack(-1)


@pytest.mark.parametrize(("text", "want"), [
    ("", "tcp://localhost:24224"), ("fluent", "tcp://fluent:24224"),
    ("127.0.0.1:24225", "tcp://127.0.0.1:24225"), ("tcp://h:1", "tcp://h:1"),
    ("[::1]:9", "tcp://::1:9"), ("unix:///run/fluent.sock", "unix:///run/fluent.sock"),
])
def test_addresses_as_docker(text: str, want: str) -> None:
    assert parse_address(text) == want


@pytest.mark.parametrize("text", ["udp://h:1", "h:0", "h:x", "unix://rel.sock", "::1:9"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


def _logging(options: dict[str, Any]) -> Logging:
    return Logging.parse({"driver": "fluentd", "options": options}, Where("compose.yaml").key("logging"))


def test_logging_options_for_fluentd() -> None:
    lg = _logging({"fluentd-address": "127.0.0.1:24224", "tag": "app.{{.Name}}",
                   "fluentd-async": "true", "fluentd-sub-second-precision": "1"})
    assert (lg.fluentd_address, lg.tag, lg.fluentd_async, lg.fluentd_sub_second) == (
        "tcp://127.0.0.1:24224", "app.{{.Name}}", True, True)
    assert _logging({}).fluentd_address == "tcp://localhost:24224"


@pytest.mark.parametrize(("options", "message"), [
    ({"fluentd-buffer-limit": "1m"}, "unknown option 'fluentd-buffer-limit' for logging driver fluentd"),
    ({"labels": "a"}, "unknown option 'labels' for logging driver fluentd"),
    ({"fluentd-address": "udp://h:1"}, "fluentd-address: unsupported scheme 'udp'"),
    ({"tag": "{{.DaemonName}}"}, r"tag: unknown tag field \{\{.DaemonName\}\}"),
    ({"fluentd-async": "maybe"}, "fluentd-async 'maybe' is not true or false"),
])
def test_logging_options_for_fluentd_refused_by_name(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _logging(options)
