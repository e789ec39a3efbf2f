"""`up`/`down` take networkx's order from the graph cache (composer.graph) while the graph
is the same, and follow an edited stack file at once."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from composer import operations
from composer.cli import common, main
from tests.unit.memengine import MemEngine


def test_an_edited_stack_file_changes_the_order(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    mem = MemEngine()

    async def connect() -> MemEngine:
        return mem

    monkeypatch.setattr(common, "engine", connect)
    cache = tmp_path / "cache"
    monkeypatch.setattr(common, "graph_cache", lambda: cache)
    events: list[tuple[str, str, bool]] = []
    real_start = operations.Project._start

    async def start(self: operations.Project, c: Any) -> Any:
        events.append(("start", c.name, self.graph._graph is None))
        return await real_start(self, c)

    real_remove = operations.Project._remove

    async def remove(self: operations.Project, c: Any, *a: Any, **kw: Any) -> None:
        events.append(("remove", c.name, self.graph._graph is None))
        await real_remove(self, c, *a, **kw)

    monkeypatch.setattr(operations.Project, "_start", start)
    monkeypatch.setattr(operations.Project, "_remove", remove)
    monkeypatch.chdir(tmp_path)
    file = tmp_path / "compose.yaml"

    def cycle(text: str) -> list[tuple[str, str, bool]]:
        file.write_text(text)
        events.clear()
        assert main(["-p", "p", "--parallel", "1", "up", "-d"]) == 0
        assert main(["-p", "p", "--parallel", "1", "down"]) == 0
        return list(events)

    a_first = "services:\n  a: {image: x}\n  b: {image: x, depends_on: [a]}\n"
    miss = cycle(a_first)
    assert [e[:2] for e in miss] == [("start", "p-a-1"), ("start", "p-b-1"),
                                    ("remove", "p-b-1"), ("remove", "p-a-1")]
    hit = cycle(a_first)
    assert [e[:2] for e in hit] == [e[:2] for e in miss]
    assert all(no_networkx for *_, no_networkx in hit)  # the cached order, no DiGraph built
    b_first = "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x}\n"
    assert [e[:2] for e in cycle(b_first)] == [("start", "p-b-1"), ("start", "p-a-1"),
                                              ("remove", "p-a-1"), ("remove", "p-b-1")]
