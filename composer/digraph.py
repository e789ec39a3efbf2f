"""A small directed graph of service names, and the four walks the scheduler needs.

networkx did this, and costs ~75 ms to import -- a fifth of an `up -d` or a `down` of ten
services -- for graphs of a few dozen nodes walked a handful of times. This keeps the part
of networkx's DiGraph API that composer.graph, composer.scheduler and composer.operations
use, with the same meaning, so a networkx graph (the scheduler's unit tests build their toy
graphs with it) converts with `DiGraph.of`:

    g = DiGraph(); g.add_edge("web", "db", dependency=dep)   # web needs db
    g.successors("web"), g.predecessors("db"), g.edges["web", "db"]["dependency"]
    topological_generations(g.reverse()), descendants(g, "web"), find_cycle(g)

Nodes and neighbours keep their insertion order (as networkx's dicts do), so every walk is
deterministic.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, KeysView
from typing import Any

Node = str  # service names
Attrs = dict[str, Any]


class CycleError(ValueError):
    """The graph has a cycle: no topological order (networkx's NetworkXUnfeasible)."""


class _Edges:
    """`g.edges[u, v]` (the edge's attributes) and `g.edges(data=...)`, as networkx's."""

    def __init__(self, graph: DiGraph) -> None:
        self._g = graph

    def __getitem__(self, edge: tuple[Node, Node]) -> Attrs:
        u, v = edge
        return self._g._succ[u][v]

    def __call__(self, data: bool | str = False) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for u, nbrs in self._g._succ.items():
            for v, attrs in nbrs.items():
                if data is False:
                    out.append((u, v))
                elif data is True:
                    out.append((u, v, attrs))
                else:
                    out.append((u, v, attrs.get(data)))
        return out

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self())

    def __len__(self) -> int:
        return sum(len(n) for n in self._g._succ.values())


class DiGraph:
    def __init__(self) -> None:
        self._succ: dict[Node, dict[Node, Attrs]] = {}
        self._pred: dict[Node, dict[Node, Attrs]] = {}

    @classmethod
    def of(cls, other: Any) -> DiGraph:
        """A copy of any graph with networkx's `nodes` and `edges(data=True)`."""
        g = cls()
        g.add_nodes_from(other.nodes)
        for u, v, attrs in other.edges(data=True):
            g.add_edge(u, v, **attrs)
        return g

    # -- building -------------------------------------------------------------------
    def add_node(self, n: Node) -> None:
        if n not in self._succ:
            self._succ[n] = {}
            self._pred[n] = {}

    def add_nodes_from(self, nodes: Iterable[Node]) -> None:
        for n in nodes:
            self.add_node(n)

    def add_edge(self, u: Node, v: Node, **attrs: Any) -> None:
        self.add_node(u)
        self.add_node(v)
        data = self._succ[u].get(v)
        if data is None:
            data = self._succ[u][v] = self._pred[v][u] = {}
        data.update(attrs)

    # -- reading --------------------------------------------------------------------
    @property
    def nodes(self) -> KeysView[Node]:
        return self._succ.keys()

    @property
    def edges(self) -> _Edges:
        return _Edges(self)

    def __contains__(self, n: object) -> bool:
        return n in self._succ

    def __iter__(self) -> Iterator[Node]:
        return iter(self._succ)

    def __len__(self) -> int:
        return len(self._succ)

    def has_edge(self, u: Node, v: Node) -> bool:
        return v in self._succ.get(u, {})

    def successors(self, n: Node) -> Iterator[Node]:
        return iter(self._succ[n])

    def predecessors(self, n: Node) -> Iterator[Node]:
        return iter(self._pred[n])

    def out_edges(self, n: Node, data: bool = False) -> list[tuple[Any, ...]]:
        return [(n, v, attrs) if data else (n, v) for v, attrs in self._succ[n].items()]

    # -- new graphs (copies: networkx gives views, which our callers copy anyway) ------
    def copy(self) -> DiGraph:
        return self.subgraph(self._succ)

    def subgraph(self, nodes: Iterable[Node]) -> DiGraph:
        keep = set(nodes)
        g = DiGraph()
        g.add_nodes_from(n for n in self._succ if n in keep)
        for u in g._succ:
            for v, attrs in self._succ[u].items():
                if v in keep:
                    g.add_edge(u, v, **attrs)
        return g

    def edge_subgraph(self, edges: Iterable[tuple[Node, Node]]) -> DiGraph:
        g = DiGraph()
        for u, v in edges:
            g.add_edge(u, v, **self._succ[u][v])
        return g

    def reverse(self, copy: bool = True) -> DiGraph:
        g = DiGraph()
        g.add_nodes_from(self._succ)
        for u, nbrs in self._succ.items():
            for v, attrs in nbrs.items():
                g.add_edge(v, u, **attrs)
        return g


def descendants(g: DiGraph, source: Node) -> set[Node]:
    """Every node reachable from `source`, without it."""
    seen: set[Node] = set()
    todo = list(g.successors(source))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(g.successors(n))
    seen.discard(source)
    return seen


def topological_generations(g: DiGraph) -> list[list[Node]]:
    """The nodes in layers: the first has no predecessor, each next one only predecessors
    in the layers before it. CycleError when there is a cycle."""
    indegree = {n: len(g._pred[n]) for n in g}
    layer = [n for n, d in indegree.items() if d == 0]
    out = []
    while layer:
        out.append(layer)
        nxt = []
        for n in layer:
            for m in g.successors(n):
                indegree[m] -= 1
                if indegree[m] == 0:
                    nxt.append(m)
        layer = nxt
    if sum(len(layer) for layer in out) != len(g):
        raise CycleError("the graph has a cycle")
    return out


def lexicographical_topological_sort(g: DiGraph) -> list[Node]:
    """A topological order that takes, among the nodes ready, the smallest by str() first.
    CycleError when there is a cycle."""
    indegree = {n: len(g._pred[n]) for n in g}
    ready = [(str(n), i, n) for i, (n, d) in enumerate(indegree.items()) if d == 0]
    heapq.heapify(ready)
    index = {n: i for i, n in enumerate(indegree)}
    out = []
    while ready:
        _, _, n = heapq.heappop(ready)
        out.append(n)
        for m in g.successors(n):
            indegree[m] -= 1
            if indegree[m] == 0:
                heapq.heappush(ready, (str(m), index[m], m))
    if len(out) != len(g):
        raise CycleError("the graph has a cycle")
    return out


def find_cycle(g: DiGraph) -> list[tuple[Node, Node]]:
    """The edges of one cycle, from where it starts (as networkx's find_cycle); [] when the
    graph has none. An iterative depth-first walk, nodes and neighbours in insertion order."""
    done: set[Node] = set()
    for root in g:
        if root in done:
            continue
        path: list[Node] = [root]
        on_path = {root}
        stack = [iter(g.successors(root))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                n = path.pop()
                on_path.discard(n)
                done.add(n)
                continue
            if nxt in on_path:
                cycle = path[path.index(nxt):]
                return list(zip(cycle, [*cycle[1:], nxt], strict=True))
            if nxt in done:
                continue
            on_path.add(nxt)
            path.append(nxt)
            stack.append(iter(g.successors(nxt)))
    return []
