"""Where a value sits in a stack file, and typed accessors that fail with that location.

Every parser takes the raw value plus a `Where` (file + key path such as
`services.web.ports[0]`); a wrong type becomes a `SpecError` naming both. Values may be
strings after interpolation, so booleans and numbers also accept their string spellings
(as Compose does), but a string field never accepts a number (as the schema says).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from composer.errors import SpecError

TRUE_WORDS = frozenset({"true", "yes", "y", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "off", "0"})


@dataclass(frozen=True)
class Where:
    file: str
    path: str = ""
    service: str | None = None

    def key(self, name: object) -> Where:
        sub = f"{self.path}.{name}" if self.path else str(name)
        return Where(self.file, sub, self.service)

    def idx(self, i: int) -> Where:
        return Where(self.file, f"{self.path}[{i}]", self.service)

    def error(self, message: str) -> SpecError:
        return SpecError(message, file=self.file, path=self.path or None, service=self.service)

    def fail(self, message: str) -> NoReturn:
        raise self.error(message)


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list):
        return "sequence"
    return type(value).__name__


def wrong_type(value: object, expected: str, w: Where) -> NoReturn:
    w.fail(f"expected {expected}, got {type_name(value)} {_short(value)}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def as_str(value: object, w: Where) -> str:
    if isinstance(value, str):
        return value
    wrong_type(value, "a string", w)


def as_bool(value: object, w: Where) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in TRUE_WORDS:
            return True
        if low in FALSE_WORDS:
            return False
    wrong_type(value, "a boolean", w)


def as_int(value: object, w: Where) -> int:
    if isinstance(value, bool):
        wrong_type(value, "an integer", w)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            pass
    wrong_type(value, "an integer", w)


def as_number(value: object, w: Where) -> float:
    if isinstance(value, bool):
        wrong_type(value, "a number", w)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    wrong_type(value, "a number", w)


def as_map(value: object, w: Where) -> dict[str, Any]:
    if isinstance(value, Mapping):
        for k in value:
            if not isinstance(k, str):
                w.key(k).fail(f"keys must be strings, got {type_name(k)} {_short(k)}")
        return dict(value)
    wrong_type(value, "a mapping", w)


def as_list(value: object, w: Where) -> list[Any]:
    if isinstance(value, list):
        return value
    wrong_type(value, "a sequence", w)


def str_list(value: object, w: Where) -> tuple[str, ...]:
    return tuple(as_str(v, w.idx(i)) for i, v in enumerate(as_list(value, w)))


def str_or_list(value: object, w: Where) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return str_list(value, w)


def scalar_text(value: object, w: Where, *, allow_null: bool = False) -> str | None:
    """A string, number or boolean as Compose writes it into a string map (env, labels)."""
    if value is None:
        if allow_null:
            return None
        wrong_type(value, "a string, number or boolean", w)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    wrong_type(value, "a string, number or boolean", w)


def list_or_dict(
    value: object, w: Where, *, sep: str = "=", allow_null: bool = True
) -> dict[str, str | None]:
    """`[K=V, K]` or `{K: V}` -> {K: V or None}; None means "no value given"."""
    out: dict[str, str | None] = {}
    if isinstance(value, list):
        unique_items(value, w)
        for i, item in enumerate(value):
            text = as_str(item, w.idx(i))
            if sep in text:
                k, v = text.split(sep, 1)
                out[k] = v
            else:
                out[text] = None
        return out
    for k, v in as_map(value, w).items():
        out[k] = scalar_text(v, w.key(k), allow_null=allow_null)
    return out


def check_keys(
    raw: Mapping[str, Any],
    w: Where,
    allowed: Iterable[str],
    *,
    unsupported: Mapping[str, str] | None = None,
) -> None:
    """Unknown key -> error with the nearest valid key; `x-*` keys are always allowed."""
    names = set(allowed)
    for key in raw:
        if not isinstance(key, str):
            w.key(key).fail(f"keys must be strings, got {type_name(key)}")
        if key.startswith("x-") or key in names:
            continue
        if unsupported and key in unsupported:
            w.key(key).fail(f"not supported: {unsupported[key]}")
        hint = difflib.get_close_matches(key, sorted(names), n=1, cutoff=0.6)
        tip = f' (did you mean "{hint[0]}"?)' if hint else ""
        w.key(key).fail(f"unknown key{tip}")


def extensions(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The `x-*` keys of a mapping: no meaning here, kept so `config` prints them (Compose)."""
    return {k: v for k, v in raw.items() if isinstance(k, str) and k.startswith("x-")}


def reject_null(value: object, w: Where, expected: str) -> None:
    if value is None:
        wrong_type(value, expected, w)


def unique_items(items: list[Any], w: Where) -> None:
    """Sequences the schema marks uniqueItems: a repeated entry is an error."""
    seen: list[Any] = []
    for i, item in enumerate(items):
        if any(item == s and type(item) is type(s) for s in seen):
            w.idx(i).fail(f"duplicate entry {_short(item)}")
        seen.append(item)
