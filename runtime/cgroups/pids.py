"""pids controller: pids.max (same file in v1 and v2); pids.current for stats.

`pids_limit` <= 0 means unlimited, as in docker ("max" is written).
"""

from __future__ import annotations

from runtime.cgroups.base import Target
from runtime.types import Resources


def apply(t: Target, res: Resources) -> None:
    if res.pids_limit is None:
        return
    value = "max" if res.pids_limit <= 0 else str(res.pids_limit)
    t.write("pids", "pids.max", value, limit="pids_limit", shown=res.pids_limit)


def current(t: Target) -> int:
    return t.read_int("pids", "pids.current") if t.has("pids", "pids.current") else 0
