"""Top-level `include:`: sub-projects with their own directory and `.env`, as docker compose."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from composer.cli import main
from composer.errors import SpecError
from composer.spec import LoadOptions, load_stack
from composer.spec.render import render_stack

from .conftest import Loader

Write = Callable[[str, str], Path]
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"  # vendored (tests/unit/spec/data)


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))


def assert_schema_valid(project: Path) -> None:
    """Every stack file we accept in these tests is valid for the Compose JSON schema too."""
    checked = 0
    for path in sorted(project.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        errors = list(_validator().iter_errors(doc))
        assert not errors, f"{path.name}: {errors[0].message} at {list(errors[0].absolute_path)}"
        checked += 1
    assert checked


DB = """
services:
  db:
    image: postgres:${TAG:-latest}
    build: ./ctx
    env_file: db.env
    volumes: ["./data:/var/lib/data", "dbdata:/more"]
    networks: [back]
networks: {back: {}}
volumes: {dbdata: {}}
secrets: {pw: {file: ./pw.txt}}
"""


def test_short_syntax_paths_resolve_in_the_included_folder(load: Loader, write: Write, project: Path) -> None:
    write("sub/compose.yaml", DB)
    write("sub/db.env", "POSTGRES_USER=app\n")
    stack = load("""
        include: [sub/compose.yaml]
        services:
          web: {image: nginx, build: ., depends_on: [db], secrets: [pw], volumes: ["./html:/html"]}
    """)
    db, web = stack.services["db"], stack.services["web"]
    sub = project / "sub"
    assert db.build is not None and db.build.context == str(sub / "ctx")
    assert [m.source for m in db.volumes] == [str(sub / "data"), "dbdata"]
    assert [e.path for e in db.env_files] == [str(sub / "db.env")]
    assert db.environment == {"POSTGRES_USER": "app"}
    assert stack.secrets["pw"].file == str(sub / "pw.txt")
    assert set(stack.networks) == {"back", "default"} and set(stack.volumes) == {"dbdata"}
    # the including file's own paths still resolve against its own folder
    assert web.build is not None and web.build.context == str(project)
    assert web.volumes[0].source == str(project / "html")
    assert_schema_valid(project)


def test_included_dotenv_interpolates_only_the_included_file(load: Loader, write: Write, project: Path) -> None:
    write("sub/compose.yaml", DB)
    write("sub/.env", "TAG=15\n")
    write("sub/db.env", "")
    text = """
        include: [sub/compose.yaml]
        services: {web: {image: "nginx:${TAG:-none}"}}
    """
    stack = load(text)
    assert stack.services["db"].image == "postgres:15"
    assert stack.services["web"].image == "nginx:none"  # the sub-project's .env stays its own
    # the including project's environment wins over the included .env (as compose-go)
    assert load(text, environ={"TAG": "16"}).services["db"].image == "postgres:16"
    write(".env", "TAG=17\n")
    stack = load(text)
    assert (stack.services["db"].image, stack.services["web"].image) == ("postgres:17", "nginx:17")
    assert_schema_valid(project)


def test_long_syntax_path_list_project_directory_env_file(load: Loader, write: Write, project: Path) -> None:
    write("third/compose.yaml", """
        services:
          api: {image: "api:${API_TAG}", build: ./src, env_file: [api.env]}
    """)
    write("third/override.yaml", """
        services:
          api: {environment: {MODE: local}, volumes: ["./conf:/conf"]}
    """)
    write("elsewhere/api.env", "K=v\n")
    write("api-vars.env", "API_TAG=2.1\n")
    stack = load("""
        include:
          - path: [third/compose.yaml, third/override.yaml]
            project_directory: elsewhere
            env_file: api-vars.env
        services: {web: {image: nginx}}
    """)
    api = stack.services["api"]
    base = project / "elsewhere"
    assert api.image == "api:2.1"
    assert api.build is not None and api.build.context == str(base / "src")
    assert api.volumes[0].source == str(base / "conf")
    assert api.environment == {"K": "v", "MODE": "local"}
    assert_schema_valid(project)


def test_long_syntax_single_path_and_env_file_list(load: Loader, write: Write, project: Path) -> None:
    write("sub/compose.yaml", "services: {a: {image: 'x:${A}-${B}'}}\n")
    write("sub/.env", "A=ignored\nB=ignored\n")  # env_file given: the default .env is not read
    write("one.env", "A=1\nB=1\n")
    write("two.env", "B=2\n")
    stack = load("""
        include:
          - path: sub/compose.yaml
            env_file: [one.env, two.env]
        services: {}
    """)
    assert stack.services["a"].image == "x:1-2"
    assert_schema_valid(project)


def test_nested_includes_resolve_each_level_in_its_own_folder(load: Loader, write: Write, project: Path) -> None:
    write("a/compose.yaml", "include: [../b/b.yaml]\nservices: {a: {image: x, volumes: ['./da:/d']}}\n")
    write("b/b.yaml", "include: [{path: c/c.yaml}]\nservices: {b: {image: x, volumes: ['./db:/d']}}\n")
    write("b/c/c.yaml", "services: {c: {image: x, volumes: ['./dc:/d'], depends_on: [b]}}\n")
    stack = load("include: [a/compose.yaml]\nservices: {top: {image: x, depends_on: [a, c]}}\n")
    assert {n: s.volumes[0].source for n, s in stack.services.items() if s.volumes} == {
        "a": str(project / "a" / "da"), "b": str(project / "b" / "db"), "c": str(project / "b" / "c" / "dc"),
    }
    assert_schema_valid(project)


def test_include_cycle_names_the_chain(load: Loader, write: Write) -> None:
    write("a/compose.yaml", "include: [../b/compose.yaml]\nservices: {a: {image: x}}\n")
    write("b/compose.yaml", "include: [../a/compose.yaml]\nservices: {b: {image: x}}\n")
    with pytest.raises(SpecError) as err:
        load("include: [a/compose.yaml]\nservices: {}\n")
    assert str(err.value) == (
        "b/compose.yaml: include[0]: include cycle: "
        "compose.yaml -> a/compose.yaml -> b/compose.yaml -> a/compose.yaml"
    )


def test_a_file_including_itself_is_a_cycle(load: Loader) -> None:
    with pytest.raises(SpecError, match=r"^compose.yaml: include\[0\]: include cycle: compose.yaml -> compose.yaml$"):
        load("include: [compose.yaml]\nservices: {}\n")


def test_missing_included_file_is_one_line(load: Loader, project: Path) -> None:
    with pytest.raises(SpecError) as err:
        load("services: {}\ninclude: [ok.yaml, nope/compose.yaml]\n", )
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("compose.yaml: include[0]: included file not found: ok.yaml")
    (project / "ok.yaml").write_text("services: {a: {image: x}}\n")
    with pytest.raises(SpecError, match=r"^compose.yaml: include\[1\]: included file not found: nope/compose.yaml "):
        load()


def test_missing_include_env_file(load: Loader, write: Write) -> None:
    write("sub/compose.yaml", "services: {a: {image: x}}\n")
    with pytest.raises(SpecError, match=r"^compose.yaml: include\[0\]: env file not found: missing.env "):
        load("include: [{path: sub/compose.yaml, env_file: missing.env}]\nservices: {}\n")


def test_conflict_with_the_including_file_names_both(load: Loader, write: Write) -> None:
    write("sub/compose.yaml", "services: {db: {image: postgres}}\n")
    with pytest.raises(SpecError) as err:
        load("include: [sub/compose.yaml]\nservices: {db: {image: mariadb}}\n")
    assert str(err.value).startswith(
        "compose.yaml: include[0]: services.db from sub/compose.yaml conflicts with services.db from compose.yaml"
    )


def test_conflict_between_two_included_files_names_both(load: Loader, write: Write) -> None:
    write("a/compose.yaml", "services: {a: {image: x}}\nnetworks: {shared: {internal: true}}\n")
    write("b/compose.yaml", "services: {b: {image: x}}\nnetworks: {shared: {}}\n")
    with pytest.raises(SpecError) as err:
        load("include: [a/compose.yaml, b/compose.yaml]\nservices: {}\n")
    assert str(err.value).startswith(
        "compose.yaml: include[1]: networks.shared from b/compose.yaml conflicts with networks.shared from a/compose.yaml"
    )


def test_conflict_found_in_a_nested_include_names_the_deep_file(load: Loader, write: Write) -> None:
    write("a/compose.yaml", "include: [deep/compose.yaml]\nservices: {a: {image: x}}\n")
    write("a/deep/compose.yaml", "services: {db: {image: postgres}}\n")
    with pytest.raises(SpecError, match="services.db from a/deep/compose.yaml conflicts with services.db from compose.yaml"):
        load("include: [a/compose.yaml]\nservices: {db: {image: mariadb}}\n")


def test_identical_definitions_are_not_a_conflict(load: Loader, write: Write, project: Path) -> None:
    """Two sub-projects including the same file (a diamond): Compose accepts equal resources."""
    write("common/compose.yaml", "services: {cache: {image: redis, volumes: ['./d:/d']}}\n")
    write("a/compose.yaml", "include: [../common/compose.yaml]\nservices: {a: {image: x}}\n")
    write("b/compose.yaml", "include: [../common/compose.yaml]\nservices: {b: {image: x}}\n")
    stack = load("include: [a/compose.yaml, b/compose.yaml]\nservices: {}\n")
    assert set(stack.services) == {"a", "b", "cache"}
    assert stack.services["cache"].volumes[0].source == str(project / "common" / "d")


def test_an_override_file_may_change_an_included_service(load: Loader, write: Write, project: Path) -> None:
    """Includes apply per file before -f files merge (compose-go), so an override can adapt them."""
    write("sub/compose.yaml", "services: {db: {image: postgres}}\n")
    write("compose.yaml", "include: [sub/compose.yaml]\nservices: {web: {image: nginx}}\n")
    write("compose.override.yaml", "services: {db: {environment: {X: '1'}}}\n")
    stack = load()
    assert stack.services["db"].image == "postgres"
    assert stack.services["db"].environment == {"X": "1"}


def test_errors_inside_an_included_file_name_that_file(load: Loader, write: Write) -> None:
    write("sub/compose.yaml", "services: {db: {image: postgres, portz: []}}\n")
    with pytest.raises(SpecError, match=r'^sub/compose.yaml: services.db.portz: unknown key \(did you mean "ports"\?\)$'):
        load("include: [sub/compose.yaml]\nservices: {}\n")
    write("sub/compose.yaml", "services: {db: {image: postgres, networks: [nope]}}\n")
    with pytest.raises(SpecError, match=r'^sub/compose.yaml: services.db.networks.nope: undefined network "nope"'):
        load()


@pytest.mark.parametrize(("include", "expected"), [
    ("include: {a: b}", "compose.yaml: include: expected a sequence"),
    ("include: [{project_directory: x}]", "compose.yaml: include[0]: missing key path"),
    ("include: [{path: a.yaml, envfile: x}]", 'compose.yaml: include[0].envfile: unknown key (did you mean "env_file"?)'),
    ("include: [{path: 5}]", "compose.yaml: include[0].path: expected a sequence, got integer 5"),
    ("include: ['']", "compose.yaml: include[0]: empty path"),
])
def test_malformed_include_entries(load: Loader, include: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load(f"{include}\nservices: {{}}\n")
    assert str(err.value).startswith(expected)


def test_config_prints_included_services_without_include(write: Write, project: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    write("sub/compose.yaml", DB)
    write("sub/db.env", "A=1\n")
    write("compose.yaml", "include: [sub/compose.yaml]\nservices: {web: {image: nginx, depends_on: [db]}}\n")
    assert main(["--project-directory", str(project), "config", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "include" not in out
    assert set(out["services"]) == {"db", "web"}
    assert out["services"]["db"]["build"]["context"] == str(project / "sub" / "ctx")
    assert out["services"]["db"]["environment"] == {"A": "1"}
    assert set(out["networks"]) == {"back", "default"} and set(out["volumes"]) == {"dbdata"}
    errors = list(_validator().iter_errors(out))
    assert not errors, errors[0].message
    # the printed model loads again on its own, to the same model
    write("again.yaml", yaml.safe_dump(out))
    again = load_stack(LoadOptions(files=[str(project / "again.yaml")], environ={}, project_directory=str(project)))
    assert render_stack(again) == render_stack(load_stack(LoadOptions(environ={}, working_dir=str(project))))


def test_remote_build_context_in_an_included_file_is_kept(load: Loader, write: Write) -> None:
    write("sub/compose.yaml", "services: {a: {build: 'git@github.com:o/r.git'}, b: {build: {context: 'https://x/y.git'}}}\n")
    stack = load("include: [sub/compose.yaml]\nservices: {}\n")
    assert [s.build.context for s in stack.services.values() if s.build] == ["git@github.com:o/r.git", "https://x/y.git"]
