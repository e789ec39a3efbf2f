"""Loading: YAML alias budget, Compose's `!reset` / `!override` merge tags, and the default
file names of either family with Compose's warning when several exist."""
from __future__ import annotations

import time

import pytest

from composer.errors import SpecError
from composer.spec.render import render_stack
from composer.spec.yamlio import allowed_alias_ratio, parse_yaml

from .conftest import Loader


def laughs(levels: int) -> str:
    lines = ['x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijk"[:levels]:
        lines.append(f"x-{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "\n".join(lines) + "\nservices: {web: {image: busybox}}\n"


def test_billion_laughs_is_refused_in_one_line_within_a_budget(load: Loader) -> None:
    started = time.monotonic()
    with pytest.raises(SpecError) as e:
        load(laughs(9))  # 9^10 nodes once expanded: minutes and gigabytes before
    assert time.monotonic() - started < 2
    text = str(e.value)
    assert text.startswith("compose.yaml: invalid YAML: document contains excessive aliasing (")
    assert "\n" not in text


def test_ordinary_anchors_stay_within_the_budget(load: Loader) -> None:
    common = "x-common: &common {restart: always, environment: {A: '1', B: '2'}, labels: [a=b]}\n"
    services = "".join(f"  s{i}: {{<<: *common, image: busybox}}\n" for i in range(200))
    stack = load(common + "services:\n" + services)
    assert len(stack.services) == 200 and stack.services["s7"].restart == "always"
    assert allowed_alias_ratio(100) == 0.99 and allowed_alias_ratio(10_000_000) == 0.10
    assert 0.10 < allowed_alias_ratio(2_000_000) < 0.99


def test_a_recursive_alias_is_an_error_not_a_hang() -> None:
    with pytest.raises(SpecError, match="alias refers to the node that contains it"):
        parse_yaml("a: &a [1, *a]\n", "x.yaml")


def test_reset_and_override_in_an_override_file(load: Loader, write) -> None:  # type: ignore[no-untyped-def]
    write("compose.yaml", """
        services:
          web:
            image: busybox
            ports: ["8080:80"]
            environment: {A: "1", B: "2"}
            labels: {keep: "yes"}
            command: [sleep, "1"]
    """)
    write("compose.override.yaml", """
        services:
          web:
            ports: !reset []
            environment: !override {C: "3"}
            labels: {more: "x"}
            command: !reset null
    """)
    web = load().services["web"]
    assert web.ports == () and web.command is None  # gone, also from the first file
    assert web.environment == {"C": "3"}  # replaced, not merged
    assert web.labels == {"keep": "yes", "more": "x"}  # untagged keys merge as usual


def test_reset_in_the_only_file_drops_the_value(load: Loader) -> None:
    stack = load("services: {web: {image: busybox, ports: !reset ['80:80'], init: !override true}}")
    assert stack.services["web"].ports == () and stack.services["web"].init is True


def test_override_file_of_the_other_family_and_the_several_files_warning(load: Loader, write) -> None:  # type: ignore[no-untyped-def]
    write("docker-compose.yml", "services: {web: {image: busybox}}")
    write("compose.override.yaml", "services: {web: {image: busybox:1}}")
    stack = load()
    assert stack.services["web"].image == "busybox:1"  # compose.override.yaml beside docker-compose.yml
    assert not stack.warnings
    write("compose.yaml", "services: {web: {image: alpine}}")
    write("docker-compose.override.yml", "services: {web: {init: true}}")
    stack = load()
    assert [f.rsplit("/", 1)[1] for f in stack.files] == ["compose.yaml", "compose.override.yaml"]
    assert stack.services["web"].image == "busybox:1"
    assert any(w.startswith("found multiple config files with supported names: ") and
               w.endswith("using " + stack.files[0]) for w in stack.warnings), stack.warnings
    assert any(w.startswith("found multiple override files") for w in stack.warnings)


def test_config_keeps_x_keys_at_every_level_it_models(load: Loader) -> None:
    stack = load("""
x-top: {a: 1}
services:
  web: {image: busybox, x-svc: [1, 2]}
networks:
  n: {x-net: true}
volumes:
  v: {x-vol: "$$HOME"}
secrets:
  s: {file: ./s, x-sec: 1}
""")
    out = render_stack(stack)
    assert out["x-top"] == {"a": 1} and out["services"]["web"]["x-svc"] == [1, 2]
    assert out["networks"]["n"]["x-net"] is True and out["volumes"]["v"]["x-vol"] == "$$HOME"
    assert out["secrets"]["s"]["x-sec"] == 1
