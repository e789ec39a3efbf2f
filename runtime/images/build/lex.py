"""Dockerfile words: splitting with quotes, and variable substitution as Docker does it.

`process_word` follows moby's shell lexer (frontend/dockerfile/shell/lex.go): single quotes
are literal, double quotes allow `$` and escapes of `"`, `$` and the escape char, the escape
char (`\\` or a `# escape=` backtick) outside quotes makes the next char literal, and
  $VAR  ${VAR}  ${VAR:-word} ${VAR-word}  ${VAR:+word} ${VAR+word}  ${VAR:?msg} ${VAR?msg}
are expanded from `env`. An unset variable is the empty string.
"""
from __future__ import annotations

from collections.abc import Mapping


class SubstitutionError(ValueError):
    pass


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on whitespace outside quotes; quotes and escapes stay in the words."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    in_word = False
    i = 0
    while i < len(text):
        ch = text[i]
        if not quote and ch.isspace():
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            i += 1
            continue
        in_word = True
        if ch == escape and quote != "'" and i + 1 < len(text):
            cur.append(ch + text[i + 1])
            i += 2
            continue
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        cur.append(ch)
        i += 1
    if in_word:
        words.append("".join(cur))
    return words


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, quotes: bool) -> None:
        self.s = text
        self.i = 0
        self.env = env
        self.escape = escape
        self.quotes = quotes
        self.used: set[str] = set()

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        self.i += 1
        return ch

    def word(self, stop: str = "") -> str:
        out: list[str] = []
        while self.i < len(self.s):
            ch = self.peek()
            if stop and ch in stop:
                break
            self.i += 1
            if ch == self.escape:
                if self.i < len(self.s):
                    out.append(self.next())
                else:
                    out.append(ch)
            elif self.quotes and ch == "'":
                out.append(self.single_quoted())
            elif self.quotes and ch == '"':
                out.append(self.double_quoted())
            elif ch == "$":
                out.append(self.dollar())
            else:
                out.append(ch)
        return "".join(out)

    def single_quoted(self) -> str:
        end = self.s.find("'", self.i)
        if end < 0:
            raise SubstitutionError("unexpected end of text looking for matching single quote")
        text = self.s[self.i:end]
        self.i = end + 1
        return text

    def double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise SubstitutionError("unexpected end of text looking for matching double quote")
            ch = self.next()
            if ch == '"':
                return "".join(out)
            if ch == self.escape and self.peek() in ('"', "$", self.escape) and self.peek():
                out.append(self.next())
            elif ch == "$":
                out.append(self.dollar())
            else:
                out.append(ch)

    def dollar(self) -> str:
        ch = self.peek()
        if ch == "{":
            self.i += 1
            return self.braced()
        name = self.name()
        if not name:
            return "$"
        return self.lookup(name) or ""

    def name(self) -> str:
        start = self.i
        while self.i < len(self.s) and _is_name_char(self.s[self.i]):
            self.i += 1
        return self.s[start:self.i]

    def lookup(self, name: str) -> str | None:
        self.used.add(name)
        return self.env.get(name)

    def braced(self) -> str:
        name = self.name()
        if not name:
            raise SubstitutionError("bad substitution: missing variable name after '${'")
        ch = self.next()
        if ch == "}":
            return self.lookup(name) or ""
        colon = ch == ":"
        if colon:
            ch = self.next()
        if ch not in ("-", "+", "?"):
            raise SubstitutionError(f"unsupported modifier {ch!r} in substitution of {name}")
        word = self.word(stop="}")
        if self.next() != "}":
            raise SubstitutionError(f"missing '}}' in substitution of {name}")
        value = self.lookup(name)
        is_set = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if is_set and value is not None else word
        if ch == "+":
            return word if is_set else ""
        if not is_set:  # "?"
            raise SubstitutionError(f"{name}: {word or 'is not set'}")
        return value or ""


def process_word(word: str, env: Mapping[str, str], escape: str = "\\", *, quotes: bool = True) -> str:
    """Expand variables in one word and remove its quotes (`quotes=False`: keep quote chars,
    for words that came from a JSON array)."""
    return _Lexer(word, env, escape, quotes).word()


def used_names(word: str, env: Mapping[str, str], escape: str = "\\") -> set[str]:
    """The variable names `word` refers to (for cache keys)."""
    lx = _Lexer(word, env, escape, True)
    try:
        lx.word()
    except SubstitutionError:
        pass
    return lx.used


def process_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    return [process_word(w, env, escape) for w in split_words(text, escape)]
