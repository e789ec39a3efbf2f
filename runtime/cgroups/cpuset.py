"""cpuset controller: pin to CPUs (`cpuset_cpus`) and memory nodes (`cpuset_mems`).

| limit       | v1 file      | v2 file      | checked against (parent's)                        |
|-------------|--------------|--------------|---------------------------------------------------|
| cpuset_cpus | cpuset.cpus  | cpuset.cpus  | v1 cpuset.effective_cpus / v2 cpuset.cpus.effective |
| cpuset_mems | cpuset.mems  | cpuset.mems  | v1 cpuset.effective_mems / v2 cpuset.mems.effective |

v1 quirk: a new cpuset cgroup starts with empty cpus/mems and refuses tasks (ENOSPC) until
they are set, so the driver copies them from the parent at create time (`inherit`).
"""

from __future__ import annotations

from pathlib import Path

from runtime.cgroups.base import Target, bad_limit
from runtime.cgroups.fs import CgroupFS
from runtime.types import Resources


def parse_list(text: str) -> set[int]:
    """ "0-2,4" -> {0, 1, 2, 4}; raises ValueError on anything else."""
    out: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        a, b = int(lo), int(hi) if sep else int(lo)
        if a < 0 or b < a:
            raise ValueError(part)
        out.update(range(a, b + 1))
    return out


def _check(t: Target, limit: str, value: str, effective: tuple[str, ...]) -> None:
    try:
        wanted = parse_list(value)
    except ValueError:
        raise bad_limit(t.name, limit, value, "use a list like 0-2,4") from None
    if not wanted:
        raise bad_limit(t.name, limit, value, "the list is empty")
    parent = t.file("cpuset", "x").parent.parent
    for filename in effective:
        path = parent / filename
        if t.fs.exists(path):
            text = t.fs.read(path).strip()
            avail = parse_list(text) if text else set()
            if avail and not wanted <= avail:
                raise bad_limit(t.name, limit, value, f"this host offers only {text}")
            return


def apply(t: Target, res: Resources) -> None:
    if res.cpuset_cpus is None and res.cpuset_mems is None:
        return
    v1 = t.version == "v1"
    if res.cpuset_cpus is not None:
        eff = (
            ("cpuset.effective_cpus", "cpuset.cpus")
            if v1
            else ("cpuset.cpus.effective", "cpuset.cpus")
        )
        _check(t, "cpuset_cpus", res.cpuset_cpus, eff)
        t.write(
            "cpuset", "cpuset.cpus", res.cpuset_cpus, limit="cpuset_cpus", shown=res.cpuset_cpus
        )
    if res.cpuset_mems is not None:
        eff = (
            ("cpuset.effective_mems", "cpuset.mems")
            if v1
            else ("cpuset.mems.effective", "cpuset.mems")
        )
        _check(t, "cpuset_mems", res.cpuset_mems, eff)
        t.write(
            "cpuset", "cpuset.mems", res.cpuset_mems, limit="cpuset_mems", shown=res.cpuset_mems
        )


def inherit(fs: CgroupFS, directory: Path) -> None:
    """v1: copy cpuset.cpus and cpuset.mems from the parent when they are empty."""
    for filename in ("cpuset.cpus", "cpuset.mems"):
        path = directory / filename
        if fs.exists(path) and not fs.read(path).strip():
            fs.write(path, fs.read(directory.parent / filename).strip())
