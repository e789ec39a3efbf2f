"""cpu controller: bandwidth (cpus) and relative weight (cpu_shares); CPU-time stats.

| limit      | v1 file                                  | v2 file                   |
|------------|------------------------------------------|---------------------------|
| cpus       | cpu.cfs_period_us, then cpu.cfs_quota_us | cpu.max "quota period"    |
| cpu_shares | cpu.shares                               | cpu.weight (converted)    |
| usage      | cpuacct.usage (ns)                       | cpu.stat usage_usec (us)  |
"""

from __future__ import annotations

from runtime.cgroups.base import Target, bad_limit
from runtime.types import Resources

MIN_PERIOD, MAX_PERIOD = 1_000, 1_000_000  # microseconds, kernel bounds for cfs_period_us
MIN_QUOTA = 1_000
MIN_SHARES, MAX_SHARES = 2, 262_144


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) -> cpu.weight (1..10000), the formula runc and crun use."""
    return 1 + ((shares - 2) * 9999) // 262142


def validate(name: str, res: Resources) -> None:
    if not MIN_PERIOD <= res.cpu_period <= MAX_PERIOD:
        raise bad_limit(
            name, "cpu_period", res.cpu_period, f"must be {MIN_PERIOD}..{MAX_PERIOD} us"
        )
    if res.cpu_quota is not None and res.cpu_quota != -1 and res.cpu_quota < MIN_QUOTA:
        raise bad_limit(
            name,
            "cpus",
            f"{res.cpu_quota / res.cpu_period:g}",
            f"the quota ({res.cpu_quota} us per {res.cpu_period} us) must be at least {MIN_QUOTA} us",
        )
    if res.cpu_shares is not None and not MIN_SHARES <= res.cpu_shares <= MAX_SHARES:
        raise bad_limit(name, "cpu_shares", res.cpu_shares, f"must be {MIN_SHARES}..{MAX_SHARES}")


def apply(t: Target, res: Resources) -> None:
    validate(t.name, res)
    cpus = None if res.cpu_quota is None else f"{res.cpu_quota / res.cpu_period:g}"
    if t.version == "v1":
        if res.cpu_quota is not None:
            t.write(
                "cpu",
                "cpu.cfs_period_us",
                str(res.cpu_period),
                limit="cpu_period",
                shown=res.cpu_period,
            )
            t.write("cpu", "cpu.cfs_quota_us", str(res.cpu_quota), limit="cpus", shown=cpus)
        if res.cpu_shares is not None:
            t.write(
                "cpu", "cpu.shares", str(res.cpu_shares), limit="cpu_shares", shown=res.cpu_shares
            )
        return
    if res.cpu_quota is not None:
        quota = "max" if res.cpu_quota == -1 else str(res.cpu_quota)
        t.write("cpu", "cpu.max", f"{quota} {res.cpu_period}", limit="cpus", shown=cpus)
    if res.cpu_shares is not None:
        weight = shares_to_weight(res.cpu_shares)
        t.write("cpu", "cpu.weight", str(weight), limit="cpu_shares", shown=res.cpu_shares)


def usage_ns(t: Target) -> int:
    if t.version == "v1":
        return t.read_int("cpuacct", "cpuacct.usage") if t.has_controller("cpuacct") else 0
    if not t.has("cpu", "cpu.stat"):
        return 0
    return t.read_keyed("cpu", "cpu.stat").get("usage_usec", 0) * 1000
