"""`up`/`down` with networkx's order from the stack cache (composer.graph): the same graph
again is served from it, an edited stack file is ordered anew."""
from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Env, write_stack
from tests.e2e.test_orchestration import inspect


def stack(first: str, second: str) -> str:
    """`second` starts once `first` is healthy (checks every 100 ms)."""
    return f"""
services:
  {first}:
    image: busybox
    init: true
    command: sleep 600
    healthcheck: {{test: ["CMD", "true"], interval: 0.1s, retries: 50}}
  {second}:
    image: busybox
    init: true
    command: sleep 600
    depends_on: {{{first}: {{condition: service_healthy}}}}
"""


def graph_entries(env: Env) -> list[dict[str, object]]:
    out = []
    for f in (env.run / "cli-cache").glob("*/*.json"):
        data = json.loads(f.read_text())
        if isinstance(data.get("stack"), dict) and "generations" in data["stack"]:
            out.append(data["stack"])
    return out


def started(env: Env, d: Path) -> list[str]:
    """The services by their containers' start times."""
    return sorted(("a", "b"), key=lambda s: float(inspect(env, d, s)["started_at"]))  # type: ignore[arg-type]


def test_the_cached_order_and_an_edited_one(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "cached"
    write_stack(d, stack("a", "b"))
    first = env.composer("up", "-d", cwd=d)
    assert started(env, d) == ["a", "b"]
    assert graph_entries(env) == [{"order": ["a", "b"], "generations": [["a"], ["b"]]}]
    env.composer("down", cwd=d)
    again = env.composer("up", "-d", cwd=d)  # the cached order: the same lines, the same order
    assert again.stderr.splitlines() == first.stderr.splitlines()
    assert started(env, d) == ["a", "b"]
    env.composer("down", cwd=d)
    write_stack(d, stack("b", "a"))  # the dependency turned around
    env.composer("up", "-d", cwd=d)
    assert started(env, d) == ["b", "a"]
    assert {"order": ["b", "a"], "generations": [["b"], ["a"]]} in graph_entries(env)
    down = env.composer("down", cwd=d)
    lines = [line.split()[1] for line in down.stderr.splitlines() if line.split()[-1] == "Stopped"]
    assert lines == [f"{d.name}-a-1", f"{d.name}-b-1"]  # the dependent first
