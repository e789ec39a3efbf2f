"""Which develop.watch rule a changed host path matches, and where it goes in the container.

As Compose's `watchRule.Matches` (pkg/compose/watch.go): the path must be the rule's path or
below it, match `include` when given, and match none of the ignores: the rule's `ignore`
patterns (relative to the rule's path), the service's `.dockerignore` (relative to its build
context; `<Dockerfile>.dockerignore` first), editors' temporary files (Compose's ephemeral
list: vim, emacs, JetBrains, kate, go) and `.git` directories. Patterns have .dockerignore
syntax (`*`, `**`, `?`, `[...]`, `!` to re-include; a pattern naming a directory covers what
is below it). The container path is the rule's `target` plus the path relative to the rule's.
Compose anchors its `.git/` pattern at the filesystem root, so it never matches a project's
`.git`; we ignore any `.git` directory, which is what that pattern is there for.
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from composer.spec.hooks import WatchRule
from composer.spec.service import ServiceSpec
from runtime.images.build.context import IgnoreMatcher, read_dockerignore

EPHEMERAL = (
    "**/*___jb_old___", "**/*___jb_tmp___", "**/.idea/**",  # JetBrains
    "**/.#*", "**/#*#",  # emacs
    "**/4913", "**/*~", "**/.*.swp", "**/.*.swx", "**/.*.swo", "**/.*.swn",  # vim
    "**/.*.kate-swp",  # kate
    "**/*-go-tmp-umask",  # go
)
_EPHEMERAL = IgnoreMatcher(list(EPHEMERAL))


@dataclass(frozen=True)
class Match:
    rule: Rule
    host: str  # the changed path on the host
    container: str | None  # where it goes in the container (None: rebuild/restart only)


class Rule:
    """One develop.watch entry of one service, with its matchers ready."""

    def __init__(self, service: ServiceSpec, index: int, spec: WatchRule) -> None:
        self.service = service.name
        self.index = index
        self.spec = spec
        self.include = IgnoreMatcher(list(spec.include)) if spec.include else None
        self.ignore = IgnoreMatcher(list(spec.ignore))
        self.context: str | None = None
        self.dockerignore: IgnoreMatcher | None = None
        build = service.build
        if build is not None and "://" not in build.context:
            self.context = os.path.normpath(build.context)
            dockerfile = Path(build.dockerfile) if build.dockerfile else Path("Dockerfile")
            if not dockerfile.is_absolute():
                dockerfile = Path(self.context) / dockerfile
            self.dockerignore = read_dockerignore(Path(self.context), dockerfile)

    @property
    def path(self) -> str:
        return self.spec.path

    def covers(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")

    def _rel(self, path: str) -> str:
        return os.path.relpath(path, self.path)

    def ignored(self, path: str) -> bool:
        """Ignored by this rule (whatever `include` says)."""
        rel = self._rel(path)
        if rel != "." and self.ignore.excluded(rel):
            return True
        if self.dockerignore is not None and self.context is not None and path.startswith(self.context + "/"):
            if self.dockerignore.excluded(os.path.relpath(path, self.context)):
                return True
        parts = path.strip("/").split("/")
        return ".git" in parts or _EPHEMERAL.excluded("/".join(parts))

    def accepts(self, path: str) -> bool:
        if not self.covers(path) or self.ignored(path):
            return False
        if self.include is None:
            return True
        rel = self._rel(path)
        return rel != "." and self.include.excluded(rel)

    def match(self, path: str) -> Match | None:
        if not self.accepts(path):
            return None
        target = self.spec.target
        if target is None:
            return Match(self, path, None)
        rel = self._rel(path)
        return Match(self, path, target if rel == "." else posixpath.join(target, rel.replace(os.sep, "/")))

    def skips_tree(self, path: str) -> bool:
        """Nothing below `path` can match: it is ignored by a matcher without `!` patterns
        (then it need not be watched at all)."""
        if not self.covers(path) or path == self.path:
            return False
        rel = self._rel(path)
        if self.ignore.excluded(rel) and not self.ignore.has_exclusions:
            return True
        if ".git" in path.strip("/").split("/"):
            return True
        if self.dockerignore is not None and self.context is not None and path.startswith(self.context + "/"):
            return (self.dockerignore.excluded(os.path.relpath(path, self.context))
                    and not self.dockerignore.has_exclusions)
        return False


def bind_mounted(path: str, service: ServiceSpec) -> str | None:
    """The source of a bind mount of `service` that holds `path` (a sync there is pointless:
    Compose skips such rules with a warning)."""
    for m in service.volumes:
        if m.type == "bind" and m.source:
            src = os.path.normpath(m.source)
            if path == src or path.startswith(src.rstrip("/") + "/"):
                return src
    return None
