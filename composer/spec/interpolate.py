"""`${VAR}` interpolation as Compose does it, on values only (never on keys).

Forms: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
`${VAR:?err}` / `${VAR?err}` (error), `${VAR:+alt}` / `${VAR+alt}` (replacement), and `$$`
for a literal `$`; a `$` not followed by a name or `{` stays as written (`$(date)`). Defaults, errors and replacements may themselves hold `${...}`.
An unset variable without a default becomes "" and leaves a warning, as in Compose.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from composer.spec.where import Where

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class Interpolator:
    """`keep`: leave every value as written (`config --no-interpolate`, compose-go's
    SkipInterpolation): `${VAR}` and `$$` stay, nothing is looked up or checked."""

    def __init__(self, env: Mapping[str, str], *, keep: bool = False) -> None:
        self.env = env
        self.keep = keep
        self.warnings: list[str] = []
        self.used: set[str] = set()

    def tree(self, value: Any, w: Where) -> Any:
        """Interpolate every string value of a YAML tree (keys are kept as they are)."""
        if self.keep:
            return value
        if isinstance(value, str):
            return self.text(value, w) if "$" in value else value
        if isinstance(value, dict):
            return {k: self.tree(v, w.key(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v, w.idx(i)) for i, v in enumerate(value)]
        return value

    def text(self, text: str, w: Where) -> str:
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            j = text.find("$", i)
            if j < 0:
                out.append(text[i:])
                break
            out.append(text[i:j])
            nxt = text[j + 1] if j + 1 < n else ""
            if nxt == "$":
                out.append("$")
                i = j + 2
            elif nxt == "{":
                end = closing_brace(text, j + 2)
                if end < 0:
                    self._invalid(text, w)
                out.append(self._braced(text[j + 2:end], text, w))
                i = end + 1
            else:
                m = _NAME.match(text, j + 1)
                if not m:  # `$(`, `$1`, a lone `$`: kept as written (as Compose)
                    out.append("$")
                    i = j + 1
                    continue
                out.append(self._lookup(m.group(0), w))
                i = m.end()
        return "".join(out)

    def _braced(self, inner: str, whole: str, w: Where) -> str:
        m = _NAME.match(inner)
        if not m:
            self._invalid(whole, w)
        name, rest = m.group(0), inner[m.end():]
        if not rest:
            return self._lookup(name, w)
        op = next((o for o in _OPERATORS if rest.startswith(o)), None)
        if op is None:
            self._invalid(whole, w)
        arg = rest[len(op):]
        self.used.add(name)
        value = self.env.get(name)
        present = value is not None and (value != "" or not op.startswith(":"))
        if op.endswith("-"):
            return value if present and value is not None else self.text(arg, w)
        if op.endswith("+"):
            return self.text(arg, w) if present else ""
        if not present or value is None:
            detail = self.text(arg, w) or f"variable {name} is required"
            w.fail(f"required variable {name} is missing a value: {detail}")
        return value

    def _lookup(self, name: str, w: Where) -> str:
        self.used.add(name)
        value = self.env.get(name)
        if value is None:
            where = f"{w.file}: {w.path}" if w.path else w.file
            self.warnings.append(
                f"{where}: the {name} variable is not set, defaulting to a blank string"
            )
            return ""
        return value

    @staticmethod
    def _invalid(text: str, w: Where) -> NoReturn:
        w.fail(f'invalid interpolation format in "{text}" (write $$ for a literal $)')


def closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing a `${` whose body starts at `start`; -1 if none."""
    depth, i, n = 1, start, len(text)
    while i < n:
        c = text[i]
        if c == "$" and i + 1 < n and text[i + 1] in "${":
            if text[i + 1] == "{":
                depth += 1
            i += 2
            continue
        if c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1
