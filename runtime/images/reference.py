"""Image references, `[domain/]path[:tag][@digest]`, with Docker's grammar and defaults.

    busybox                      -> docker.io/library/busybox:latest  (familiar: busybox:latest)
    me/app:1                     -> docker.io/me/app:1                (familiar: me/app:1)
    localhost:5000/a/b:t         -> localhost:5000/a/b:t
    busybox@sha256:<64 hex>      -> docker.io/library/busybox@sha256:<64 hex> (no default tag)

The first component is a registry domain when it contains '.' or ':' or is `localhost`
(as distribution/reference). Repository paths must be lowercase.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _bad(ref: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid image reference {ref!r}: {why}", subject=ref)


@dataclass(frozen=True)
class Reference:
    domain: str  # docker.io, localhost:5000, ...
    path: str  # library/busybox, me/app, a/b
    tag: str | None = None
    digest: str | None = None  # sha256:...

    @classmethod
    def parse(cls, ref: str, default_tag: str | None = DEFAULT_TAG) -> Reference:
        """Parse and normalise; `default_tag` is added when neither tag nor digest is given."""
        if not ref or ref != ref.strip():
            raise _bad(ref, "it is empty or has surrounding spaces")
        if _HEX64.match(ref):
            raise _bad(ref, "a 64-hex string is an image id, not a name; use sha256:<id>")
        rest, digest = ref, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST_RE.match(digest):
                raise _bad(ref, f"bad digest {digest!r}, expected algorithm:hex (sha256:<64 hex>)")
            algo, hexpart = digest.split(":", 1)
            if algo == "sha256" and not _HEX64.match(hexpart):
                raise _bad(ref, "sha256 digests have 64 lowercase hex digits")
        tag = None
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
            if not _TAG_RE.match(tag):
                raise _bad(ref, f"bad tag {tag!r}: use letters, digits, '_', '.', '-' (max 128)")
        if not rest:
            raise _bad(ref, "the repository name is empty")
        domain, path = _split_domain(rest)
        if domain and not _DOMAIN_RE.match(domain):
            raise _bad(ref, f"bad registry domain {domain!r}")
        if not _PATH_RE.match(path):
            if path.lower() != path and _PATH_RE.match(path.lower()):
                raise _bad(ref, "repository names must be lowercase")
            raise _bad(ref, "use lowercase letters, digits and separators ('.', '_', '-', '/')")
        domain = domain or DEFAULT_DOMAIN
        if domain == LEGACY_DOMAIN:
            domain = DEFAULT_DOMAIN
        if domain == DEFAULT_DOMAIN and "/" not in path:
            path = OFFICIAL_PREFIX + path
        if len(domain) + 1 + len(path) > NAME_MAX:
            raise _bad(ref, f"the name is longer than {NAME_MAX} characters")
        if tag is None and digest is None:
            tag = default_tag
        return cls(domain=domain, path=path, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        """Normalised repository name: docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Short repository name as Docker prints it: busybox, me/app, localhost:5000/a."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path[len(OFFICIAL_PREFIX):] if self.path.startswith(OFFICIAL_PREFIX) else self.path
        return self.name

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar(self) -> str:
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)


def _split_domain(rest: str) -> tuple[str, str]:
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        return first, remainder
    return "", rest


def normalize(ref: str) -> str:
    """`busybox` -> `docker.io/library/busybox:latest`."""
    return str(Reference.parse(ref))


def familiar(ref: str) -> str:
    """`docker.io/library/busybox:latest` -> `busybox:latest`."""
    return Reference.parse(ref).familiar()
