"""The dependency graph of a stack's enabled services (networkx DiGraph).

An edge `a -> b` means "a needs b": b starts first and stops last. Edges come from
`depends_on` (with its condition), `links`, `volumes_from`, and `network_mode` / `ipc` /
`pid` `service:NAME` / `container:NAME` (the latter only when NAME is some service's
container_name). A cycle, or a dependency on a service that is missing or disabled by
its profile, is a `GraphError` naming the services (`web -> app -> web`).
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


class ServiceGraph:
    def __init__(self, graph: nx.DiGraph) -> None:
        self.graph = graph

    @property
    def services(self) -> list[str]:
        return sorted(self.graph.nodes)

    def dependencies(self, name: str) -> tuple[Dependency, ...]:
        """What `name` needs, with the condition to wait for."""
        return tuple(
            self.graph.edges[name, dep]["dependency"] for dep in sorted(self.graph.successors(name))
        )

    def dependents(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(self.graph.predecessors(name)))

    def generations(self) -> list[list[str]]:
        """Start order: each list can start in parallel once the previous ones are up."""
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


def build_graph(stack: Stack) -> ServiceGraph:
    import networkx as nx

    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(stack.services)
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
                _add_edge(graph, name, dep)
    _check_cycles(graph, _file(stack))
    return ServiceGraph(graph)


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


def _add_edge(graph: nx.DiGraph, name: str, dep: Dependency) -> None:
    if graph.has_edge(name, dep.service):
        old: Dependency = graph.edges[name, dep.service]["dependency"]
        if old.kind == "depends_on":
            return  # depends_on carries the condition; keep it
    graph.add_edge(name, dep.service, dependency=dep)


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
