"""Safe YAML reading with YAML 1.2 scalars, as Docker Compose (Go yaml.v3) reads them.

PyYAML's SafeLoader speaks YAML 1.1: `22:22` becomes the sexagesimal integer 1342 and
`yes`/`no`/`on`/`off` become booleans. Compose reads those as strings (and converts to a
boolean only where the key wants one), so our loader resolves only the YAML 1.2 core
schema: null, true/false, decimal/0o/0x integers (and 0755-style octal, as yaml.v3 does),
floats. Duplicate keys are an error, as in Compose. Errors carry the line and column.

Aliases are expanded by reference, but everything after the loader (interpolation, merge,
`config`) walks the expanded tree: a "billion laughs" file (aliases of aliases) is refused
before construction with yaml.v3's budget (`document contains excessive aliasing`).

Compose's merge tags: `!reset` drops a value (and what earlier files set there), `!override`
replaces it instead of merging; `read_yaml_tagged` returns where they were
(`composer.spec.merge.apply_resets` applies them).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from composer.errors import SpecError
from composer.readlog import noted

# libyaml's C parser when present (about 10x faster on big files), same resolvers either way.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    pass


_Loader.yaml_implicit_resolvers = {}
_RESOLVERS: list[tuple[str, str, str]] = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
]
for _tag, _pattern, _first in _RESOLVERS:
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
_Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [""])


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body.startswith("0o"):
        return sign * int(body[2:], 8)
    if body.startswith("0x"):
        return sign * int(body[2:], 16)
    if len(body) > 1 and body.startswith("0") and set(body) <= set("01234567"):
        return sign * int(body, 8)
    return sign * int(body, 10)


def _construct_float(loader: Any, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    if text.endswith("inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text.endswith("nan"):
        return float("nan")
    return float(text)


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:  # duplicates among the keys written here (not `<<` merges)
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be scalars", key_node.start_mark
            )
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        ident = (key_node.tag, key_node.value)
        if ident in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
            )
        seen.add(ident)
    loader.flatten_mapping(node)  # merged entries first, so keys written here win
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        out[loader.construct_object(key_node, deep=True)] = loader.construct_object(value_node, deep=True)
    return out


class _Reset:
    """A `!reset` value: removed from its file, and from what earlier files set there."""


RESET = _Reset()


@dataclass(frozen=True)
class Override:
    """An `!override` value: replaces what earlier files set there instead of merging."""

    value: Any


def _construct_reset(loader: Any, node: yaml.Node) -> _Reset:
    return RESET


def _construct_override(loader: Any, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(_construct_mapping(loader, node))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    assert isinstance(node, yaml.ScalarNode)
    plain = not node.style  # a quoted scalar stays a string; a plain one resolves as usual
    tag = loader.resolve(yaml.ScalarNode, node.value, (plain, not plain))
    return Override(loader.construct_object(yaml.ScalarNode(
        tag, node.value, node.start_mark, node.end_mark, node.style)))


_Loader.add_constructor("!reset", _construct_reset)
_Loader.add_constructor("!override", _construct_override)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


# yaml.v3's alias budget (decode.go): past 1000 decoded nodes and 100 from aliases, the
# share of nodes that come from alias expansion may be 99% up to 400k nodes, falling to 10%
# at 4M. A real stack file stays far below; aliases of aliases hit it at once.
_ALIAS_LOW, _ALIAS_HIGH = 400_000, 4_000_000


def allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _ALIAS_LOW:
        return 0.99
    if decoded >= _ALIAS_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _ALIAS_LOW) / (_ALIAS_HIGH - _ALIAS_LOW)


def _check_aliasing(root: yaml.Node) -> None:
    """Count the nodes of the expanded tree (memoised per node: linear in the file's size)
    and refuse a document whose expansion is mostly aliases, as yaml.v3 does."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias refers to the node that contains it", node.start_mark)
        active.add(key)
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            n += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        sizes[key] = n
        return n

    decoded = size(root)
    aliased = decoded - len(sizes)  # every node beyond the first visit of each came from an alias
    if aliased > 100 and decoded > 1000 and aliased / decoded > allowed_alias_ratio(decoded):
        raise yaml.YAMLError(
            f"document contains excessive aliasing ({decoded} nodes once aliases are expanded, "
            f"{aliased} of them from aliases)")


def parse_yaml(text: str, name: str) -> Any:
    """Parse one YAML document as plain data (merge tags applied to itself only)."""
    return take_merge_tags(parse_yaml_tagged(text, name))[0]


def parse_yaml_tagged(text: str, name: str) -> Any:
    """Parse one YAML document; errors become one-line SpecErrors with line:column.
    `!reset` / `!override` values are kept as `RESET` / `Override` (see `take_merge_tags`)."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_aliasing(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"invalid YAML: {what}", file=name, path=where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=name) from None
    except RecursionError:
        raise SpecError("invalid YAML: nested too deeply", file=name) from None


def take_merge_tags(doc: Any) -> tuple[Any, list[tuple[str, ...]]]:
    """`doc` without its `!reset` values and with `!override` ones unwrapped, plus the key
    paths they were at (compose-go's ResetProcessor; entries of a sequence are dropped when
    reset but, as there, not recorded)."""
    paths: list[tuple[str, ...]] = []

    def walk(value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, Override):
            paths.append(path)
            return walk(value.value, path)
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if v is RESET:
                    paths.append((*path, str(k)))
                    continue
                out[k] = walk(v, (*path, str(k)))
            return out
        if isinstance(value, list):
            return [walk(v, path) for v in value if v is not RESET]
        return value

    if doc is RESET:
        return None, []
    return walk(doc, ()), paths


def read_yaml(path: Path, name: str) -> Any:
    """A YAML file as plain data (`!reset` values dropped, `!override` ones unwrapped)."""
    return take_merge_tags(read_yaml_tagged(path, name))[0]


def read_yaml_tagged(path: Path, name: str) -> Any:
    try:
        text = noted(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file not found", file=name) from None
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror or exc}", file=name) from None
    except UnicodeDecodeError:
        raise SpecError("file is not valid UTF-8", file=name) from None
    return parse_yaml_tagged(text, name)
