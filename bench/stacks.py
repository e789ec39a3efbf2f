"""Stack files of the `up`/`down` scenarios (valid for composer, podman-compose 1.0.3 and
docker-compose 1.29 alike: no `version:` key, nothing either of them refuses)."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

HEALTH_INTERVAL = "100ms"


def independent(n: int) -> str:
    """`n` busybox services with no dependencies: `init: true`, `command: sleep 600`."""
    lines = ["services:"]
    for i in range(n):
        lines += [f"  s{i}:", "    image: busybox", "    init: true", "    command: sleep 600"]
    return "\n".join(lines) + "\n"


def with_port(text: str, service: str = "s0") -> str:
    """`text` with `service` publishing port 80 on an ephemeral loopback port (for `port`)."""
    return text.replace(f"  {service}:\n", f"  {service}:\n    ports: [\"127.0.0.1::80\"]\n", 1)


def one_shot() -> str:
    """The `run --rm` rows: `bridge` on the project's default network, `none` with
    `network_mode: none`; no `init:`, as `docker run --rm busybox true` has none."""
    return ("services:\n  bridge:\n    image: busybox\n"
            "  none:\n    image: busybox\n    network_mode: none\n")


def chain(n: int = 3) -> str:
    """`n` services, each depending on the previous one being healthy (checks every 100 ms)."""
    lines = ["services:"]
    for i in range(n):
        lines += [
            f"  c{i}:",
            "    image: busybox",
            "    init: true",
            "    command: sleep 600",
            "    healthcheck:",
            "      test: [\"CMD\", \"true\"]",
            f"      interval: {HEALTH_INTERVAL}",
            "      timeout: 1s",
            "      retries: 3",
        ]
        if i:
            lines += ["    depends_on:", f"      c{i - 1}:", "        condition: service_healthy"]
    return "\n".join(lines) + "\n"


def health_waits(events_json: str, n: int = 3) -> float:
    """The chain's health waits in ms, from `events --json` of one `up -d`: for each service a
    later one depends on (c0 .. c{n-2}), its `start` to its `health_status: healthy`, which is
    the check's interval plus the check's own run. Raises ValueError when an event is missing."""
    at: dict[tuple[str, str], float] = {}
    for line in events_json.splitlines():
        e = json.loads(line)
        stamp = datetime.fromisoformat(e["time"][:26] + "+00:00").timestamp()  # to the µs
        at.setdefault((e["service"], e["action"]), stamp)
    try:
        return sum(at[(f"c{i}", "health_status: healthy")] - at[(f"c{i}", "start")]
                   for i in range(n - 1)) * 1000
    except KeyError as e:
        raise ValueError(f"no {e.args[0]} event in the chain's events") from None


def write(dirpath: Path, name: str, text: str) -> Path:
    d = dirpath / name
    d.mkdir(parents=True, exist_ok=True)
    path = d / "compose.yaml"
    path.write_text(text)
    return path
