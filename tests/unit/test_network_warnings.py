"""A network's warnings (another firewall drops its traffic) reach `composer up`'s output and
survive the daemon's JSON."""
from __future__ import annotations

import asyncio
from pathlib import Path

from composer.operations import Project
from composer.spec import LoadOptions, load_stack
from runtime import serde
from runtime.api import NetworkInfo
from runtime.types import NetworkSpec

LINE = 'the nft chain "inet filter forward" has policy drop: ...'


class Engine:
    async def list_networks(self) -> list[NetworkInfo]:
        return []

    async def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        return NetworkInfo(spec.name, spec, warnings=(LINE,))


def test_up_prints_each_network_warning(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: x}\n")
    st = load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="proj"))
    events: list[tuple[str, str]] = []
    p = Project(st, Engine(), progress=lambda obj, status: events.append((obj, status)))  # type: ignore[arg-type]
    asyncio.run(p.ensure_networks(["web"]))
    assert events == [("Network proj_default", "Creating"), ("Network proj_default", "Created"),
                      ("Warning", f"network proj_default: {LINE}")]


def test_warnings_survive_json() -> None:
    info = NetworkInfo("n", NetworkSpec("n"), bridge="cmpb1", warnings=(LINE,))
    assert serde.from_dict(NetworkInfo, serde.to_dict(info)) == info
