"""The dependency graph of a stack's enabled services (networkx DiGraph).

An edge `a -> b` means "a needs b": b starts first and stops last. Edges come from
`depends_on` (with its condition), `links`, `volumes_from`, and `network_mode` / `ipc` /
`pid` `service:NAME` / `container:NAME` (the latter only when NAME is some service's
container_name). A cycle, or a dependency on a service that is missing or disabled by
its profile, is a `GraphError` naming the services (`web -> app -> web`).

networkx costs ~80 ms to import, a fifth of an `up -d` or `down`. So `build_graph(stack,
cache=FOLDER)` keeps what networkx found for a graph -- acyclic, its start order and its
generations -- in composer.stackcache, keyed on the graph itself (its services and every
edge with its condition, restart, required and kind), this module's code and networkx's:
the next command with the same graph gets a ServiceGraph that answers `services`,
`dependencies`, `dependents`, `generations` and the order of the whole graph
(`known_order`, which the scheduler uses) from that entry, without networkx. Anything
else (`select`, a subset's order, `.graph`) builds the DiGraph then, as before. The stack
itself is loaded and checked in full every time: only networkx's answers are reused, for
an identical graph.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.errors import GraphError
from composer.spec.parts import DependsOn
from composer.spec.stack import Stack

if TYPE_CHECKING:  # networkx costs ~80 ms to import: only a verb that orders services pays it
    import networkx as nx


@dataclass(frozen=True)
class Dependency:
    service: str
    condition: str = "service_started"
    restart: bool = False
    required: bool = True
    kind: str = "depends_on"  # depends_on | links | volumes_from | network_mode | ipc | pid


Edges = dict[tuple[str, str], Dependency]  # (service, what it needs) -> the edge


class ServiceGraph:
    def __init__(self, graph: nx.DiGraph | None = None, *, nodes: Iterable[str] = (),
                 edges: Edges | None = None, order: list[str] | None = None,
                 generations: list[list[str]] | None = None) -> None:
        """From a DiGraph, or (build_graph's cache hit) from its nodes and edges with the
        order and generations networkx found for them: then networkx is imported only
        when something asks for more."""
        self._graph = graph
        if graph is not None:
            nodes = graph.nodes
            edges = {(a, b): d["dependency"] for a, b, d in graph.edges(data=True)}
        self._nodes = list(nodes)
        self._edges: Edges = dict(edges or {})
        self._order = order
        self._generations = generations

    @property
    def graph(self) -> nx.DiGraph:
        if self._graph is None:
            import networkx as nx

            g: nx.DiGraph = nx.DiGraph()
            g.add_nodes_from(self._nodes)
            for (a, b), dep in self._edges.items():
                g.add_edge(a, b, dependency=dep)
            self._graph = g
        return self._graph

    @property
    def services(self) -> list[str]:
        return sorted(self._nodes)

    def dependencies(self, name: str) -> tuple[Dependency, ...]:
        """What `name` needs, with the condition to wait for."""
        return tuple(d for (a, _), d in sorted(self._edges.items()) if a == name)

    def dependents(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(a for a, b in self._edges if b == name))

    def known_order(self, services: Iterable[str] | None = None) -> list[str] | None:
        """networkx's start order (lexicographical topological, dependencies first) of
        `services` when it is known without computing it: the whole graph's, from the
        cache. None otherwise (the scheduler then asks networkx)."""
        if self._order is None:
            return None
        if services is not None and set(services) != set(self._nodes):
            return None
        return list(self._order)

    def generations(self) -> list[list[str]]:
        """Start order: each list can start in parallel once the previous ones are up."""
        if self._generations is not None:
            return [list(g) for g in self._generations]
        import networkx as nx

        return [sorted(g) for g in nx.topological_generations(self.graph.reverse(copy=False))]

    def teardown_generations(self) -> list[list[str]]:
        """Stop order: dependents first."""
        return list(reversed(self.generations()))

    def select(self, names: Iterable[str]) -> set[str]:
        """The given services plus everything they need, transitively."""
        import networkx as nx

        out: set[str] = set()
        for name in names:
            if name not in self.graph:
                raise GraphError(f'no such service "{name}" (known: {", ".join(self.services)})')
            out.add(name)
            out |= nx.descendants(self.graph, name)
        return out


def build_graph(stack: Stack, cache: Path | None = None) -> ServiceGraph:
    """The stack's graph; with `cache` (a composer.stackcache folder), networkx's answers
    for an identical graph come from there and are stored there after a check."""
    edges = _edges(stack)
    if cache is None:
        return _checked(stack, edges)
    from composer import stackcache

    inputs = _cache_inputs(stack, edges)
    hit: Any = stackcache.lookup_data(cache, inputs)
    if hit is not None:
        try:
            order = [str(s) for s in hit["order"]]
            generations = [[str(s) for s in g] for g in hit["generations"]]
            if sorted(order) == sorted(stack.services) == sorted(sum(generations, [])):
                return ServiceGraph(nodes=stack.services, edges=edges, order=order,
                                    generations=generations)
        except (KeyError, TypeError):
            pass
    graph = _checked(stack, edges)
    stackcache.store_data(cache, inputs, {"order": graph.known_order(),
                                          "generations": graph.generations()}, [])
    return graph


GRAPH_FORMAT = 1


def _cache_inputs(stack: Stack, edges: Edges) -> list[Any]:
    import importlib.util

    from composer.stackcache import stat_key

    nx_spec = importlib.util.find_spec("networkx")  # an upgrade of networkx is a miss
    return ["graph", GRAPH_FORMAT, stat_key(__file__),
            stat_key(nx_spec.origin) if nx_spec and nx_spec.origin else None,
            list(stack.services),
            [[a, b, d.condition, d.restart, d.required, d.kind]
             for (a, b), d in sorted(edges.items())]]


def _checked(stack: Stack, edges: Edges) -> ServiceGraph:
    """The DiGraph of these edges, checked for cycles, with networkx's order of it."""
    import networkx as nx

    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(stack.services)
    for (a, b), dep in edges.items():
        graph.add_edge(a, b, dependency=dep)
    _check_cycles(graph, _file(stack))
    order = list(nx.lexicographical_topological_sort(graph.reverse(copy=False)))
    return ServiceGraph(graph, order=order)


def _edges(stack: Stack) -> Edges:
    """Every edge of the stack's graph (the checks of its targets included), no networkx."""
    edges: Edges = {}
    by_container = {s.container_name: n for n, s in stack.all_services().items() if s.container_name}
    for name, svc in stack.services.items():
        deps: list[Dependency] = [
            Dependency(d.service, d.condition, d.restart, d.required) for d in svc.depends_on
        ]
        deps += [Dependency(link.split(":", 1)[0], kind="links") for link in svc.links]
        for src in svc.volumes_from:
            parts = src.split(":")
            if parts[0] == "container":
                if parts[1] in by_container:
                    deps.append(Dependency(by_container[parts[1]], kind="volumes_from"))
            else:
                deps.append(Dependency(parts[0], kind="volumes_from"))
        for kind, mode in (("network_mode", svc.network_mode), ("ipc", svc.ipc), ("pid", svc.pid)):
            mode = mode or ""
            if mode.startswith("service:"):
                deps.append(Dependency(mode.split(":", 1)[1], kind=kind))
            elif mode.startswith("container:") and mode.split(":", 1)[1] in by_container:
                deps.append(Dependency(by_container[mode.split(":", 1)[1]], kind=kind))
        for dep in deps:
            if _check_target(stack, name, dep):
                _add_edge(edges, name, dep)
    return edges


def _check_target(stack: Stack, name: str, dep: Dependency) -> bool:
    """True when the edge should exist; raises for a missing required dependency."""
    if dep.service in stack.services:
        if dep.service == name:
            raise GraphError(f"dependency cycle: {name} -> {name}", file=_file(stack),
                             path=f"services.{name}.{dep.kind}", service=name)
        return True
    if not dep.required:
        return False
    path = f"services.{name}.{dep.kind}"
    if dep.service in stack.disabled_services:
        profiles = ", ".join(stack.disabled_services[dep.service].profiles)
        raise GraphError(
            f'service "{name}" depends on "{dep.service}", which is disabled by its profiles '
            f"({profiles}): enable one with --profile, or set required: false",
            file=_file(stack), path=path, service=name,
        )
    raise GraphError(
        f'service "{name}" depends on undefined service "{dep.service}" '
        f"(define it or remove the dependency)", file=_file(stack), path=path, service=name,
    )


def _file(stack: Stack) -> str | None:
    return os.path.basename(stack.files[0]) if stack.files else None


def _add_edge(edges: Edges, name: str, dep: Dependency) -> None:
    old = edges.get((name, dep.service))
    if old is not None and old.kind == "depends_on":
        return  # depends_on carries the condition; keep it
    edges[name, dep.service] = dep


def _check_cycles(graph: nx.DiGraph, file: str | None) -> None:
    import networkx as nx

    if nx.is_directed_acyclic_graph(graph):  # O(V+E); find_cycle is slow on big acyclic graphs
        return
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    names = [edge[0] for edge in cycle] + [cycle[0][0]]
    raise GraphError(f"dependency cycle: {' -> '.join(names)}", file=file, service=names[0])


__all__ = ["Dependency", "DependsOn", "ServiceGraph", "build_graph"]
