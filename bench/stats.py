"""Samples, rows and the results table: the bench's only data model.

A `Row` is one scenario: our sample, each peer's sample, a unit and a target. `Sample`s
hold raw values so the JSON keeps every run; p50/p95 are computed, never typed in.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    if not values:
        raise ValueError("percentile of an empty sample")
    s = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(s)))
    return s[min(rank, len(s)) - 1]


@dataclass
class Sample:
    values: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.values)

    @property
    def p95(self) -> float:
        return percentile(self.values, 95)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"runs": len(self.values), "values": [round(v, 4) for v in self.values]}
        if self.values:
            out["p50"] = round(self.p50, 4)
            out["p95"] = round(self.p95, 4)
            out["min"] = round(min(self.values), 4)
            out["max"] = round(max(self.values), 4)
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Row:
    scenario: str
    unit: str
    ours: Sample | None = None
    peers: dict[str, Sample] = field(default_factory=dict)
    target: str = ""
    met: bool | None = None  # None: no target, or nothing measured
    note: str = ""
    higher_is_better: bool = False

    def ratio(self, peer: str) -> float | None:
        """ours/peer on the p50s (None when either side is missing or zero)."""
        other = self.peers.get(peer)
        if self.ours is None or not self.ours.values or other is None or not other.values:
            return None
        if other.p50 == 0:
            return None
        return self.ours.p50 / other.p50

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "unit": self.unit,
            "ours": self.ours.to_json() if self.ours else None,
            "peers": {k: v.to_json() for k, v in self.peers.items()},
            "ratios": {k: (round(r, 3) if (r := self.ratio(k)) is not None else None)
                       for k in self.peers},
            "target": self.target,
            "target_met": self.met,
            "note": self.note,
        }


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(rows: list[Row]) -> str:
    """A plain-text table: scenario, ours p50/p95, each peer's p50 and ours/peer, target."""
    header = ["scenario", "unit", "ours p50", "ours p95", "peers: p50 (ours/peer)", "target", "met"]
    lines: list[list[str]] = [header]
    for r in rows:
        ours50 = fmt(r.ours.p50) if r.ours and r.ours.values else "-"
        ours95 = fmt(r.ours.p95) if r.ours and len(r.ours.values) > 1 else "-"
        peers = []
        for name, s in r.peers.items():
            if not s.values:
                peers.append(f"{name}: n/a")
                continue
            ratio = r.ratio(name)
            peers.append(f"{name} {fmt(s.p50)} ({fmt(ratio)}x)" if ratio is not None
                         else f"{name} {fmt(s.p50)}")
        met = "" if r.met is None else ("yes" if r.met else "NO")
        lines.append([r.scenario, r.unit, ours50, ours95, "; ".join(peers) or "-", r.target, met])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown(rows: list[Row]) -> str:
    """The same table in Markdown, for docs/benchmarks.md."""
    out = ["| scenario | unit | ours p50 | ours p95 | peers p50 (ours/peer) | target | met |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        ours50 = fmt(r.ours.p50) if r.ours and r.ours.values else "-"
        ours95 = fmt(r.ours.p95) if r.ours and len(r.ours.values) > 1 else "-"
        peers = []
        for name, s in r.peers.items():
            ratio = r.ratio(name)
            peers.append(f"{name} {fmt(s.p50) if s.values else 'n/a'}"
                         + (f" ({fmt(ratio)}x)" if ratio is not None else ""))
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        out.append(f"| {r.scenario} | {r.unit} | {ours50} | {ours95} | {'; '.join(peers) or '-'} "
                   f"| {r.target} | {met} |")
    return "\n".join(out)


def check(row: Row, limit: float, *, at_least: bool = False) -> Row:
    """Set `row.met` from ours p50 against `limit` (<= unless at_least)."""
    if row.ours is None or not row.ours.values:
        row.met = None
    else:
        row.met = row.ours.p50 >= limit if at_least else row.ours.p50 <= limit
    return row
