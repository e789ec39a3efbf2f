"""HTTP side of a pull: one `RegistryClient` per (registry, repository).

    ping()                     GET /v2/ : learns how the registry wants us to authenticate
    get_manifest(tag|digest)   GET /v2/<path>/manifests/<ref>, Accept: the four media types
    download_blob(digest, ...) GET /v2/<path>/blobs/<digest> into <tmp>/<digest>.partial,
                               resumed with `Range: bytes=<have>-` after a broken connection,
                               verified (size, sha256) before it is handed over

Every request goes through `_send`, which answers a 401 once (bearer token or basic) and
retries. http is used for localhost/127.0.0.0/8/::1 and for registries listed insecure,
https otherwise. Authorization is never sent across a redirect to another host (aiohttp
drops it), so blob redirects to a CDN work.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.client_exceptions import ClientConnectionError, ClientPayloadError

from runtime.images.reference import DEFAULT_DOMAIN, Reference
from runtime.images.registry_auth import (
    Challenge,
    Credentials,
    fetch_token,
    parse_challenges,
    scope_for,
)
from runtime.images.registry_errors import (
    DigestMismatch,
    ManifestUnknown,
    RegistryError,
    Unauthorized,
    unreachable,
)

MANIFEST_ACCEPT = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DOCKER_HUB_HOST = "registry-1.docker.io"
MAX_MANIFEST = 4 << 20
CHUNK = 1 << 16
ATTEMPTS = 5  # tries per blob / manifest when the connection breaks
RETRY_DELAY = 0.5  # seconds, times the attempt number
_NET_ERRORS = (ClientConnectionError, ClientPayloadError, asyncio.TimeoutError)
ByteProgress = Callable[[int, int | None], None]  # (bytes done, total or None)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _host_of(domain: str) -> str:
    if domain.startswith("["):
        return domain[1:].split("]", 1)[0]
    return domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain


def is_insecure(domain: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Plain http? Loopback registries always; others when listed (as `host[:port]` or a CIDR)."""
    host = _host_of(domain)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return True
    for entry in insecure_registries:
        entry = entry.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
        if entry in (domain, host):
            return True
        if ip is not None and "/" in entry:
            with contextlib.suppress(ValueError):
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
    return False


def _registry_errors(body: bytes) -> str:
    """The `errors` of a registry error body, as "CODE: message; ..."; '' if none."""
    try:
        errs = json.loads(body).get("errors") or []
        return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errs)
    except (ValueError, AttributeError, TypeError):
        return ""


class RegistryClient:
    """Talks to one repository of one registry for one pull. Use as `async with`."""

    def __init__(
        self,
        ref: Reference,
        *,
        insecure_registries: Iterable[str] = (),
        credentials: Credentials | None = None,
        session: aiohttp.ClientSession | None = None,
        attempts: int | None = None,
        retry_delay: float | None = None,
    ) -> None:
        self.ref = ref
        self.image = ref.familiar()
        host = DOCKER_HUB_HOST if ref.domain == DEFAULT_DOMAIN else ref.domain
        scheme = "http" if is_insecure(ref.domain, insecure_registries) else "https"
        self.base = f"{scheme}://{host}"
        self.creds = credentials
        self.attempts = max(1, attempts if attempts is not None else ATTEMPTS)
        self.retry_delay = retry_delay if retry_delay is not None else RETRY_DELAY
        self._own_session = session is None
        self._session = session
        self._auth_header: str | None = None
        self._auth_lock = asyncio.Lock()

    async def __aenter__(self) -> RegistryClient:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=60)
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("RegistryClient used outside `async with`")
        return self._session

    # -- requests ---------------------------------------------------------------------------
    async def _authenticate(self, challenges: list[Challenge], used: str | None) -> None:
        async with self._auth_lock:
            if self._auth_header != used:
                return  # another task renewed it while we waited
            bearer = next((c for c in challenges if c.scheme == "bearer"), None)
            basic = next((c for c in challenges if c.scheme == "basic"), None)
            if bearer is not None:
                token = await fetch_token(self.session, bearer, scope_for(self.ref.path),
                                          self.creds, self.image)
                self._auth_header = f"Bearer {token}"
            elif basic is not None and self.creds is not None and self.creds.basic():
                self._auth_header = self.creds.basic()
            else:
                raise self._unauthorized()

    def _unauthorized(self) -> Unauthorized:
        if self.creds is not None:
            how = f"check the credentials for {self.ref.domain} (`docker login {self.ref.domain}`)"
        else:
            how = f"if it is private, log in first (`docker login {self.ref.domain}`)"
        return Unauthorized(
            f"pull access denied for {self.image}: the repository does not exist or needs "
            f"credentials; check the name, and {how}",
            subject=self.image,
        )

    async def _send(self, path: str, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        """GET base+path, authenticating on a 401 once. The caller releases the response."""
        url = self.base + path
        for attempt in range(2):
            h = dict(headers or {})
            used = self._auth_header
            if used:
                h["Authorization"] = used
            try:
                resp = await self.session.get(url, headers=h)
            except aiohttp.ClientConnectorError as e:
                raise unreachable(self.image, f"{self.ref.domain} ({self.base})", e) from e
            if resp.status == 401 and attempt == 0:
                challenges = parse_challenges(resp.headers.get("WWW-Authenticate", ""))
                resp.release()
                await self._authenticate(challenges, used)
                continue
            if resp.status in (401, 403):
                resp.release()
                raise self._unauthorized()
            if resp.status == 429:
                resp.release()
                raise RegistryError(f"cannot pull {self.image}: {self.ref.domain} says too many "
                                    "requests (rate limit): wait, or log in for a higher limit",
                                    subject=self.image)
            return resp
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        """GET /v2/: is this a v2 registry, and is it reachable? Sets up auth if it asks."""
        try:
            resp = await self._send("/v2/")
        except _NET_ERRORS as e:
            raise unreachable(self.image, f"{self.ref.domain} ({self.base})", e) from e
        async with resp:
            if resp.status == 404:
                raise RegistryError(f"cannot pull {self.image}: {self.base} is not a registry "
                                    "(no /v2/ api): check the registry address", subject=self.image)
            if resp.status >= 400:
                raise RegistryError(f"cannot pull {self.image}: {self.base}/v2/ answered "
                                    f"{resp.status}: try again later", subject=self.image)

    # -- manifests --------------------------------------------------------------------------
    async def get_manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest by tag or digest; digest verified."""
        last: BaseException | None = None
        for attempt in range(self.attempts):
            try:
                resp = await self._send(f"/v2/{self.ref.path}/manifests/{reference}",
                                        {"Accept": ", ".join(MANIFEST_ACCEPT)})
                async with resp:
                    body = await resp.content.read(MAX_MANIFEST + 1)
                    if resp.status == 404:
                        raise self._manifest_unknown(reference, body)
                    if resp.status != 200:
                        raise RegistryError(
                            f"cannot pull {self.image}: the registry answered {resp.status} for "
                            f"manifest {reference}: {_registry_errors(body) or 'try again later'}",
                            subject=self.image)
                    media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
                    header_digest = resp.headers.get("Docker-Content-Digest", "")
                break
            except _NET_ERRORS as e:
                last = e
                await asyncio.sleep(self.retry_delay * (attempt + 1))
        else:
            raise unreachable(self.image, f"{self.ref.domain} ({self.base})", last or TimeoutError())
        if len(body) > MAX_MANIFEST:
            raise RegistryError(f"cannot pull {self.image}: manifest {reference} is larger than "
                                f"{MAX_MANIFEST >> 20} MiB", subject=self.image)
        digest = sha256_digest(body)
        expected = reference if reference.startswith("sha256:") else (
            header_digest if header_digest.startswith("sha256:") else digest)
        if digest != expected:
            raise DigestMismatch(f"cannot pull {self.image}: manifest {reference} has digest "
                                 f"{digest}, expected {expected}: the registry sent corrupt data",
                                 subject=self.image)
        return body, media_type, digest

    def _manifest_unknown(self, reference: str, body: bytes) -> ManifestUnknown:
        what = f"digest {reference}" if reference.startswith("sha256:") else f"tag {reference!r}"
        detail = _registry_errors(body) or "manifest unknown"
        return ManifestUnknown(
            f"image {self.image} not found: {self.ref.domain} has no {what} in repository "
            f"{self.ref.path} ({detail}); check the name and tag",
            subject=self.image,
        )

    # -- blobs ------------------------------------------------------------------------------
    async def download_blob(
        self,
        digest: str,
        size: int | None,
        partial: Path,
        progress: ByteProgress | None = None,
    ) -> Path:
        """Download a blob to `partial` (resuming what is there); verified; returns `partial`.

        Broken connections are retried with a Range request for the rest. A blob whose sha256
        is not `digest` is deleted; if it came from a resumed download it is fetched once more
        from scratch, otherwise DigestMismatch.
        """
        if not digest.startswith("sha256:"):
            raise RegistryError(f"cannot pull {self.image}: unsupported digest {digest} "
                                "(only sha256)", subject=self.image)
        partial.parent.mkdir(parents=True, exist_ok=True)
        fresh_retry_used = False
        last: BaseException | None = None
        for attempt in range(self.attempts):
            offset = partial.stat().st_size if partial.exists() else 0
            if size is not None and offset > size:
                partial.unlink()
                offset = 0
            sha = await asyncio.to_thread(_hash_file, partial, offset)
            started_at = offset
            try:
                if size is None or offset < size:
                    offset, sha = await self._fetch_into(digest, partial, offset, sha, size,
                                                         progress)
            except _NET_ERRORS as e:
                last = e
                await asyncio.sleep(self.retry_delay * (attempt + 1))
                continue
            if size is not None and offset < size:
                last = aiohttp.ClientPayloadError(f"connection closed after {offset} of {size} bytes")
                continue
            got = "sha256:" + sha.hexdigest()
            if got == digest and (size is None or offset == size):
                return partial
            partial.unlink(missing_ok=True)
            if started_at > 0 and not fresh_retry_used:
                fresh_retry_used = True  # the old partial may have been the bad part
                continue
            raise DigestMismatch(
                f"cannot pull {self.image}: blob {digest} downloaded with digest {got} "
                f"({offset} bytes, expected {size if size is not None else '?'}): the registry "
                "sent corrupt data; the download was discarded, try the pull again",
                subject=self.image)
        raise RegistryError(
            f"cannot pull {self.image}: downloading blob {digest[:19]} failed {self.attempts} times "
            f"({last}); run the pull again: it resumes where it stopped", subject=self.image)

    async def _fetch_into(
        self,
        digest: str,
        partial: Path,
        offset: int,
        sha: Any,
        size: int | None,
        progress: ByteProgress | None,
    ) -> tuple[int, Any]:
        """One GET of the blob, appended at `offset`; returns (bytes now in `partial`, their
        sha256 object). `sha` holds the hash of the first `offset` bytes on entry.
        """
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = await self._send(f"/v2/{self.ref.path}/blobs/{digest}", headers)
        async with resp:
            if resp.status == 206 and offset:
                start = resp.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
                if start != str(offset):
                    raise aiohttp.ClientPayloadError(f"bad Content-Range {start!r} for {offset}")
            elif resp.status == 200:
                if offset:  # the registry ignored Range: start over
                    offset = 0
                    sha = hashlib.sha256()
            elif resp.status == 416:  # we asked past its end: our partial is bad
                partial.unlink(missing_ok=True)
                raise aiohttp.ClientPayloadError("range not satisfiable: restarting")
            elif resp.status == 404:
                body = await resp.content.read(1 << 16)
                raise ManifestUnknown(
                    f"cannot pull {self.image}: blob {digest} is missing on {self.ref.domain} "
                    f"({_registry_errors(body) or 'blob unknown'}): the image is incomplete "
                    "on the registry, push it again", subject=self.image)
            else:
                body = await resp.content.read(1 << 16)
                raise RegistryError(
                    f"cannot pull {self.image}: the registry answered {resp.status} for blob "
                    f"{digest[:19]}: {_registry_errors(body) or 'try again later'}",
                    subject=self.image)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if offset else os.O_TRUNC),
                         0o600)
            with os.fdopen(fd, "ab" if offset else "wb") as f:
                if progress:
                    progress(offset, size)
                async for chunk in resp.content.iter_chunked(CHUNK):
                    f.write(chunk)
                    sha.update(chunk)
                    offset += len(chunk)
                    if size is not None and offset > size:
                        partial.unlink(missing_ok=True)
                        raise DigestMismatch(
                            f"cannot pull {self.image}: blob {digest} is longer than the "
                            f"{size} bytes its descriptor says: the registry sent corrupt "
                            "data; try the pull again", subject=self.image)
                    if progress:
                        progress(offset, size)
        return offset, sha


def _hash_file(path: Path, length: int) -> Any:
    sha = hashlib.sha256()
    if length:
        with open(path, "rb") as f:
            left = length
            while left and (chunk := f.read(min(left, 1 << 20))):
                sha.update(chunk)
                left -= len(chunk)
    return sha
