"""What `ps` prints, field by field as `docker compose ps` does.

`summary()` turns a `ContainerInfo` into the fields of Compose's container context (ID,
Name, Command, CreatedAt, RunningFor, Status, Ports, Publishers, ...), with Docker's words
for durations and states (`Up 3 seconds (healthy)`, `Exited (1) 2 minutes ago`).
`render()` prints them: the default table, `json` (one object per line, keys sorted and
`<>&` escaped as Go's encoding/json does), or a Go-template-like format such as
`{{.Name}}\t{{.Status}}` — with a `table ` prefix for a header row and aligned columns
(Docker's tabwriter: minimum width 10, padding 3).
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from composer import labels as L
from runtime.api import ContainerInfo

DEFAULT_TABLE = "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}"
STATES = ("paused", "restarting", "removing", "running", "dead", "created", "exited")

HEADERS = {
    "ID": "CONTAINER ID", "Name": "NAME", "Names": "NAMES", "Project": "PROJECT",
    "Service": "SERVICE", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
    "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS", "Health": "HEALTH", "ExitCode": "EXIT CODE",
    "Publishers": "PUBLISHERS",
}


class FormatError(ValueError):
    """A --format template we can't render; the message says what to use."""


# -- Docker's words ---------------------------------------------------------------------------
def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "3 seconds", "About a minute", ..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def status_text(c: ContainerInfo, now: float | None = None) -> str:
    """The STATUS column as the Docker daemon words it (moby's State.String)."""
    now = time.time() if now is None else now
    started = c.started_at or c.created_at
    finished = c.finished_at or started
    if c.state == "paused":
        return f"Up {human_duration(now - started)} (Paused)"
    if c.state == "restarting":
        return f"Restarting ({c.exit_code or 0}) {human_duration(now - finished)} ago"
    if c.state == "running":
        health = {"starting": " (health: starting)", "healthy": " (healthy)",
                  "unhealthy": " (unhealthy)"}.get(c.health, "")
        return f"Up {human_duration(now - started)}{health}"
    if c.state == "removing":
        return "Removal In Progress"
    if c.state == "dead":
        return "Dead"
    if c.state == "created" or not c.started_at:
        return "Created"
    return f"Exited ({c.exit_code or 0}) {human_duration(now - finished)} ago"


def go_quote(text: str) -> str:
    """strconv.Quote: double quotes, Go escapes for quotes, backslashes and control bytes."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def ellipsis(text: str, width: int) -> str:
    """docker's formatter.Ellipsis for text of single-width runes."""
    return text if len(text) <= width else text[: width - 1] + "…"


def display_ports(ports: Sequence[tuple[str, int, int, str]]) -> str:
    """docker's DisplayablePorts over (ip, private, public, protocol): consecutive ports of
    one address and protocol published on the same numbers merge into a range."""
    ordered = sorted(ports, key=lambda p: (p[1], p[0], p[2], p[3]))
    groups: dict[str, list[int]] = {}
    keys: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for ip, private, public, proto in ordered:
        key = proto
        if ip:
            if public != private:
                host = f"[{ip}]" if ":" in ip else ip
                mappings.append(f"{host}:{public}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
            keys.append(key)
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_port_group(key, *group))
            groups[key] = [private, private]
    result.extend(_port_group(k, *groups[k]) for k in keys)
    return ", ".join(result + mappings)


def _port_group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("/")
    span = str(first) if first == last else f"{first}-{last}"
    if ip:
        span = f"{ip}:{span}->{span}"
    return f"{span}/{proto}"


# -- the fields -------------------------------------------------------------------------------
def _networks(c: ContainerInfo) -> list[str]:
    mode = c.spec.network_mode
    if mode in ("host", "none"):
        return [mode]
    if mode.startswith("container:"):
        return []
    return [a.network for a in c.spec.networks] or sorted(c.addresses)


def summary(c: ContainerInfo, project: str, *, trunc: bool = True,
            now: float | None = None) -> dict[str, Any]:
    """The fields of `docker compose ps` for one container, as it fills them."""
    now = time.time() if now is None else now
    command = " ".join(c.command)
    if trunc:
        command = ellipsis(command, 20)
    mounts = [m.source or m.target for m in c.mounts if m.type in ("volume", "bind")]
    if trunc:
        mounts = [ellipsis(m, 15) for m in mounts]
    publishers = [
        {"URL": p.host_ip or "0.0.0.0", "TargetPort": p.container_port,
         "PublishedPort": p.host_port, "Protocol": p.protocol}
        for p in sorted(c.ports, key=lambda p: p.container_port)
    ]
    return {
        "Command": go_quote(command),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(c.created_at)),
        "ExitCode": (c.exit_code or 0) if c.state in ("exited", "dead") else 0,
        "Health": c.health if c.state == "running" else "",
        "ID": c.id[:12] if trunc else c.id,
        "Image": c.image,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(c.labels.items())),
        "LocalVolumes": str(sum(1 for m in c.mounts if m.type == "volume")),
        "Mounts": ",".join(mounts),
        "Name": c.name,
        "Names": c.name,
        "Networks": ",".join(_networks(c)),
        "Ports": display_ports([(p.host_ip or "0.0.0.0", p.container_port, p.host_port, p.protocol)
                                for p in c.ports]),
        "Project": project or c.labels.get(L.PROJECT, ""),
        "Publishers": publishers or None,  # Go's nil slice: null when none
        "RunningFor": f"{human_duration(now - c.created_at)} ago",
        "Service": c.labels.get(L.SERVICE, ""),
        "Size": "0B",
        "State": c.state,
        "Status": status_text(c, now),
    }


def go_json(value: Any) -> str:
    """encoding/json's compact output: keys as given, <, > and & escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# -- templates --------------------------------------------------------------------------------
_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_FIELD = re.compile(r"^\.([A-Za-z]+)$")
_LABEL = re.compile(r'^\.Label\s+"([^"]*)"$')
_FUNC = re.compile(r"^(json|upper|lower|title)\s+(\.[A-Za-z]*)$")


def _field(row: Mapping[str, Any], name: str) -> Any:
    if name not in row:
        raise FormatError(
            f"--format: no field .{name} (use {', '.join('.' + k for k in sorted(row))})")
    return row[name]


def _value(row: Mapping[str, Any], labels: Mapping[str, str], expr: str) -> str:
    if expr == ".":
        return go_json(dict(row))
    m = _FIELD.match(expr)
    if m:
        v = _field(row, m.group(1))
        if v is None:
            return "[]"  # text/template prints a nil slice as []
        if isinstance(v, list):
            return "[" + " ".join("{" + " ".join(str(x) for x in d.values()) + "}" for d in v) + "]"
        return str(v)
    m = _LABEL.match(expr)
    if m:
        return labels.get(m.group(1), "")
    m = _FUNC.match(expr)
    if m:
        fn, arg = m.groups()
        if fn == "json":
            return go_json(dict(row) if arg == "." else _field(row, arg[1:]))
        text = _value(row, labels, arg)
        return {"upper": text.upper(), "lower": text.lower(), "title": text.title()}[fn]
    raise FormatError(
        f"--format: can't render {{{{{expr}}}}} (use fields like {{{{.Name}}}}, "
        '{{.Label "key"}} or {{json .}})')


def _render_line(template: str, row: Mapping[str, Any], labels: Mapping[str, str],
                 header: bool, headers: Mapping[str, str] = HEADERS) -> str:
    def sub(m: re.Match[str]) -> str:
        expr = m.group(1)
        if header:
            f = _FIELD.match(expr)
            if f:
                return headers.get(f.group(1), f.group(1).upper())
            if _LABEL.match(expr):
                return "LABEL"
            return ""
        return _value(row, labels, expr)

    return _ACTION.sub(sub, template)


def tabwrite(lines: Sequence[str], minwidth: int = 10, padding: int = 3) -> list[str]:
    """text/tabwriter with docker's settings: each tab-terminated cell padded to its column's
    widest cell + padding (at least minwidth); the last cell of a line is left as is."""
    rows = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for cells in rows:
        for i, cell in enumerate(cells[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell) + padding, minwidth)
    return ["".join(cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])) + cells[-1]
            for cells in rows]


def render(rows: Sequence[Mapping[str, Any]], labels: Sequence[Mapping[str, str]],
           fmt: str | None, write: Callable[[str], object], *, default: str = DEFAULT_TABLE,
           headers: Mapping[str, str] = HEADERS) -> None:
    """Print rows as `docker compose ps --format FMT` does (None/"table": the `default`
    table); `headers` name the columns of a `table` format (other verbs: volumes, stats)."""
    fmt = default if fmt in (None, "", "table") else fmt
    if fmt == "json":
        fmt = "{{json .}}"
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    if fmt.startswith("table"):
        template = fmt[len("table"):].strip(" ")
        empty = dict.fromkeys(headers, "")
        lines = [_render_line(template, rows[0] if rows else empty, {}, header=True,
                              headers=headers)]
        lines += [_render_line(template, r, lab, header=False) for r, lab in zip(rows, labels, strict=True)]
        for line in tabwrite("\n".join(lines).split("\n")):
            write(line + "\n")
        return
    template = fmt.strip(" ")
    for r, lab in zip(rows, labels, strict=True):
        write(_render_line(template, r, lab, header=False) + "\n")


def summary_keys() -> dict[str, Any]:
    return dict.fromkeys(HEADERS, "")
