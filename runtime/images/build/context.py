"""The build context: a directory, minus what `.dockerignore` excludes.

Patterns follow moby's patternmatcher: Go `filepath.Match` syntax (`*`, `?`, `[a-z]`,
`[^a-z]`, `\\` escapes) plus `**` for any number of directories; each pattern is cleaned
and a leading `/` dropped; a pattern that matches a parent directory excludes everything
below it; `!pattern` re-includes; the last matching pattern wins.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runtime.images.build.errors import BuildError


@dataclass(frozen=True)
class _Pattern:
    text: str
    exclusion: bool  # a `!` pattern
    regex: re.Pattern[str]
    depth: int  # number of path components


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                # `**/` matches zero or more directories; a trailing `**` anything
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"bad pattern {pattern!r}: '[' without ']'")
            body = pattern[i + 1:end]
            if body.startswith("^"):
                body = "^" + body[1:].replace("\\", "\\\\")
            else:
                body = body.replace("\\", "\\\\")
            out.append("[" + body + "]")
            i = end
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out))


class IgnoreMatcher:
    """`.dockerignore` rules; `excluded("a/b.txt")` answers for one context-relative path."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for raw in patterns:
            p = raw.strip()
            if not p or p.startswith("#"):
                continue
            exclusion = p.startswith("!")
            if exclusion:
                p = p[1:].strip()
            p = posixpath.normpath(p).lstrip("/") if p not in ("/", ".") else "."
            if p == ".":
                continue  # excluding the root is meaningless (Docker ignores it too)
            try:
                rx = _compile(p)
            except ValueError as e:
                raise BuildError(f"invalid .dockerignore pattern {raw!r}: {e}") from e
            self.patterns.append(_Pattern(p, exclusion, rx, len(p.split("/"))))

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, rel: str) -> bool:
        rel = posixpath.normpath(rel)
        parts = rel.split("/")
        matched = False
        for p in self.patterns:
            hit = bool(p.regex.match(rel))
            if not hit and len(parts) > 1 and p.depth < len(parts):
                # a pattern naming a parent directory covers everything under it
                hit = bool(p.regex.match("/".join(parts[:p.depth])))
            if hit:
                matched = not p.exclusion
        return matched


def read_dockerignore(context_dir: Path, dockerfile: Path | None = None) -> IgnoreMatcher:
    """`<Dockerfile>.dockerignore` next to the Dockerfile wins over `<context>/.dockerignore`."""
    candidates = []
    if dockerfile is not None:
        candidates.append(dockerfile.with_name(dockerfile.name + ".dockerignore"))
    candidates.append(context_dir / ".dockerignore")
    for c in candidates:
        if c.is_file():
            return IgnoreMatcher(c.read_text().splitlines())
    return IgnoreMatcher([])


def go_match(pattern: str, name: str) -> bool:
    """Go filepath.Match for one context-relative path (`*` does not cross `/`)."""
    return bool(_compile(pattern).match(name))


@dataclass
class BuildContext:
    root: Path
    ignore: IgnoreMatcher = field(default_factory=lambda: IgnoreMatcher([]))
    _digests: dict[tuple[str, int, int, int], str] = field(default_factory=dict)

    @classmethod
    def open(cls, root: Path, dockerfile: Path | None = None) -> BuildContext:
        if not root.is_dir():
            raise BuildError(f"build context {root} is not a directory")
        return cls(root.resolve(), read_dockerignore(root, dockerfile))

    def _clean(self, src: str) -> str:
        rel = posixpath.normpath("/" + src).lstrip("/")  # `..` cannot climb above the root
        return rel or "."

    def expand_source(self, src: str) -> list[str]:
        """Context-relative paths a COPY source names (a path or a glob), not excluded.
        Raises BuildError when nothing matches."""
        rel = self._clean(src)
        if not any(c in rel for c in "*?["):
            path = self.root / rel
            if rel == ".":
                return ["."]
            if (path.exists() or path.is_symlink()) and not self.ignore.excluded(rel):
                return [rel]
            return []
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            reldir = os.path.relpath(dirpath, self.root)
            for name in sorted(dirnames + filenames):
                r = name if reldir == "." else f"{reldir}/{name}"
                if go_match(rel, r) and not self.ignore.excluded(r):
                    out.append(r)
            # only descend as deep as the pattern reaches
            if reldir != "." and reldir.count("/") + 1 >= rel.count("/"):
                dirnames[:] = []
        return sorted(out)

    def walk(self, rel: str) -> Iterator[tuple[str, os.stat_result]]:
        """(context-relative path, lstat) of `rel` and everything below it that is not
        excluded, parents before children; excluded dirs are kept if something below is
        re-included with `!`."""
        top = self.root / rel
        st = os.lstat(top)
        yield rel, st
        if not stat.S_ISDIR(st.st_mode):
            return
        yield from self._walk_dir(rel)

    def _walk_dir(self, rel: str) -> Iterator[tuple[str, os.stat_result]]:
        try:
            names = sorted(os.listdir(self.root / rel))
        except OSError as e:
            raise BuildError(f"cannot read {rel!r} in the build context: {e.strerror}") from e
        for name in names:
            r = name if rel == "." else f"{rel}/{name}"
            st = os.lstat(self.root / r)
            excluded = self.ignore.excluded(r)
            if stat.S_ISDIR(st.st_mode):
                if excluded and not self.ignore.has_exclusions:
                    continue
                children = list(self._walk_dir(r))
                if not excluded or children:
                    yield r, st
                    yield from children
            elif not excluded:
                yield r, st

    def file_digest(self, rel: str, st: os.stat_result) -> str:
        key = (rel, st.st_mtime_ns, st.st_size, st.st_ino)
        d = self._digests.get(key)
        if d is None:
            h = hashlib.sha256()
            with open(self.root / rel, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            d = h.hexdigest()
            self._digests[key] = d
        return d

    def digest(self, sources: list[str]) -> str:
        """A digest of everything the sources name: paths, types, modes and content (not
        mtimes, not owners: a fresh checkout of the same files gives the same key)."""
        h = hashlib.sha256()
        for src in sources:
            for rel, st in self.walk(src):
                mode = stat.S_IMODE(st.st_mode)
                h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{mode:o}\0".encode())
                if stat.S_ISREG(st.st_mode):
                    h.update(self.file_digest(rel, st).encode())
                elif stat.S_ISLNK(st.st_mode):
                    h.update(os.readlink(self.root / rel).encode())
                h.update(b"\n")
        return h.hexdigest()
