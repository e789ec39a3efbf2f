"""The dependency graph: order, selection, conditions, cycles and missing services."""
from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import GraphError
from composer.graph import Dependency, build_graph
from composer.spec import LoadOptions, Stack, load_stack


def stack(tmp_path: Path, text: str, **opts: object) -> Stack:
    (tmp_path / "compose.yaml").write_text(text)
    return load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="p", **opts))  # type: ignore[arg-type]


CHAIN = """
services:
  proxy: {image: x, depends_on: [web]}
  web: {image: x, depends_on: {app: {condition: service_healthy}, cache: {condition: service_started}}}
  app: {image: x, depends_on: {db: {condition: service_completed_successfully, restart: true}}}
  cache: {image: x}
  db: {image: x}
  lonely: {image: x}
"""


def test_generations_and_teardown(tmp_path: Path) -> None:
    g = build_graph(stack(tmp_path, CHAIN))
    assert g.generations() == [["cache", "db", "lonely"], ["app"], ["web"], ["proxy"]]
    assert g.teardown_generations() == [["proxy"], ["web"], ["app"], ["cache", "db", "lonely"]]


def test_dependencies_carry_conditions(tmp_path: Path) -> None:
    g = build_graph(stack(tmp_path, CHAIN))
    assert g.dependencies("web") == (
        Dependency("app", "service_healthy"), Dependency("cache", "service_started"))
    assert g.dependencies("app") == (Dependency("db", "service_completed_successfully", restart=True),)
    assert g.dependencies("db") == ()
    assert g.dependents("db") == ("app",)


def test_select_is_transitive(tmp_path: Path) -> None:
    g = build_graph(stack(tmp_path, CHAIN))
    assert g.select(["web"]) == {"web", "app", "cache", "db"}
    assert g.select(["lonely", "app"]) == {"lonely", "app", "db"}
    with pytest.raises(GraphError, match='no such service "nope"'):
        g.select(["nope"])


def test_other_edges(tmp_path: Path) -> None:
    g = build_graph(stack(tmp_path, """
        services:
          a: {image: x, links: ["b:bee"], volumes_from: [c, "container:dee"]}
          b: {image: x, network_mode: "service:c"}
          c: {image: x}
          d: {image: x, container_name: dee, network_mode: "container:unrelated"}
    """))
    assert {d.service: d.kind for d in g.dependencies("a")} == {"b": "links", "c": "volumes_from", "d": "volumes_from"}
    assert g.dependencies("b") == (Dependency("c", kind="network_mode"),)
    assert g.dependencies("d") == ()  # container:NAME of a non-service is outside the stack
    assert g.generations() == [["c", "d"], ["b"], ["a"]]


def test_container_network_mode_of_a_service(tmp_path: Path) -> None:
    g = build_graph(stack(tmp_path, """
        services:
          a: {image: x, network_mode: "container:bee"}
          b: {image: x, container_name: bee}
    """))
    assert g.dependencies("a") == (Dependency("b", kind="network_mode"),)


@pytest.mark.parametrize(("text", "cycle"), [
    ("services: {web: {image: x, depends_on: [app]}, app: {image: x, depends_on: [web]}}",
     ["app -> web -> app", "web -> app -> web"]),
    ("services: {a: {image: x, depends_on: [b]}, b: {image: x, links: [c]}, c: {image: x, volumes_from: [a]}}",
     ["a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"]),
    ("services: {a: {image: x, depends_on: [a]}}", ["a -> a"]),
])
def test_cycles_are_named(tmp_path: Path, text: str, cycle: list[str]) -> None:
    with pytest.raises(GraphError) as err:
        build_graph(stack(tmp_path, text))
    assert any(f"dependency cycle: {c}" in str(err.value) for c in cycle), str(err.value)
    assert str(err.value).startswith("compose.yaml")


def test_missing_dependency_names_both(tmp_path: Path) -> None:
    with pytest.raises(GraphError) as err:
        build_graph(stack(tmp_path, "services: {web: {image: x, depends_on: [db]}}"))
    assert str(err.value) == (
        'compose.yaml: services.web.depends_on: service "web" depends on undefined service "db" '
        "(define it or remove the dependency)"
    )


def test_not_required_dependency_is_dropped(tmp_path: Path) -> None:
    g = build_graph(stack(tmp_path, "services: {web: {image: x, depends_on: {db: {condition: service_started, required: false}}}}"))
    assert g.dependencies("web") == ()


PROFILED = """
services:
  web: {image: x, depends_on: [db]}
  db: {image: x, profiles: [data]}
"""


def test_dependency_on_disabled_service(tmp_path: Path) -> None:
    with pytest.raises(GraphError) as err:
        build_graph(stack(tmp_path, PROFILED))
    assert 'service "web" depends on "db", which is disabled by its profiles (data)' in str(err.value)
    g = build_graph(stack(tmp_path, PROFILED, profiles=["data"]))
    assert g.generations() == [["db"], ["web"]]


def test_service_network_mode_on_missing_service(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="services.a.network_mode"):
        build_graph(stack(tmp_path, "services: {a: {image: x, network_mode: 'service:zz'}}"))
