"""`config --variables`: the `${...}` variables a stack's files use, as compose-go's
template.ExtractVariables reports them (name, required by `?`, the `-` default, the `+`
alternate value), read from the files as written, before interpolation. Keys are not
interpolated, so only values are searched; `$$` is a literal dollar, not a variable.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.spec.interpolate import closing_brace
from composer.spec.yamlio import parse_yaml_tagged, read_yaml_tagged, take_merge_tags

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Variable:
    name: str
    required: bool = False
    default: str = ""
    alternate: str = ""


def variables_of(files: Iterable[str], stdin: str | None = None) -> list[Variable]:
    """Every variable of the files (`-`: the text `stdin`), sorted by name; the first use
    of a name decides."""
    found: dict[str, Variable] = {}
    for f in files:
        tagged = parse_yaml_tagged(stdin, f) if f == "-" and stdin is not None else \
            read_yaml_tagged(Path(f), f)
        doc, _ = take_merge_tags(tagged)  # !reset / !override: their values are used too
        for text in _strings(doc):
            for v in _in_text(text):
                found.setdefault(v.name, v)
    return [found[n] for n in sorted(found)]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _in_text(text: str) -> Iterator[Variable]:
    i = 0
    while (j := text.find("$", i)) >= 0:
        nxt = text[j + 1:j + 2]
        if nxt == "$":
            i = j + 2
            continue
        if nxt != "{":
            m = _NAME.match(text, j + 1)
            if m:
                yield Variable(m.group(0))
            i = m.end() if m else j + 1
            continue
        end = closing_brace(text, j + 2)
        m = _NAME.match(text, j + 2)
        if end < 0 or not m or m.end() > end:
            i = j + 1  # not a variable (config itself reports the bad format)
            continue
        name, rest = m.group(0), text[m.end():end]
        if rest.startswith((":?", "?")):
            yield Variable(name, required=True)
        elif rest.startswith((":-", "-")):
            yield Variable(name, default=rest[2 if rest[0] == ":" else 1:])
        elif rest.startswith((":+", "+")):
            yield Variable(name, alternate=rest[2 if rest[0] == ":" else 1:])
        else:
            yield Variable(name)
        yield from _in_text(rest)  # ${A:-${B}}: B is used too
        i = end + 1
