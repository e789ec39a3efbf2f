"""Files, overrides, -f merging, project names, .env, profiles, extends."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from composer.errors import SpecError
from composer.spec import LoadOptions, load_stack
from composer.spec.load import normalise_project_name

from .conftest import Loader

Write = Callable[[str, str], Path]


@pytest.mark.parametrize("name", ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"])
def test_default_file_names(load: Loader, write: Write, name: str) -> None:
    write(name, "services: {a: {image: x}}")
    assert list(load().services) == ["a"]


def test_first_default_name_wins(load: Loader, write: Write) -> None:
    write("docker-compose.yml", "services: {old: {image: x}}")
    write("compose.yaml", "services: {new: {image: x}}")
    assert list(load().services) == ["new"]


def test_found_in_parent_folder(load: Loader, write: Write, project: Path) -> None:
    write("compose.yaml", "services: {a: {image: x}}")
    (project / "sub").mkdir()
    st = load_stack(LoadOptions(environ={}, working_dir=str(project / "sub")))
    assert st.project_directory == str(project)


def test_no_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no stack file found"):
        load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_directory=str(tmp_path)))


def test_missing_f_file(load: Loader) -> None:
    with pytest.raises(SpecError) as err:
        load(files=["nope.yaml"])
    assert str(err.value) == "nope.yaml: file not found (check -f / COMPOSE_FILE)"


def test_override_file_merged_automatically(load: Loader, write: Write) -> None:
    write("compose.override.yaml", "services: {a: {environment: {B: '2'}}, b: {image: y}}")
    st = load("services: {a: {image: x, environment: [A=1]}}")
    assert st.services["a"].environment == {"A": "1", "B": "2"}
    assert sorted(st.services) == ["a", "b"]
    assert [Path(f).name for f in st.files] == ["compose.yaml", "compose.override.yaml"]


def test_override_not_used_with_f(load: Loader, write: Write) -> None:
    write("compose.override.yaml", "services: {b: {image: y}}")
    write("compose.yaml", "services: {a: {image: x}}")
    assert list(load(files=["compose.yaml"]).services) == ["a"]


MERGE_BASE = """
services:
  web:
    image: base
    command: [run, base]
    entrypoint: /base.sh
    environment: {A: "1", B: "1"}
    labels: [l1=a]
    ports: ["80:80", "443:443"]
    expose: ["1"]
    dns: 1.1.1.1
    volumes: ["./a:/data", "logs:/logs"]
    depends_on: [db]
    networks: [n1]
    healthcheck: {test: [CMD, base], interval: 10s}
    ulimits: {nofile: 10}
    cap_add: [A]
  db: {image: db}
volumes: {logs: {}}
networks: {n1: {}, n2: {}}
"""
MERGE_OVER = """
services:
  web:
    image: over
    command: [run, over]
    environment: [B=2, C=3]
    labels: {l2: b}
    ports: ["443:443", "8080:8080"]
    expose: ["2"]
    dns: [8.8.8.8]
    volumes: ["./b:/data:ro"]
    depends_on: {db: {condition: service_healthy}}
    networks: {n2: {aliases: [w]}}
    healthcheck: {test: [CMD, over]}
    ulimits: {nproc: 5}
    cap_add: [A, B]
"""


def test_merge_rules(load: Loader, write: Write, project: Path) -> None:
    write("compose.yaml", MERGE_BASE)
    write("over.yaml", MERGE_OVER)
    web = load(files=["compose.yaml", "over.yaml"]).services["web"]
    assert web.image == "over"
    assert web.command == ("run", "over")  # replaced, not concatenated
    assert web.entrypoint == ("/base.sh",)
    assert web.environment == {"A": "1", "B": "2", "C": "3"}
    assert web.labels == {"l1": "a", "l2": "b"}
    assert [(p.published, p.target) for p in web.ports] == [(80, 80), (443, 443), (8080, 8080)]
    assert web.expose == ("1", "2")
    assert web.dns == ("1.1.1.1", "8.8.8.8")
    assert [(v.source, v.target, v.read_only) for v in web.volumes] == [
        (str(project / "b"), "/data", True), ("logs", "/logs", False)]
    assert [(d.service, d.condition) for d in web.depends_on] == [("db", "service_healthy")]
    assert [(n.name, n.aliases) for n in web.networks] == [("n1", ()), ("n2", ("w",))]
    assert web.healthcheck is not None
    assert (web.healthcheck.test, web.healthcheck.interval) == (("CMD", "over"), 10.0)
    assert [u.name for u in web.ulimits] == ["nofile", "nproc"]
    assert web.cap_add == ("A", "B")


def test_merge_paths_relative_to_project_dir(load: Loader, write: Write, project: Path) -> None:
    write("compose.yaml", "services: {a: {image: x}}")
    write("sub/over.yaml", "services: {a: {volumes: ['./data:/data']}}")
    st = load(files=["compose.yaml", "sub/over.yaml"])
    assert st.services["a"].volumes[0].source == str(project / "data")


def test_project_directory_option(load: Loader, write: Write, project: Path, tmp_path: Path) -> None:
    write("compose.yaml", "services: {a: {image: x, volumes: ['./d:/d']}}")
    other = tmp_path / "elsewhere"
    other.mkdir()
    st = load(files=[str(project / "compose.yaml")], project_directory=str(other))
    assert st.project_directory == str(other)
    assert st.services["a"].volumes[0].source == str(other / "d")
    assert st.name == "elsewhere"


@pytest.mark.parametrize(("folder", "name"), [
    ("My Project", "myproject"), ("_x.Y-z", "xy-z"), ("123abc", "123abc"), ("a__b", "a__b"),
])
def test_project_name_from_folder(folder: str, name: str) -> None:
    assert normalise_project_name(folder) == name


def test_project_name_precedence(load: Loader, write: Write) -> None:
    write("compose.yaml", "name: fromfile\nservices: {a: {image: x}}")
    assert load().name == "fromfile"
    assert load(environ={"COMPOSE_PROJECT_NAME": "fromenv"}).name == "fromenv"
    assert load(environ={"COMPOSE_PROJECT_NAME": "fromenv"}, project_name="fromflag").name == "fromflag"
    write(".env", "COMPOSE_PROJECT_NAME=dotenv\n")
    assert load().name == "dotenv"


def test_project_name_from_folder_normalised(load: Loader) -> None:
    assert load("services: {a: {image: x}}").name == "myproject"


def test_invalid_explicit_project_name(load: Loader) -> None:
    with pytest.raises(SpecError) as err:
        load("services: {a: {image: x}}", project_name="My App")
    assert 'invalid project name "My App" from -p' in str(err.value)
    assert '(e.g. "myapp")' in str(err.value)


def test_name_key_is_interpolated(load: Loader) -> None:
    assert load("name: ${N}\nservices: {a: {image: x}}", environ={"N": "proj"}).name == "proj"


def test_dotenv_and_precedence(load: Loader, write: Write) -> None:
    write(".env", "TAG=fromdotenv\nOTHER=dot\n")
    st = load("services: {a: {image: 'img:${TAG}', environment: [O=$OTHER]}}", environ={"TAG": "fromos"})
    assert st.services["a"].image == "img:fromos"  # the process environment wins
    assert st.services["a"].environment == {"O": "dot"}
    assert st.environment["OTHER"] == "dot"


def test_env_file_option_replaces_dotenv(load: Loader, write: Write) -> None:
    write(".env", "TAG=dot\n")
    write("a.env", "TAG=a\nX=1\n")
    write("b.env", "TAG=b\n")
    st = load("services: {a: {image: 'img:${TAG}-${X:-none}'}}", env_files=["a.env", "b.env"])
    assert st.services["a"].image == "img:b-1"
    with pytest.raises(SpecError, match="env file not found"):
        load(env_files=["missing.env"])


def test_compose_file_variable(load: Loader, write: Write) -> None:
    write("one.yaml", "services: {a: {image: x}}")
    write("two.yaml", "services: {b: {image: y}}")
    st = load(environ={"COMPOSE_FILE": "one.yaml:two.yaml"})
    assert sorted(st.services) == ["a", "b"]


def test_unset_variable_warning(load: Loader) -> None:
    st = load("services: {a: {image: 'x${NOPE}'}}")
    assert st.services["a"].image == "x"
    assert any("the NOPE variable is not set" in w for w in st.warnings)


def test_version_is_ignored_with_warning(load: Loader) -> None:
    st = load("version: '3.9'\nservices: {a: {image: x}}")
    assert any("version is obsolete" in w for w in st.warnings)


def test_x_extensions_allowed_everywhere(load: Loader) -> None:
    st = load("""
        x-top: 1
        services:
          a:
            image: x
            x-svc: {any: thing}
            healthcheck: {test: [NONE], x-h: 1}
            deploy: {x-d: 1, resources: {x-r: 1, limits: {x-l: 1}}}
            ports: [{target: 80, x-p: 1}]
            volumes: [{type: tmpfs, target: /t, x-v: 1}]
        networks: {n: {x-n: 1}}
        volumes: {v: {x-v: 1}}
    """)
    assert st.services["a"].image == "x"


PROFILES = """
services:
  always: {image: x}
  debug: {image: x, profiles: [debug]}
  both: {image: x, profiles: [debug, test]}
"""


def test_profiles(load: Loader) -> None:
    assert sorted(load(PROFILES).services) == ["always"]
    st = load(PROFILES, profiles=["debug"])
    assert sorted(st.services) == ["always", "both", "debug"]
    st = load(PROFILES, environ={"COMPOSE_PROFILES": "test"})
    assert sorted(st.services) == ["always", "both"]
    assert sorted(st.disabled_services) == ["debug"]
    assert st.all_profiles() == ("debug", "test")
    assert sorted(load(PROFILES, profiles=["*"]).services) == ["always", "both", "debug"]


TARGETED = """
services:
  web: {image: x}
  debug: {image: x, profiles: [tools], depends_on: [helper]}
  helper: {image: x, profiles: [tools]}
  probe: {image: x, profiles: [probe], depends_on: [db]}
  db: {image: x, profiles: [data]}
  other: {image: x, profiles: [other]}
"""


def test_services_named_on_the_command_line_enable_their_profiles(load: Loader) -> None:
    """As Compose: `up debug` runs debug whatever its profile; its profile becomes active, so
    its dependency in the same profile runs too; nothing else changes."""
    st = load(TARGETED)
    assert sorted(st.services) == ["web"]
    up = st.with_services_enabled(["debug"])
    assert sorted(up.services) == ["debug", "helper", "web"]
    assert sorted(up.disabled_services) == ["db", "other", "probe"]
    assert up.profiles == ("tools",)
    assert up.services["debug"] == st.disabled_services["debug"]
    # --profile / COMPOSE_PROFILES stay active, the target's profiles are added
    both = load(TARGETED, profiles=["other"]).with_services_enabled(["web", "debug"])
    assert both.profiles == ("other", "tools")
    assert sorted(both.services) == ["debug", "helper", "other", "web"]
    # enabled or unknown names change nothing
    assert st.with_services_enabled(["web", "nope"]) is st
    assert st.with_services_enabled([]) is st


def test_targeted_service_does_not_enable_a_dependency_in_another_profile(load: Loader) -> None:
    from composer.errors import GraphError
    from composer.graph import build_graph

    st = load(TARGETED).with_services_enabled(["probe"])
    assert "db" not in st.services
    with pytest.raises(GraphError) as err:
        build_graph(st)
    assert str(err.value) == (
        'compose.yaml: services.probe.depends_on: service "probe" depends on "db", which is '
        "disabled by its profiles (data): enable one with --profile, or set required: false")
    both = load(TARGETED).with_services_enabled(["probe", "db"])  # naming it too enables it
    assert build_graph(both).generations() == [["db", "web"], ["probe"]]


def test_extends_same_file(load: Loader) -> None:
    st = load("""
        services:
          base: {image: x, environment: {A: "1"}, command: [base], ports: ["80:80"]}
          mid: {extends: base, environment: {B: "2"}}
          app: {extends: {service: mid}, command: [app], ports: ["81:81"]}
    """)
    app = st.services["app"]
    assert (app.image, app.environment, app.command) == ("x", {"A": "1", "B": "2"}, ("app",))
    assert [p.published for p in app.ports] == [80, 81]


def test_extends_other_file_rebases_paths(load: Loader, write: Write, project: Path) -> None:
    write("common/base.yaml", """
        services:
          tmpl: {image: base, build: ./ctx, volumes: ['./data:/data'], env_file: vars.env}
    """)
    write("common/vars.env", "FROM_BASE=1\n")
    st = load("services: {app: {extends: {file: common/base.yaml, service: tmpl}, image: mine}}")
    app = st.services["app"]
    assert app.image == "mine"
    assert app.build is not None and app.build.context == str(project / "common" / "ctx")
    assert app.volumes[0].source == str(project / "common" / "data")
    assert app.environment == {"FROM_BASE": "1"}


@pytest.mark.parametrize(("text", "message"), [
    ("services: {a: {extends: b, image: x}, b: {extends: a, image: y}}", "extends loop: a -> b -> a"),
    ("services: {a: {extends: nope, image: x}}", 'cannot extend service "nope"'),
    ("services: {a: {extends: {file: x.yaml}, image: x}}", "missing key service"),
    ("services: {a: {extends: {service: b, files: x}, image: x}, b: {image: y}}", 'did you mean "file"?'),
])
def test_extends_errors(load: Loader, text: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        load(text)
    assert message in str(err.value)
    assert str(err.value).startswith("compose.yaml: services.a.extends")


def test_extends_missing_file(load: Loader) -> None:
    with pytest.raises(SpecError) as err:
        load("services: {a: {extends: {file: gone.yaml, service: b}}}")
    assert str(err.value) == "gone.yaml: file not found"


def test_yaml12_scalars(load: Loader) -> None:
    st = load("services: {a: {image: x, environment: {A: yes, B: on, C: 010}, ports: [22:22]}}")
    assert st.services["a"].environment == {"A": "yes", "B": "on", "C": "8"}
    assert (st.services["a"].ports[0].published, st.services["a"].ports[0].target) == (22, 22)
