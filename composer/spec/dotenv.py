"""`.env` / `env_file` parsing as Compose does it.

Lines are `KEY=VALUE`, optionally prefixed by `export `; `#` starts a comment (at line
start, or after whitespace in an unquoted value). Values may be single-quoted (literal),
double-quoted (escapes `\\n \\t \\" \\\\`, may span lines, `${VAR}` interpolated) or bare
(`${VAR}` interpolated, trailing spaces stripped). A line `KEY` without `=` takes the value
from the lookup environment or is dropped.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from composer.readlog import noted
from composer.spec.interpolate import Interpolator
from composer.spec.where import Where

_KEY = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=?)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def read_env_file(path: Path, lookup: Mapping[str, str], *, label: str | None = None) -> dict[str, str]:
    """Parse one env file. Earlier keys of the same file are visible to later `${VAR}`."""
    name = label or str(path)
    try:
        text = noted(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise Where(name).error(f"cannot read env file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise Where(name).error("env file is not valid UTF-8") from None
    return parse_env_text(text, lookup, name)


def read_raw_env_file(path: Path, lookup: Mapping[str, str], *, label: str | None = None) -> dict[str, str]:
    """`env_file` with `format: raw`: `docker run --env-file` rules (moby's kvfile), which
    Compose registers as "raw": leading whitespace and `#` lines skipped, the value is the
    rest of the line as written (no quotes, no `${VAR}`, trailing spaces kept); `KEY` alone
    takes its value from `lookup` or is dropped."""
    name = label or str(path)
    try:
        data = noted(path).read_bytes()
    except OSError as exc:
        raise Where(name).error(f"cannot read env file: {exc.strerror or exc}") from None
    out: dict[str, str] = {}
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        w = Where(name, f"line {number}")
        try:
            line = raw.removesuffix(b"\r").decode("utf-8").lstrip()
        except UnicodeDecodeError:
            w.fail("invalid UTF-8")
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not key:
            w.fail(f'no variable name in "{line[:40]}"')
        if any(c.isspace() for c in key):
            w.fail(f'variable "{key}" contains whitespace')
        if eq:
            out[key] = value
        elif key in lookup:
            out[key] = lookup[key]
    return out


def parse_env_text(text: str, lookup: Mapping[str, str], name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos, n, line_no = 0, len(text), 0
    while pos < n:
        end = text.find("\n", pos)
        end = n if end < 0 else end
        line = text[pos:end]
        line_no += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            pos = end + 1
            continue
        w = Where(name, f"line {line_no}")
        m = _KEY.match(line)
        if not m:
            w.fail(f'invalid line "{stripped[:40]}" (use KEY=VALUE)')
        key, eq = m.group(1), m.group(2)
        if not eq:
            if line[m.end():].strip() and not line[m.end():].strip().startswith("#"):
                w.fail(f'invalid line "{stripped[:40]}" (use KEY=VALUE)')
            if key in lookup:
                out[key] = lookup[key]
            pos = end + 1
            continue
        rest_start = pos + m.end()
        while rest_start < n and text[rest_start] in " \t":
            rest_start += 1
        quote = text[rest_start] if rest_start < n else ""
        env = _Chain(out, lookup)
        if quote in ("'", '"'):
            close = _find_quote(text, rest_start + 1, quote)
            if close < 0:
                w.fail(f"unterminated {quote} quote")
            raw = text[rest_start + 1:close]
            line_no += raw.count("\n")
            if quote == "'":
                out[key] = raw
            else:
                out[key] = Interpolator(env).text(_unescape(raw), w)
            end = text.find("\n", close)
            end = n if end < 0 else end
        else:
            value = text[rest_start:end]
            hash_at = re.search(r"\s#", value)
            if hash_at:
                value = value[: hash_at.start()]
            value = value.strip()
            out[key] = Interpolator(env).text(value, w) if "$" in value else value
        pos = end + 1
    return out


def _find_quote(text: str, start: int, quote: str) -> int:
    i = start
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return -1


def _unescape(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw) and raw[i + 1] in _ESCAPES:
            nxt = raw[i + 1]
            out.append("$$" if nxt == "$" else _ESCAPES[nxt])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


class _Chain(Mapping[str, str]):
    """Variables defined earlier in the file first, then the lookup environment."""

    def __init__(self, first: Mapping[str, str], second: Mapping[str, str]) -> None:
        self.first, self.second = first, second

    def __getitem__(self, key: str) -> str:
        if key in self.first:
            return self.first[key]
        return self.second[key]

    def __iter__(self) -> Iterator[str]:
        yield from {**self.second, **self.first}

    def __len__(self) -> int:
        return len({**self.second, **self.first})
