"""Every key of the Compose JSON schema is either supported (with the test that proves it),
accepted with a warning, or refused by name (composer.spec.catalog); docs/stack-file.md
carries the same list. The schema is vendored in data/ (compose-spec's compose-spec.json)."""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from composer.convert import build_request, container_spec
from composer.errors import SpecError
from composer.spec import LoadOptions, load_stack
from composer.spec.catalog import (
    BEGIN,
    END,
    IGNORED,
    KEYS,
    REFUSED,
    SUPPORTED,
    Key,
    entry_for,
    render_markdown,
)

from .conftest import Loader

REPO = Path(__file__).resolve().parents[3]
SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"


def schema_paths() -> set[str]:
    """Key paths of the schema: `*` for a name, `[]` for a sequence item; x-* left out."""
    schema = json.loads(SCHEMA.read_text())
    defs = schema["$defs"]
    found: set[str] = set()

    def walk(node: Any, path: str, seen: frozenset[tuple[str, str]]) -> None:
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            ref = node["$ref"].rsplit("/", 1)[-1]
            if (ref, path) not in seen:
                walk(defs[ref], path, seen | {(ref, path)})
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, path, seen)
        for name, sub in (node.get("properties") or {}).items():
            sub_path = f"{path}.{name}" if path else name
            found.add(sub_path)
            walk(sub, sub_path, seen)
        for pattern, sub in (node.get("patternProperties") or {}).items():
            if not pattern.startswith("^x-"):
                walk(sub, f"{path}.*" if path else "*", seen)
        if "items" in node:
            walk(node["items"], path + "[]", seen)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], path + ".*", seen)

    walk(schema, "", frozenset())
    return found


def test_the_schema_is_the_one_the_corpus_was_checked_against() -> None:
    paths = schema_paths()
    assert len(paths) == 353 and "services.*.build.dockerfile_inline" in paths


def test_every_schema_key_is_decided() -> None:
    paths = schema_paths()
    undecided = sorted(p for p in paths if entry_for(p) is None)
    assert not undecided, f"keys neither supported nor refused: {undecided}"
    stale = sorted(k.path for k in KEYS if k.path not in paths)
    assert not stale, f"catalogue entries the schema does not have: {stale}"
    assert len({k.path for k in KEYS}) == len(KEYS)
    counts = {s: sum(1 for p in paths if entry_for(p).status == s) for s in (SUPPORTED, IGNORED, REFUSED)}  # type: ignore[union-attr]
    assert sum(counts.values()) == len(paths)


@pytest.mark.parametrize("key", [k for k in KEYS if k.status == SUPPORTED], ids=lambda k: k.path)
def test_supported_keys_name_a_test_that_exists(key: Key) -> None:
    file, _, name = key.test.partition("::")
    assert (REPO / file).is_file(), key.test
    module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
    assert callable(getattr(module, name, None)), f"{key.path}: no test {key.test}"


def _concrete(path: str) -> str:
    """`services.*.deploy.labels` as the example files spell it: services.s.deploy.labels."""
    out = re.sub(r"^services\.\*", "services.s", path)
    out = out.replace("networks.*", "networks.n")
    for section, name in (("volumes.*", "volumes.v"), ("secrets.*", "secrets.e"), ("configs.*", "configs.e")):
        out = out.replace(section, name)
    return out.replace("[]", "[0]")


@pytest.mark.parametrize("key", [k for k in KEYS if k.status == IGNORED], ids=lambda k: k.path)
def test_ignored_keys_load_with_a_warning_naming_them(key: Key, load: Loader) -> None:
    stack = load(key.example)
    text = "\n".join(stack.warnings)
    assert _concrete(key.path) in text, (key.path, stack.warnings)


@pytest.mark.parametrize("key", [k for k in KEYS if k.status == REFUSED], ids=lambda k: k.path)
def test_refused_keys_are_refused_by_name(key: Key, load: Loader) -> None:
    with pytest.raises(SpecError) as e:
        stack = load(key.example)
        for name, svc in stack.services.items():  # some are refused when the container is made
            container_spec(stack, name, 1, labels={})
            if svc.build is not None:
                build_request(stack, name, "t")
    text = str(e.value)
    assert "\n" not in text and "not supported" in text, text
    assert _concrete(key.path) in text or key.path.rsplit(".", 1)[-1] in text, (key.path, text)


def test_docs_list_the_same_keys() -> None:
    doc = (REPO / "docs" / "stack-file.md").read_text()
    assert BEGIN in doc and END in doc
    assert doc.split(BEGIN, 1)[1].split(END, 1)[0] == render_markdown(), (
        "docs/stack-file.md is out of date: python3 -m composer.spec.catalog --write docs/stack-file.md")


def test_small_keys_reach_the_runtime(tmp_path: Path) -> None:
    """Keys no other test covers: oom_kill_disable, userns_mode, enable_ipv4, a volume's
    consistency (kept, no effect on Linux) and bind.recursive (enabled only)."""
    (tmp_path / "compose.yaml").write_text("""
services:
  s:
    image: x
    oom_kill_disable: true
    userns_mode: private
    volumes: [{type: bind, source: ., target: /src, consistency: cached, bind: {recursive: enabled}}]
networks:
  default: {enable_ipv4: true}
""")
    stack = load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="p"))
    spec = container_spec(stack, "s", 1, labels={})
    assert spec.resources.oom_kill_disable is True and spec.userns_mode == "private"
    assert stack.services["s"].volumes[0].consistency == "cached"
    (tmp_path / "compose.yaml").write_text(
        "services: {s: {image: x, volumes: [{type: bind, source: ., target: /s, bind: {recursive: readonly}}]}}")
    with pytest.raises(SpecError, match="not supported: recursive"):
        load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="p"))
    (tmp_path / "compose.yaml").write_text("services: {s: {image: x}}\nnetworks: {default: {enable_ipv4: false}}")
    with pytest.raises(SpecError, match="not supported: networks without IPv4"):
        load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="p"))
