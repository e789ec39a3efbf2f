"""memory controller: limit, swap, reservation, OOM killer; usage stats and OOM detection.

| limit              | v1 file                                  | v2 file           |
|--------------------|------------------------------------------|-------------------|
| memory             | memory.limit_in_bytes                    | memory.max        |
| memory_swap        | memory.memsw.limit_in_bytes (if present) | memory.swap.max   |
| memory_reservation | memory.soft_limit_in_bytes               | memory.low        |
| oom_kill_disable   | memory.oom_control                       | (not in v2)       |

Swap follows docker: `memory_swap` is memory+swap. None -> twice `memory` (as much swap as
memory); -1 -> unlimited swap; equal to `memory` -> no swap. v2 takes the swap part only.
"""

from __future__ import annotations

import logging

from runtime.cgroups.base import Target, bad_limit
from runtime.types import Resources

log = logging.getLogger(__name__)

MIN_MEMORY = 6 * 1024 * 1024  # docker's minimum; below it the container cannot even start
UNLIMITED_V1 = 1 << 62  # v1 reports "unlimited" as PAGE_COUNTER_MAX * PAGE_SIZE (~2^63)


def swap_total(res: Resources) -> int | None:
    """memory+swap in bytes as docker computes it; -1 = unlimited; None = no memory limit."""
    if res.memory is None:
        return None
    if res.memory_swap is None:
        return 2 * res.memory
    return res.memory_swap


def validate(name: str, res: Resources) -> None:
    if res.memory is not None and res.memory < MIN_MEMORY:
        raise bad_limit(name, "memory", res.memory, f"the minimum is {MIN_MEMORY} bytes (6 MiB)")
    if res.memory_swap is not None:
        if res.memory is None:
            raise bad_limit(
                name,
                "memory_swap",
                res.memory_swap,
                "set a memory limit too (memswap_limit needs mem_limit)",
            )
        if res.memory_swap != -1 and res.memory_swap < res.memory:
            raise bad_limit(
                name,
                "memory_swap",
                res.memory_swap,
                f"it is memory+swap and must be >= memory ({res.memory}) or -1 for unlimited",
            )
    if res.memory_reservation is not None:
        if res.memory_reservation < 0:
            raise bad_limit(name, "memory_reservation", res.memory_reservation, "must be >= 0")
        if res.memory is not None and res.memory_reservation > res.memory:
            raise bad_limit(
                name,
                "memory_reservation",
                res.memory_reservation,
                f"must not exceed the memory limit ({res.memory})",
            )


def apply(t: Target, res: Resources) -> None:
    validate(t.name, res)
    if t.version == "v1":
        _apply_v1(t, res)
    else:
        _apply_v2(t, res)


def _apply_v1(t: Target, res: Resources) -> None:
    if res.memory is not None:
        total = swap_total(res)
        memsw = "-1" if total == -1 else str(total)
        if t.has("memory", "memory.memsw.limit_in_bytes"):
            # The kernel keeps limit <= memsw at every moment, so order the two writes.
            current = t.read_int("memory", "memory.memsw.limit_in_bytes")
            raising = total == -1 or (total is not None and total > current)
            if raising:
                _write_memsw(t, memsw, res)
                _write_limit(t, res)
            else:
                _write_limit(t, res)
                _write_memsw(t, memsw, res)
        else:
            if res.memory_swap not in (None, res.memory):
                log.warning(
                    "cgroup %s: swap accounting is off; memory_swap is not enforced", t.name
                )
            _write_limit(t, res)
    if res.memory_reservation is not None:
        t.write(
            "memory",
            "memory.soft_limit_in_bytes",
            str(res.memory_reservation),
            limit="memory_reservation",
            shown=res.memory_reservation,
        )
    if res.oom_kill_disable:
        t.write("memory", "memory.oom_control", "1", limit="oom_kill_disable", shown=True)


def _write_limit(t: Target, res: Resources) -> None:
    t.write("memory", "memory.limit_in_bytes", str(res.memory), limit="memory", shown=res.memory)


def _write_memsw(t: Target, memsw: str, res: Resources) -> None:
    shown = res.memory_swap if res.memory_swap is not None else f"{memsw} (2x memory)"
    t.write("memory", "memory.memsw.limit_in_bytes", memsw, limit="memory_swap", shown=shown)


def _apply_v2(t: Target, res: Resources) -> None:
    if res.memory is not None:
        t.write("memory", "memory.max", str(res.memory), limit="memory", shown=res.memory)
        total = swap_total(res)
        swap = "max" if total == -1 else str(max(0, (total or 0) - res.memory))
        if t.has("memory", "memory.swap.max"):
            shown = res.memory_swap if res.memory_swap is not None else f"{swap} (swap = memory)"
            t.write("memory", "memory.swap.max", swap, limit="memory_swap", shown=shown)
        elif res.memory_swap not in (None, res.memory):
            log.warning("cgroup %s: swap accounting is off; memory_swap is not enforced", t.name)
    if res.memory_reservation is not None:
        t.write(
            "memory",
            "memory.low",
            str(res.memory_reservation),
            limit="memory_reservation",
            shown=res.memory_reservation,
        )
    if res.oom_kill_disable:
        log.warning("cgroup %s: oom_kill_disable is not supported on cgroup v2; ignored", t.name)


def usage(t: Target) -> tuple[int, int, int]:
    """(usage, peak, limit) in bytes; peak 0 when unknown, limit 0 when unlimited."""
    if not t.has_controller("memory"):
        return 0, 0, 0
    if t.version == "v1":
        used = t.read_int("memory", "memory.usage_in_bytes")
        peak = t.read_int("memory", "memory.max_usage_in_bytes")
        limit = t.read_int("memory", "memory.limit_in_bytes")
        return used, peak, 0 if limit >= UNLIMITED_V1 else limit
    used = t.read_int("memory", "memory.current")
    peak = t.read_int("memory", "memory.peak") if t.has("memory", "memory.peak") else 0
    raw = t.read("memory", "memory.max")
    return used, peak, 0 if raw == "max" else int(raw)


def oom_killed(t: Target) -> bool:
    """Did the kernel's OOM killer act in this cgroup? (counters, so ask after the fact)."""
    if not t.has_controller("memory"):
        return False
    if t.has("memory", "memory.events"):  # v2, and v1 kernels that back-port it
        return t.read_keyed("memory", "memory.events").get("oom_kill", 0) > 0
    if t.version == "v1" and t.has("memory", "memory.oom_control"):
        ctl = t.read_keyed("memory", "memory.oom_control")
        return ctl.get("oom_kill", 0) > 0 or ctl.get("under_oom", 0) == 1
    return False
