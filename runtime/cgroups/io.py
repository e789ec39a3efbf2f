"""blkio (v1) / io (v2) controller: the proportional weight `blkio_weight` (10..1000).

v1 writes blkio.weight (CFQ) or, when only BFQ is there, blkio.bfq.weight.
v2 writes io.bfq.weight with the same value when BFQ is there (as runc does), else io.weight
with the value mapped onto 1..10000: 1 + (weight - 10) * 9999 / 990.
A weight the user asked for on a host without any weight file is an error, never ignored.
"""

from __future__ import annotations

from runtime.cgroups.base import Target, bad_limit
from runtime.cgroups.errors import CgroupError
from runtime.types import Resources

MIN_WEIGHT, MAX_WEIGHT = 10, 1000


def blkio_to_io_weight(weight: int) -> int:
    return 1 + ((weight - MIN_WEIGHT) * 9999) // 990


def apply(t: Target, res: Resources) -> None:
    w = res.blkio_weight
    if w is None:
        return
    if not MIN_WEIGHT <= w <= MAX_WEIGHT:
        raise bad_limit(t.name, "blkio_weight", w, f"must be {MIN_WEIGHT}..{MAX_WEIGHT}")
    ctrl = "blkio" if t.version == "v1" else "io"
    candidates = (
        [("blkio.weight", w), ("blkio.bfq.weight", w)]
        if t.version == "v1"
        else [("io.bfq.weight", w), ("io.weight", blkio_to_io_weight(w))]
    )
    for filename, value in candidates:
        if t.has(ctrl, filename):
            t.write(ctrl, filename, str(value), limit="blkio_weight", shown=w)
            return
    raise CgroupError(
        f"cgroup {t.name}: blkio_weight={w} cannot be applied: this host's {ctrl} controller "
        "offers no weight file (the disk scheduler has no weights); remove blkio_config.weight",
        subject=t.name,
        limit="blkio_weight",
        value=w,
    )


def usage(t: Target) -> tuple[int, int]:
    """(bytes read, bytes written) by the cgroup's tasks, over every device (Docker's BLOCK
    I/O): v1 blkio.throttle.io_service_bytes(_recursive), v2 io.stat rbytes/wbytes."""
    ctrl = "blkio" if t.version == "v1" else "io"
    if not t.has_controller(ctrl):
        return 0, 0
    read = written = 0
    if t.version == "v1":
        for name in ("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"):
            if t.has(ctrl, name):
                for line in t.read(ctrl, name).splitlines():
                    parts = line.split()  # "8:0 Read 4096"
                    if len(parts) == 3 and parts[2].isdigit():
                        if parts[1] == "Read":
                            read += int(parts[2])
                        elif parts[1] == "Write":
                            written += int(parts[2])
                break
        return read, written
    if t.has(ctrl, "io.stat"):
        for line in t.read(ctrl, "io.stat").splitlines():  # "8:0 rbytes=1 wbytes=2 ..."
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                if key == "rbytes" and value.isdigit():
                    read += int(value)
                elif key == "wbytes" and value.isdigit():
                    written += int(value)
    return read, written
