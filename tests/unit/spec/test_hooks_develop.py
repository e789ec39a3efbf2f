"""Lifecycle hooks (pre_start, post_start, pre_stop) and develop.watch: syntaxes, errors,
merging, `config` output and the config hash."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from composer.convert import config_hash
from composer.errors import SpecError
from composer.spec.hooks import ServiceHook, WatchRule
from composer.spec.render import render_stack

from .conftest import Loader

HOOKS = """
services:
  web:
    image: x
    pre_start:
      - command: sh -c 'echo hi > /data/a'
        image: busybox
        user: root
        working_dir: /data
        environment: [A=1, FROM_OS]
        privileged: "true"
      - image: migrate
    post_start:
      - command: ["chown", "-R", "1000", "/data"]
        user: "0"
        privileged: true
        environment: {B: 2}
    pre_stop:
      - command: echo bye
        x-note: kept out
"""


def test_hook_syntaxes(load: Loader) -> None:
    web = load(HOOKS, environ={"FROM_OS": "os"}).services["web"]
    assert web.pre_start == (
        ServiceHook(command=("sh", "-c", "echo hi > /data/a"), user="root", privileged=True,
                    working_dir="/data", environment={"A": "1", "FROM_OS": "os"}, image="busybox"),
        ServiceHook(image="migrate"),  # no command: the image's own
    )
    assert web.post_start == (ServiceHook(command=("chown", "-R", "1000", "/data"), user="0",
                                          privileged=True, environment={"B": "2"}),)
    assert web.pre_stop == (ServiceHook(command=("echo", "bye")),)


def test_a_hook_key_alone_without_a_value_in_the_environment_is_dropped(load: Loader) -> None:
    web = load(HOOKS, environ={}).services["web"]
    assert web.pre_start[0].environment == {"A": "1"}


@pytest.mark.parametrize(("body", "expected"), [
    ("post_start: [{user: root}]", "services.web.post_start[0]: missing key command"),
    ("pre_stop: [{command: x, image: y}]", 'services.web.pre_stop[0].image: unknown key'),
    ("post_start: [{command: x, per_replica: true}]", "services.web.post_start[0].per_replica: unknown key"),
    ("pre_start: [{command: x, per_replica: true}]",
     "services.web.pre_start[0].per_replica: not supported: per_replica: true"),
    ("pre_start: {command: x}", "services.web.pre_start: expected a sequence"),
    ("post_start: [{command: x, privileged: maybe}]", "services.web.post_start[0].privileged: expected a boolean"),
    ("pre_stop: [{command: 5}]", "services.web.pre_stop[0].command: expected a sequence"),
    ("post_start: null", "services.web.post_start: expected a value, got null"),
])
def test_hook_errors_name_the_key(load: Loader, body: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load(f"services:\n  web:\n    image: x\n    {body}\n")
    assert str(err.value).startswith(f"compose.yaml: {expected}"), str(err.value)


def test_per_replica_false_is_accepted(load: Loader) -> None:
    web = load("services: {web: {image: x, pre_start: [{command: x, per_replica: false}]}}").services["web"]
    assert web.pre_start == (ServiceHook(command=("x",)),)


DEVELOP = """
services:
  web:
    build: .
    develop:
      watch:
        - path: ./src
          action: sync
          target: /app/src
          ignore: ["*.tmp", node_modules/]
          include: "*.py"
          initial_sync: true
        - path: package.json
          action: rebuild
        - path: ./conf
          action: sync+restart
          target: etc/app
        - path: /abs/hooks
          action: sync+exec
          target: /app/hooks
          exec: {command: kill -HUP 1, user: root}
        - {path: ., action: restart, x-initialSync: true}
"""


def test_develop_watch_syntaxes(load: Loader, project: Path) -> None:
    stack = load(DEVELOP)
    rules = stack.services["web"].develop.watch  # type: ignore[union-attr]
    assert rules == (
        WatchRule(str(project / "src"), "sync", "/app/src", ("*.tmp", "node_modules/"), ("*.py",),
                  initial_sync=True),
        WatchRule(str(project / "package.json"), "rebuild"),
        WatchRule(str(project / "conf"), "sync+restart", "/etc/app"),  # target from /, as Docker
        WatchRule("/abs/hooks", "sync+exec", "/app/hooks",
                  exec=ServiceHook(command=("kill", "-HUP", "1"), user="root")),
        WatchRule(str(project), "restart", initial_sync=True),
    )
    assert any("x-initialSync is deprecated" in w for w in stack.warnings)


@pytest.mark.parametrize(("rule", "expected"), [
    ("{path: ., action: copy, target: /a}", 'services.web.develop.watch[0].action: invalid action "copy"'),
    ("{path: ., action: sync}", "services.web.develop.watch[0].target: target is required for action sync"),
    ("{action: rebuild}", "services.web.develop.watch[0]: missing key path"),
    ("{path: ., action: sync+exec, target: /a}", "services.web.develop.watch[0]: action sync+exec needs exec"),
    ("{path: ., action: sync+exec, target: /a, exec: {user: x}}",
     "services.web.develop.watch[0].exec: missing key command"),
    ("{path: ., action: rebuild, delay: 1}", "services.web.develop.watch[0].delay: unknown key"),
    ("{path: ., action: sync, target: /a, initial_sync: sometimes}",
     "services.web.develop.watch[0].initial_sync: expected a boolean"),
])
def test_develop_errors_name_the_key(load: Loader, rule: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load(f"services: {{web: {{build: ., develop: {{watch: [{rule}]}}}}}}")
    assert str(err.value).startswith(f"compose.yaml: {expected}"), str(err.value)


def test_null_develop_and_watch_are_empty(load: Loader) -> None:
    stack = load("services: {a: {image: x, develop: null}, b: {image: x, develop: {watch: null}}}")
    assert stack.services["a"].develop is not None and not stack.services["a"].develop.watch
    assert "develop" not in render_stack(stack)["services"]["b"]


def test_override_files_append_hooks_and_watch_rules(load: Loader, write: Callable[[str, str], Path],
                                                      project: Path) -> None:
    write("compose.yaml", """
services:
  web:
    image: x
    post_start: [{command: one}]
    develop: {watch: [{path: a, action: rebuild}]}
""")
    write("compose.override.yaml", """
services:
  web:
    post_start: [{command: two}]
    develop: {watch: [{path: b, action: restart}]}
""")
    web = load().services["web"]
    assert [h.command for h in web.post_start] == [("one",), ("two",)]
    assert [r.path for r in web.develop.watch] == [str(project / "a"), str(project / "b")]  # type: ignore[union-attr]


def test_extends_from_another_folder_rebases_watch_paths(load: Loader, write: Callable[[str, str], Path],
                                                          project: Path) -> None:
    write("base/common.yaml", "services: {app: {image: x, develop: {watch: [{path: src, action: restart}]}}}")
    web = load("services: {web: {extends: {file: base/common.yaml, service: app}}}").services["web"]
    assert web.develop.watch[0].path == str(project / "base" / "src")  # type: ignore[union-attr]


def test_config_prints_hooks_and_watch_and_loads_back(load: Loader, write: Callable[[str, str], Path]) -> None:
    import yaml

    stack = load(HOOKS + DEVELOP.replace("services:\n  web:", "  dev:"), environ={"FROM_OS": "os"})
    out = render_stack(stack)
    web = out["services"]["web"]
    assert web["pre_start"][0] == {
        "command": ["sh", "-c", "echo hi > /data/a"], "image": "busybox", "user": "root",
        "working_dir": "/data", "privileged": True, "environment": {"A": "1", "FROM_OS": "os"}}
    assert web["pre_stop"] == [{"command": ["echo", "bye"]}]
    rule = out["services"]["dev"]["develop"]["watch"][3]
    assert rule["exec"] == {"command": ["kill", "-HUP", "1"], "user": "root"}
    write("compose.yaml", yaml.safe_dump(out))
    again = load(environ={})
    assert again.services == stack.services


def test_a_hook_or_a_watch_rule_is_part_of_the_config_hash(load: Loader) -> None:
    """As Compose's ServiceHash: changing a hook recreates the container, which re-runs the
    pre_start hooks."""
    base = "services: {web: {image: x, pre_start: [{command: 'echo v1'}]}}"
    h1 = config_hash(load(base).services["web"])
    assert config_hash(load(base).services["web"]) == h1
    assert config_hash(load(base.replace("v1", "v2")).services["web"]) != h1
    h2 = config_hash(load("services: {web: {image: x, post_start: [{command: a}]}}").services["web"])
    assert h2 != config_hash(load("services: {web: {image: x, post_start: [{command: b}]}}").services["web"])
