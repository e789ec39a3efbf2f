"""How the kernel (6.1 .. 6.18) parses what is written to cgroup v2 interface files.

Each parser takes the bytes a write delivered (as text) and returns the text a later read
shows, or raises OSError with the errno the kernel's write handler returns. The helpers
mirror lib/kstrtox.c, lib/vsprintf.c (simple_strtoull, vsscanf) and lib/cmdline.c
(memparse); the handlers mirror mm/memcontrol.c, kernel/cgroup/pids.c, kernel/sched/core.c,
block/blk-iocost.c, block/bfq-cgroup.c, kernel/cgroup/cpuset.c and kernel/cgroup/cgroup.c.
tests/cgroupfs_cases.py runs the same operations against the fake and the real kernel.
"""

from __future__ import annotations

import errno
import os
import string

PAGE_SIZE = 4096
LONG_MAX = (1 << 63) - 1
U64_MAX = (1 << 64) - 1
PAGE_COUNTER_MAX = LONG_MAX // PAGE_SIZE  # include/linux/page_counter.h, 64-bit
PIDS_MAX = 4 * 1024 * 1024 + 1  # PID_MAX_LIMIT + 1 on 64-bit
CGROUP_WEIGHT_MIN, CGROUP_WEIGHT_MAX = 1, 10_000
BFQ_MIN_WEIGHT, BFQ_MAX_WEIGHT = 1, 1000
MIN_CFS_PERIOD_US, MAX_CFS_PERIOD_US = 1_000, 1_000_000
MAX_CFS_RUNTIME_US = (1 << 44) - 1  # MAX_BW: (1 << (64 - BW_SHIFT)) - 1 microseconds
SPACE = " \t\n\v\f\r"


def fail(code: int) -> OSError:
    return OSError(code, os.strerror(code))


# -- lib/kstrtox.c, lib/vsprintf.c, lib/cmdline.c ------------------------------------------


def _radix(s: str, base: int) -> tuple[int, str]:
    """_parse_integer_fixup_radix: base 0 means 0x.. hex, 0.. octal, else decimal."""
    if base == 0:
        if s[:1] == "0":
            if s[1:2].lower() == "x" and s[2:3] in string.hexdigits and s[2:3]:
                return 16, s[2:]
            return 8, s
        return 10, s
    if base == 16 and s[:2].lower() == "0x":
        return 16, s[2:]
    return base, s


def _digits(s: str, base: int) -> tuple[int, int]:
    """(value, digits consumed) as _parse_integer: stops at the first non-digit."""
    value = n = 0
    for ch in s:
        d = int(ch, 36) if ch.isalnum() and ch.isascii() else 99
        if d >= base:
            break
        value = value * base + d
        n += 1
    return value, n


def simple_strtoull(s: str, base: int = 0) -> tuple[int, str]:
    """(value mod 2**64, rest of the string); no sign, no error: the caller looks at the rest."""
    base, body = _radix(s, base)
    value, n = _digits(body, base)
    return value & U64_MAX, body[n:]


def kstrtoull(s: str, base: int = 0) -> int:
    """A whole-string unsigned number; one trailing newline allowed; EINVAL / ERANGE."""
    if s.startswith("+"):
        s = s[1:]
    return _kstrtoull(s, base)


def _kstrtoull(s: str, base: int) -> int:
    base, body = _radix(s, base)
    value, n = _digits(body, base)
    rest = body[n:]
    if n == 0 or rest not in ("", "\n"):
        raise fail(errno.EINVAL)
    if value > U64_MAX:
        raise fail(errno.ERANGE)
    return value


def kstrtoll(s: str, base: int = 0, bits: int = 64) -> int:
    if s.startswith("-"):
        v = _kstrtoull(s[1:], base)
        if v > 1 << (bits - 1):
            raise fail(errno.ERANGE)
        return -v
    v = kstrtoull(s, base)
    if v > (1 << (bits - 1)) - 1:
        raise fail(errno.ERANGE)
    return v


def kstrtoint(s: str, base: int = 0) -> int:
    return kstrtoll(s, base, bits=32)


def memparse(s: str) -> tuple[int, str]:
    """A size with an optional K/M/G/T/P/E suffix (either case); (bytes, rest)."""
    value, rest = simple_strtoull(s, 0)
    shifts = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}
    if rest[:1].lower() in shifts and rest[:1]:
        value = (value << shifts[rest[0].lower()]) & U64_MAX
        rest = rest[1:]
    return value, rest


def scan_uint(s: str, bits: int = 64) -> tuple[int, str] | None:
    """vsscanf's %u / %llu: skip spaces, then decimal digits; None when there are none."""
    s = s.lstrip(SPACE)
    if not s[:1].isdigit():
        return None
    value, rest = simple_strtoull(s, 10)
    return value & ((1 << bits) - 1), rest


def scan_token(s: str, width: int) -> tuple[str, str] | None:
    """vsscanf's %<width>s: skip spaces, then up to `width` non-space characters."""
    s = s.lstrip(SPACE)
    if not s:
        return None
    n = 0
    while n < len(s) and n < width and s[n] not in SPACE:
        n += 1
    return s[:n], s[n:]


# -- the write handlers -------------------------------------------------------------------


def page_counter(value: str) -> str:
    """memory.max / .high / .low / .min / .swap.max: "max" or a memparse size, kept in pages."""
    s = value.strip(SPACE)
    if s == "max":
        return "max"
    nbytes, rest = memparse(s)
    if rest:
        raise fail(errno.EINVAL)
    pages = min(nbytes // PAGE_SIZE, PAGE_COUNTER_MAX)
    return "max" if pages == PAGE_COUNTER_MAX else str(pages * PAGE_SIZE)


def pids_max(value: str) -> str:
    s = value.strip(SPACE)
    if s == "max":
        return "max"
    limit = kstrtoll(s, 0)
    if limit < 0 or limit >= PIDS_MAX:
        raise fail(errno.EINVAL)
    return str(limit)


def cpu_max(value: str, current: str) -> str:
    """ "$QUOTA [$PERIOD]" (microseconds); the period stays when not given."""
    period = int(current.split()[1])
    tok = scan_token(value, 20)
    if tok is None:
        raise fail(errno.EINVAL)
    word, rest = tok
    p = scan_uint(rest)
    if p is not None:
        period = p[0]
    q = scan_uint(word)
    if q is not None:
        quota: int | None = q[0]
    elif word == "max":
        quota = None
    else:
        raise fail(errno.EINVAL)
    # tg_set_cfs_bandwidth, in microseconds
    if (quota is not None and quota < MIN_CFS_PERIOD_US) or period < MIN_CFS_PERIOD_US:
        raise fail(errno.EINVAL)
    if period > MAX_CFS_PERIOD_US:
        raise fail(errno.EINVAL)
    if quota is not None and quota > MAX_CFS_RUNTIME_US:
        raise fail(errno.EINVAL)
    return f"{'max' if quota is None else quota} {period}"


def cpu_weight(value: str) -> str:
    w = kstrtoull(value, 0)
    if not CGROUP_WEIGHT_MIN <= w <= CGROUP_WEIGHT_MAX:
        raise fail(errno.ERANGE)
    return str(w)


def _scan_default(value: str, bits: int) -> int | None:
    """sscanf(buf, "default %u"): the literal word, optional spaces, a number."""
    s = value.lstrip(SPACE)
    if not s.startswith("default"):
        return None
    got = scan_uint(s[len("default"):], bits)
    return None if got is None else got[0]


def io_weight(value: str) -> str:
    """blk-iocost's io.weight: "default N" or "N" (1..10000, EINVAL outside)."""
    if ":" in value:
        raise fail(errno.EINVAL)  # per-device "MAJ:MIN N": not modelled (no devices here)
    v = _scan_default(value, 32)
    if v is None:
        got = scan_uint(value, 32)
        if got is None:
            raise fail(errno.EINVAL)
        v = got[0]
    if not CGROUP_WEIGHT_MIN <= v <= CGROUP_WEIGHT_MAX:
        raise fail(errno.EINVAL)
    return f"default {v}"


def bfq_weight(value: str) -> str:
    s = value.strip(SPACE)
    v, rest = simple_strtoull(s, 0)
    if rest:
        d = _scan_default(s, 64)
        if d is None:
            raise fail(errno.EINVAL)
        v = d
    if not BFQ_MIN_WEIGHT <= v <= BFQ_MAX_WEIGHT:
        raise fail(errno.ERANGE)
    return f"default {v}"


def parse_list(value: str, nbits: int) -> set[int]:
    """bitmap_parselist: "0-2,4"; EINVAL for bad syntax, ERANGE past the bitmap's size."""
    out: set[int] = set()
    for part in value.split(","):
        part = part.strip(SPACE)
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise fail(errno.EINVAL)
        a, b = int(lo), int(hi) if sep else int(lo)
        if a > b:
            raise fail(errno.EINVAL)
        if b >= nbits:
            raise fail(errno.ERANGE)
        out.update(range(a, b + 1))
    return out


def format_list(items: set[int]) -> str:
    """The kernel's %*pbl: "0-1,3"."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(items):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def cpuset_list(value: str, nbits: int, top: set[int]) -> str:
    """cpuset.cpus / cpuset.mems: "" clears; otherwise a subset of what the host has."""
    s = value.strip(SPACE)
    if not s:
        return ""
    items = parse_list(s, nbits)
    if not items <= top:
        raise fail(errno.EINVAL)
    return format_list(items)


def flag(value: str, allowed: tuple[int, ...]) -> int:
    """cgroup.freeze (0/1) and cgroup.kill (1): kstrtoint, ERANGE for other numbers."""
    v = kstrtoint(value.strip(SPACE), 0)
    if v not in allowed:
        raise fail(errno.ERANGE)
    return v


def pid(value: str) -> int:
    try:
        v = kstrtoint(value.strip(SPACE), 0)
    except OSError:
        raise fail(errno.EINVAL) from None
    if v < 0:
        raise fail(errno.EINVAL)
    return v
