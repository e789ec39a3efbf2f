"""Registry authentication: challenges, credentials, bearer tokens.

The flow (distribution's token auth spec, as Docker does it):

    GET /v2/<...>                     -> 401  WWW-Authenticate: Bearer realm="R",service="S"
    GET R?service=S&scope=repository:<path>:pull   (Basic user:pass if we have credentials,
                                                    anonymous otherwise)
                                      -> 200  {"token": T} (or "access_token")
    GET /v2/<...>  Authorization: Bearer T

A `Basic` challenge is answered with the credentials directly. Credentials come from the
caller (`auth=`) or from the "auths" of the Docker client config ($DOCKER_CONFIG/config.json,
else ~/.docker/config.json). Credential helpers (credsStore/credHelpers) are not run.
"""
from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from runtime.images.registry_errors import RegistryError, Unauthorized, unreachable

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_TOKEN_RE = re.compile(
    r'[\s,]*(?:(?P<key>[A-Za-z][\w-]*)\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"|[^\s,]*)'
    r"|(?P<scheme>[A-Za-z][\w.-]*))"
)
_MAX_TOKEN_BODY = 1 << 20


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" | "basic" (lowercase)
    params: dict[str, str] = field(default_factory=dict)  # realm, service, scope, error


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate header: `Bearer realm="x",service="y", Basic realm="z"`."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        m = _TOKEN_RE.match(header, pos)
        if m is None or m.end() == pos:
            pos += 1  # stray character: skip it
            continue
        pos = m.end()
        if m.group("key") is not None and out:
            value = m.group("value")
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            out[-1].params[m.group("key").lower()] = value
        elif m.group("scheme") is not None:
            out.append(Challenge(m.group("scheme").lower(), {}))
    return out


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth refresh token (docker login with some registries)
    registry_token: str = ""  # a bearer token to send as is

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Credentials | None:
        """From a config.json "auths" entry or the `auth=` argument of pull()."""
        user, pw = str(d.get("username") or ""), str(d.get("password") or "")
        if d.get("auth") and not user:
            try:
                user, _, pw = base64.b64decode(str(d["auth"])).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise Unauthorized('the "auth" value of the registry credentials is not '
                                   "base64 of user:password: run `docker login` again") from None
        creds = cls(user, pw, str(d.get("identitytoken") or ""), str(d.get("registrytoken") or ""))
        return creds if (creds.username or creds.identity_token or creds.registry_token) else None

    def basic(self) -> str | None:
        """The `Authorization: Basic ...` header value, if there is a user name."""
        if not self.username:
            return None
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _host_key(key: str) -> str:
    key = re.sub(r"^[a-z]+://", "", key.strip().lower()).split("/", 1)[0]
    return DOCKER_HUB if key in _HUB_ALIASES else key


def credentials_for(domain: str, config: Path | None = None) -> Credentials | None:
    """Credentials stored for `domain` in the Docker client config's "auths", if any."""
    path = config if config is not None else docker_config_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    want = _host_key(domain)
    for key, entry in auths.items():
        if _host_key(key) == want and isinstance(entry, dict):
            return Credentials.from_dict(entry)
    return None


def scope_for(path: str) -> str:
    return f"repository:{path}:pull"


async def fetch_token(
    session: aiohttp.ClientSession,
    challenge: Challenge,
    scope: str,
    creds: Credentials | None,
    image: str,
) -> str:
    """Ask the challenge's realm for a bearer token for `scope`."""
    realm = challenge.params.get("realm")
    if not realm:
        raise RegistryError(f"cannot pull {image}: the registry asked for a bearer token "
                            "without saying where to get it (no realm)")
    if creds is not None and creds.registry_token:
        return creds.registry_token
    service = challenge.params.get("service", "")
    scopes = [s for s in {scope, challenge.params.get("scope", "")} if s]
    try:
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "service": service, "scope": " ".join(scopes), "client_id": "composer"}
            resp_cm = session.post(realm, data=form)
        else:
            query = [("service", service)] if service else []
            query += [("scope", s) for s in scopes]
            basic = creds.basic() if creds else None
            resp_cm = session.get(realm, params=query,
                                  headers={"Authorization": basic} if basic else None)
        async with resp_cm as resp:
            body = await resp.content.read(_MAX_TOKEN_BODY)
            if resp.status in (401, 403):
                how = ("the stored credentials were refused: run `docker login` again"
                       if creds else "log in first (`docker login`) or pass credentials")
                raise Unauthorized(f"cannot pull {image}: the token service {realm} refused "
                                   f"access ({resp.status}): {how}", subject=image)
            if resp.status != 200:
                raise RegistryError(f"cannot pull {image}: the token service {realm} answered "
                                    f"{resp.status}: try again later", subject=image)
    except aiohttp.ClientError as e:
        raise unreachable(image, realm, e) from e
    try:
        doc = json.loads(body)
        token = doc.get("token") or doc.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not token or not isinstance(token, str):
        raise RegistryError(f"cannot pull {image}: the token service {realm} sent no token",
                            subject=image)
    return token
