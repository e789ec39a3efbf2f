"""A read-only view of an image's root filesystem made of layer directories.

Used where the builder must read the image without mounting it: `/etc/passwd` for
`--chown`, `COPY --from=<stage>` sources, where `COPY` may write (a destination such as
`/bin` that is a symlink to `usr/bin` in the image). Layers are in overlay format; lookups
honour whiteouts (a 0/0 char device hides the name below) and opaque directories.
"""
from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from runtime.storage import whiteout

_MAX_SYMLINKS = 40


class RootView:
    def __init__(self, layer_dirs: Sequence[Path]) -> None:
        self.layers = list(reversed(list(layer_dirs)))  # top first

    def _entry(self, rel: str) -> Path | None:
        """The host path of the top-most entry for `rel` (no symlink following), or None."""
        if rel in ("", "."):
            return self.layers[-1] if self.layers else None
        parts = rel.split("/")
        for layer in self.layers:
            p = layer / rel
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                # a whiteout or opaque dir of a parent in this layer hides lower layers
                if self._hidden_below(layer, parts):
                    return None
                continue
            if whiteout.is_whiteout_stat(st):
                return None
            return p
        return None

    def _hidden_below(self, layer: Path, parts: list[str]) -> bool:
        for i in range(1, len(parts)):
            p = layer.joinpath(*parts[:i])
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                return False
            if whiteout.is_whiteout_stat(st) or not stat.S_ISDIR(st.st_mode):
                return True
            if whiteout.is_opaque(p):
                return True
        return False

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """`path` with every symlink resolved inside the image root (an absolute link target
        is relative to the image root, `..` stops at the root); returns a clean relative path
        (may not exist)."""
        todo = [c for c in path.split("/") if c not in ("", ".")]
        done: list[str] = []
        hops = 0
        while todo:
            comp = todo.pop(0)
            if comp == "..":
                if done:
                    done.pop()
                continue
            cand = "/".join(done + [comp])
            entry = self._entry(cand)
            if entry is not None and (todo or follow_last) and os.path.islink(entry):
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise OSError(f"too many levels of symbolic links at /{cand}")
                target = os.readlink(entry)
                if target.startswith("/"):
                    done = []
                todo = [c for c in target.split("/") if c not in ("", ".")] + todo
                continue
            done.append(comp)
        return "/".join(done)

    def lookup(self, path: str, *, follow_last: bool = True) -> Path | None:
        """The host path holding `path` of the image (symlinks resolved in the image)."""
        return self._entry(self.resolve(path, follow_last=follow_last))

    def lstat(self, rel: str) -> os.stat_result | None:
        entry = self._entry(rel)
        return os.lstat(entry) if entry is not None else None

    def listdir(self, rel: str) -> list[str]:
        """Merged entries of directory `rel` (already resolved), without whiteouts."""
        names: dict[str, bool] = {}  # name -> visible
        parts = [c for c in rel.split("/") if c]
        for layer in self.layers:
            d = layer.joinpath(*parts) if parts else layer
            try:
                st = os.lstat(d)
            except (FileNotFoundError, NotADirectoryError):
                if parts and self._hidden_below(layer, parts):
                    break
                continue
            if whiteout.is_whiteout_stat(st) or not stat.S_ISDIR(st.st_mode):
                break
            for name in os.listdir(d):
                if name not in names:
                    names[name] = not whiteout.is_whiteout_stat(os.lstat(d / name))
            if whiteout.is_opaque(d):
                break
        return sorted(n for n, visible in names.items() if visible)

    def walk(self, rel: str) -> Iterator[tuple[str, Path]]:
        """(relative path, host path) of `rel` and, for a directory, all below it; parents first."""
        entry = self._entry(rel)
        if entry is None:
            return
        yield rel, entry
        if os.path.isdir(entry) and not os.path.islink(entry):
            for name in self.listdir(rel):
                yield from self.walk(f"{rel}/{name}" if rel else name)

    def read_text(self, path: str) -> str | None:
        entry = self.lookup(path)
        if entry is None or not entry.is_file():
            return None
        return entry.read_text(errors="replace")

    def exists(self, path: str) -> bool:
        return self.lookup(path) is not None

    def is_dir(self, path: str) -> bool:
        entry = self.lookup(path)
        return entry is not None and entry.is_dir()


def clean_abs(path: str, workdir: str = "/") -> str:
    """An image path made absolute against `workdir` and normalised; keeps a trailing '/'."""
    trailing = path.endswith("/") or path.endswith("/.")
    p = posixpath.normpath(posixpath.join(workdir or "/", path))
    if p.startswith("//"):
        p = p[1:]
    return p + "/" if trailing and p != "/" else p
