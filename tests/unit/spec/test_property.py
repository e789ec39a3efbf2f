"""Property tests: whatever the input, the loader raises nothing but SpecError, and what it
accepts the Compose JSON schema accepts too (schema oracle)."""
from __future__ import annotations

import copy
import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import SpecError
from composer.spec import LoadOptions, load_stack
from composer.spec.keys import SERVICE_KEYS
from composer.spec.yamlio import parse_yaml

from .test_service import FULL

SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"  # vendored (tests/unit/spec/data)
# COMPOSER_HYPOTHESIS_EXAMPLES=5000 for a deeper run; the unit suite stays fast.
EXAMPLES = int(os.environ.get("COMPOSER_HYPOTHESIS_EXAMPLES", "250"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

KEYS = st.sampled_from([
    *SERVICE_KEYS, "services", "networks", "volumes", "web", "db", "target", "source", "type",
    "published", "condition", "test", "interval", "limits", "cpus", "memory", "soft", "hard",
    "context", "aliases", "external", "name", "driver", "x-ext", "file", "service", "bind",
]) | st.text(min_size=1, max_size=8)
SCALARS = (
    st.none() | st.booleans() | st.integers(-70000, 70000) | st.floats(allow_nan=False, width=32)
    | st.text(max_size=12)
    | st.sampled_from(["80:80", "./x:/y:ro", "1m30s", "512m", "service_healthy", "CMD", "true", "a=b",
                       "${X:-1}", "$$", "host", "service:db", "tmpfs", "/abs", "0.5", "on-failure:3"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))


def _try_load(doc: Any) -> bool:
    """True when accepted; any exception other than SpecError fails the test."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "compose.yaml"
        path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
        try:
            load_stack(LoadOptions(files=[str(path)], environ={}, working_dir=tmp, project_name="p"))
        except SpecError as exc:
            assert str(exc).strip(), "empty error message"
            return False
        return True


def _oracle(doc: Any) -> None:
    raw = parse_yaml(yaml.safe_dump(doc), "doc") if not isinstance(doc, str) else parse_yaml(doc, "doc")
    errors = list(_validator().iter_errors(raw))
    assert not errors, f"accepted but schema-invalid: {errors[0].message} at {list(errors[0].absolute_path)}"


@SETTINGS
@given(VALUES)
def test_random_documents(doc: Any) -> None:
    if _try_load(doc):
        _oracle(doc)


@SETTINGS
@given(st.dictionaries(KEYS, VALUES, max_size=3).map(lambda s: {"services": {"svc": s}}))
def test_random_services(doc: Any) -> None:
    if _try_load(doc):
        _oracle(doc)


@SETTINGS
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    if _try_load(text):
        _oracle(text)


BASES = [
    parse_yaml(FULL, "full"),
    {"services": {"web": {"image": "x", "ports": ["80:80"], "volumes": ["d:/d"],
                          "depends_on": {"db": {"condition": "service_healthy"}},
                          "healthcheck": {"test": ["CMD", "true"], "interval": "5s"},
                          "deploy": {"resources": {"limits": {"cpus": "0.5", "memory": "64m"}}}},
                  "db": {"image": "y", "networks": {"n": {"aliases": ["a"]}}}},
     "volumes": {"d": {}}, "networks": {"n": {"ipam": {"config": [{"subnet": "10.1.0.0/16"}]}}}},
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)[1:]
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        op = draw(st.sampled_from(["replace", "delete", "insert", "wrap"]))
        last = path[-1]
        if op == "replace":
            parent[last] = draw(VALUES)
        elif op == "delete":
            del parent[last]
        elif op == "wrap":
            parent[last] = [parent[last]] if not isinstance(parent[last], list) else {"k": parent[last]}
        elif isinstance(parent[last], dict):
            parent[last][draw(KEYS)] = draw(VALUES)
        elif isinstance(parent[last], list):
            parent[last].append(draw(VALUES))
        else:
            parent[last] = draw(SCALARS)
    return doc


@SETTINGS
@given(mutated())
def test_mutations_of_valid_files(doc: Any) -> None:
    if _try_load(doc):
        _oracle(doc)


def test_bases_are_valid() -> None:
    for base in BASES[1:]:
        assert _try_load(base)
        _oracle(base)
