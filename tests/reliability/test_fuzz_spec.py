"""The stack-file fuzzer: 10,000 hypothesis examples through `composer.spec.load_stack`.

Random YAML documents, random text, and mutations of valid stack files (the strategies of
tests/unit/spec/test_property.py); the only exception allowed is `composer.errors.SpecError`
with a non-empty message — anything else is a traceback a user would see.
"""
from __future__ import annotations

import os
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.figures import record
from tests.unit.spec.test_property import KEYS, VALUES, _try_load, mutated

TOTAL = int(os.environ.get("COMPOSER_RELIABILITY_FUZZ_EXAMPLES", "10000"))
SHARE = {"documents": 0.3, "services": 0.2, "mutations": 0.35, "text": 0.15}
_counts: dict[str, int] = {}
_accepted: dict[str, int] = {}


def _settings(kind: str) -> settings:
    return settings(max_examples=max(1, int(TOTAL * SHARE[kind])), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


def _run(kind: str, doc: Any) -> None:
    _counts[kind] = _counts.get(kind, 0) + 1
    if _try_load(doc):
        _accepted[kind] = _accepted.get(kind, 0) + 1


# YAML-level oddities the value strategies do not produce: anchors, tags, merge keys, tabs,
# duplicate keys, multi-document streams, binary, deep nesting, huge scalars
YAML_BITS = st.sampled_from([
    "&a", "*a", "<<: *a", "!!python/object:os.system", "!!binary", "!!set", "---", "...", "\t",
    "{", "}", "[", "]", ":", "- ", "? ", "|", ">", "'", '"', "\\u0000", "%YAML 1.1", "%TAG",
    "services:", "  web:", "    image: x", "    ports: [80:80]", "x" * 300, "[" * 60, "~", "=",
    "${", "$$", "\n", "#", "@", "`", "&", "*", "!", "0x1F", "1e400", ".inf", "-.nan", "\ufeff",
])


@_settings("documents")
@given(VALUES)
def test_random_documents(doc: Any) -> None:
    _run("documents", doc)


@_settings("services")
@given(st.dictionaries(KEYS, VALUES, max_size=4).map(lambda s: {"services": {"svc": s}}))
def test_random_services(doc: Any) -> None:
    _run("services", doc)


@_settings("mutations")
@given(mutated())
def test_mutations_of_valid_files(doc: Any) -> None:
    _run("mutations", doc)


@_settings("text")
@given(st.lists(YAML_BITS | st.text(max_size=10), max_size=30).map(" ".join)
       | st.lists(YAML_BITS, max_size=30).map("\n".join)
       | st.text(max_size=300))
def test_random_yaml_text(text: str) -> None:
    _run("text", text)


def test_zz_report() -> None:
    """Runs last in this module (alphabetical within the file order): the figures."""
    record("spec_fuzzer", examples=sum(_counts.values()), by_kind=dict(_counts),
           accepted=dict(_accepted), finished_at=time.time())
    if len(_counts) == len(SHARE):  # the whole module ran
        assert sum(_counts.values()) >= TOTAL * 0.9, _counts
