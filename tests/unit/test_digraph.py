"""composer.digraph against networkx, whose meaning it keeps: on random graphs the walks
give what networkx's give (the same layers, the same lexicographic order, the same
descendants, a cycle exactly when there is one), and a networkx graph converts whole."""
from __future__ import annotations

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.digraph import (
    CycleError,
    DiGraph,
    descendants,
    find_cycle,
    lexicographical_topological_sort,
    topological_generations,
)

NAMES = [f"s{i}" for i in range(9)]


@st.composite
def graphs(draw: st.DrawFn, acyclic: bool = True) -> tuple[DiGraph, nx.DiGraph]:
    nodes = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=len(NAMES), unique=True))
    pairs = [(a, b) for a in nodes for b in nodes if a != b]
    if acyclic:  # edges only from a later node to an earlier one: no cycle
        pairs = [(a, b) for a, b in pairs if nodes.index(a) > nodes.index(b)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    ours, theirs = DiGraph(), nx.DiGraph()
    for g in (ours, theirs):
        g.add_nodes_from(nodes)
        for i, (a, b) in enumerate(edges):
            g.add_edge(a, b, n=i)
    return ours, theirs


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_the_walks_of_an_acyclic_graph_are_networkxs(case: tuple[DiGraph, nx.DiGraph]) -> None:
    ours, theirs = case
    assert [sorted(g) for g in topological_generations(ours)] == \
        [sorted(g) for g in nx.topological_generations(theirs)]
    assert lexicographical_topological_sort(ours) == list(nx.lexicographical_topological_sort(theirs))
    for n in theirs:
        assert descendants(ours, n) == nx.descendants(theirs, n)
        assert sorted(ours.successors(n)) == sorted(theirs.successors(n))
        assert sorted(ours.predecessors(n)) == sorted(theirs.predecessors(n))
    assert find_cycle(ours) == []
    assert sorted(ours.edges(data="n")) == sorted(theirs.edges(data="n"))
    rev = ours.reverse()
    assert sorted(rev.edges()) == sorted(theirs.reverse(copy=False).edges())
    half = list(theirs)[: len(theirs) // 2]
    assert sorted(ours.subgraph(half).edges()) == sorted(theirs.subgraph(half).edges())
    assert sorted(DiGraph.of(theirs).edges(data=True)) == sorted(ours.edges(data=True))


@settings(max_examples=200, deadline=None)
@given(graphs(acyclic=False))
def test_a_cycle_is_found_exactly_when_there_is_one(case: tuple[DiGraph, nx.DiGraph]) -> None:
    ours, theirs = case
    cycle = find_cycle(ours)
    if nx.is_directed_acyclic_graph(theirs):
        assert cycle == []
        return
    assert cycle, "networkx sees a cycle"
    for (u, v), (v2, _) in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
        assert ours.has_edge(u, v) and v == v2  # real edges, each one where the last ended
    for walk in (lambda: topological_generations(ours), lambda: lexicographical_topological_sort(ours)):
        try:
            walk()
        except CycleError:
            continue
        raise AssertionError("a walk ordered a graph with a cycle")


def test_edges_read_like_networkxs() -> None:
    g = DiGraph()
    g.add_edge("web", "db", dependency="x")
    g.add_edge("web", "db", restart=True)  # the same edge again: its attributes merge
    g.add_node("cache")
    assert list(g.nodes) == ["web", "db", "cache"] and "cache" in g and len(g) == 3
    assert g.edges["web", "db"] == {"dependency": "x", "restart": True}
    assert g.out_edges("web", data=True) == [("web", "db", {"dependency": "x", "restart": True})]
    assert g.edge_subgraph([("web", "db")]).edges(data="restart") == [("web", "db", True)]
    assert list(g.edges) == [("web", "db")] and len(g.edges) == 1
    assert g.copy().edges(data=True) == g.edges(data=True)
