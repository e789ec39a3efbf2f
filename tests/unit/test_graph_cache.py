"""build_graph's cache: networkx's answers (acyclic, order, generations) for an identical
graph come from composer.stackcache without importing networkx; any change of the graph
is a miss, checked by networkx again."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from composer.errors import GraphError
from composer.graph import build_graph
from composer.scheduler import run_down, run_up
from tests.unit.test_graph import CHAIN, stack

REPO = Path(__file__).resolve().parents[2]

# a fresh interpreter: build the graph of the stack in argv[1] with the cache in argv[2],
# say whether networkx got imported, and what the graph answered
PROBE = """
import json, sys
from composer.graph import build_graph
from composer.spec import LoadOptions, load_stack
st = load_stack(LoadOptions(environ={}, working_dir=sys.argv[1], project_name="p"))
g = build_graph(st, cache=__import__("pathlib").Path(sys.argv[2]))
print(json.dumps({"networkx": "networkx" in sys.modules, "order": g.known_order(),
                  "generations": g.generations(),
                  "web": [[d.service, d.condition] for d in g.dependencies("web")]}))
"""


def probe(folder: Path, cache: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(folder), str(cache)], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def test_the_second_build_takes_networkx_answers_from_the_cache(tmp_path: Path) -> None:
    stack(tmp_path, CHAIN)
    cache = tmp_path / "cache"
    first = probe(tmp_path, cache)
    assert first["networkx"] is True  # a miss: networkx checks and orders, the entry is stored
    second = probe(tmp_path, cache)
    assert second["networkx"] is False
    assert second == {**first, "networkx": False}
    assert first["generations"] == [["cache", "db", "lonely"], ["app"], ["web"], ["proxy"]]
    assert first["web"] == [["app", "service_healthy"], ["cache", "service_started"]]


def test_a_changed_graph_is_ordered_and_checked_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    g = build_graph(stack(tmp_path, "services: {a: {image: x, depends_on: [b]}, b: {image: x}}"),
                    cache=cache)
    assert g.generations() == [["b"], ["a"]]
    # the same graph again: the cached order
    hit = build_graph(stack(tmp_path, "services: {a: {image: x, depends_on: [b]}, b: {image: x}}"),
                      cache=cache)
    assert hit._graph is None and hit.known_order() == ["b", "a"]
    # the edge turned around: not the cached order
    g = build_graph(stack(tmp_path, "services: {a: {image: x}, b: {image: x, depends_on: [a]}}"),
                    cache=cache)
    assert g.generations() == [["a"], ["b"]] and g.known_order() == ["a", "b"]
    # only the condition changed: the edge's new condition
    g = build_graph(stack(tmp_path, "services: {a: {image: x}, b: {image: x, depends_on: "
                                    "{a: {condition: service_healthy}}}}"), cache=cache)
    assert [d.condition for d in g.dependencies("b")] == ["service_healthy"]
    # a cycle is an error, whatever was cached for the graph before
    with pytest.raises(GraphError, match="dependency cycle"):
        build_graph(stack(tmp_path, "services: {a: {image: x, depends_on: [b]}, "
                                    "b: {image: x, depends_on: [a]}}"), cache=cache)


def test_a_service_more_is_a_miss(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    build_graph(stack(tmp_path, "services: {a: {image: x}}"), cache=cache)
    g = build_graph(stack(tmp_path, "services: {a: {image: x}, b: {image: x}}"), cache=cache)
    assert g.generations() == [["a", "b"]] and g.services == ["a", "b"]


@pytest.mark.parametrize("stored", [{"order": 3}, {"order": ["db"], "generations": [["db"]]}])
def test_a_broken_entry_is_a_miss(tmp_path: Path, stored: dict[str, object]) -> None:
    cache = tmp_path / "cache"
    build_graph(stack(tmp_path, CHAIN), cache=cache)
    for entry in cache.glob("*.json"):
        data = json.loads(entry.read_text())
        data["stack"] = stored
        entry.write_text(json.dumps(data))
    g = build_graph(stack(tmp_path, CHAIN), cache=cache)
    assert g.generations() == [["cache", "db", "lonely"], ["app"], ["web"], ["proxy"]]
    assert g.known_order() == ["cache", "db", "app", "lonely", "web", "proxy"]


def test_the_scheduler_runs_a_cached_graph_as_networkx_orders_it(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fresh = build_graph(stack(tmp_path, CHAIN))
    build_graph(stack(tmp_path, CHAIN), cache=cache)
    cached = build_graph(stack(tmp_path, CHAIN), cache=cache)
    assert cached._graph is None

    def runs(g: object, services: set[str] | None) -> tuple[list[str], list[str], list[tuple[str, str]]]:
        started: list[str] = []
        stopped: list[str] = []
        waited: list[tuple[str, str]] = []

        async def start(name: str) -> None:
            started.append(name)

        async def stop(name: str) -> None:
            stopped.append(name)

        async def wait(dep: str, condition: str) -> None:
            waited.append((dep, condition))

        async def both() -> None:
            await run_up(g, start, wait, parallelism=1, services=services)  # type: ignore[arg-type]
            await run_down(g, stop, parallelism=1, services=services)  # type: ignore[arg-type]

        asyncio.run(both())
        return started, stopped, sorted(waited)

    everything = runs(fresh, None)
    assert runs(cached, None) == everything
    assert everything[0] == ["cache", "db", "lonely", "app", "web", "proxy"]
    assert everything[1] == ["proxy", "web", "lonely", "app", "db", "cache"]
    assert ("app", "service_healthy") in everything[2]
    assert cached._graph is None  # the whole graph's order: networkx not needed
    # a part of the graph: networkx orders it (the DiGraph is built then)
    part = {"web", "app", "cache"}
    assert runs(cached, part) == runs(fresh, part)
    assert cached._graph is not None
