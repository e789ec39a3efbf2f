"""An in-process registry (aiohttp web app) speaking enough of the distribution API v2.

Auth modes: "none", "token" (Bearer, realm /token on the same server) and "basic".
Fault injection: `disconnect_after[digest] = n` cuts the connection after n bytes (once per
entry in the list), `corrupt` serves other bytes for a blob, `ignore_range` answers 200 to a
Range request. Every request is recorded in `requests`.
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from runtime.images.config import host_arch

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = 0
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class LayerBlob:
    tar: bytes  # uncompressed: sha256 = diff_id
    blob: bytes  # as served
    media_type: str

    @property
    def diff_id(self) -> str:
        return sha(self.tar)

    @property
    def digest(self) -> str:
        return sha(self.blob)


def make_layer(files: dict[str, bytes], compression: str = "gzip") -> LayerBlob:
    tar = make_tar(files)
    if compression == "gzip":
        return LayerBlob(tar, gzip.compress(tar, mtime=0), DOCKER_LAYER)
    if compression == "zstd":
        import zstandard

        return LayerBlob(tar, zstandard.ZstdCompressor().compress(tar), OCI_LAYER_ZSTD)
    return LayerBlob(tar, tar, "application/vnd.oci.image.layer.v1.tar")


@dataclass
class FakeRegistry:
    auth: str = "none"  # none | token | basic
    users: dict[str, str] = field(default_factory=lambda: {"alice": "secret"})
    private: set[str] = field(default_factory=set)  # repos only a user may pull
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    disconnect_after: dict[str, list[int]] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)
    ignore_range: bool = False
    blob_delay: float = 0.0
    wrong_content_digest: bool = False
    active_blob_gets: int = 0
    max_active_blob_gets: int = 0
    tokens: dict[str, str | None] = field(default_factory=dict)  # token -> user
    server: TestServer | None = None

    # -- content ----------------------------------------------------------------------------
    def add_blob(self, data: bytes) -> str:
        d = sha(data)
        self.blobs[d] = data
        return d

    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        d = sha(body)
        self.manifests[(repo, ref)] = (body, media_type)
        self.manifests[(repo, d)] = (body, media_type)
        return d

    def push_image(
        self,
        repo: str,
        tag: str | None,
        layers: list[LayerBlob],
        *,
        arch: str | None = None,
        oci: bool = False,
        config_media_type: str | None = None,
        diff_ids: list[str] | None = None,
        cmd: tuple[str, ...] = ("sh",),
    ) -> str:
        config = json.dumps({
            "architecture": arch or host_arch(), "os": "linux",
            "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids or [ly.diff_id for ly in layers]},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
        }, sort_keys=True).encode()
        cdigest = self.add_blob(config)
        for ly in layers:
            self.add_blob(ly.blob)
        mt = OCI_MANIFEST if oci else DOCKER_MANIFEST
        manifest = {
            "schemaVersion": 2, "mediaType": mt,
            "config": {"mediaType": config_media_type or (OCI_CONFIG if oci else DOCKER_CONFIG),
                       "digest": cdigest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP if oci and ly.media_type == DOCKER_LAYER
                        else ly.media_type, "digest": ly.digest, "size": len(ly.blob)}
                       for ly in layers],
        }
        body = json.dumps(manifest, indent=3).encode()
        d = self.put_manifest(repo, tag or sha(body), body, mt)
        return d

    def push_index(self, repo: str, tag: str, entries: list[tuple[dict[str, str], str]],
                   oci: bool = False) -> str:
        mt = OCI_INDEX if oci else DOCKER_LIST
        index = {"schemaVersion": 2, "mediaType": mt, "manifests": [
            {"mediaType": self.manifests[(repo, d)][1], "digest": d,
             "size": len(self.manifests[(repo, d)][0]), "platform": plat}
            for plat, d in entries]}
        return self.put_manifest(repo, tag, json.dumps(index).encode(), mt)

    def blob_gets(self) -> list[tuple[str, dict[str, str]]]:
        return [r for r in self.requests if "/blobs/" in r[0]]

    # -- http -------------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/v2/", self._ping)
        app.router.add_get("/token", self._token)
        app.router.add_get(r"/v2/{name:.+}/manifests/{ref}", self._manifest)
        app.router.add_get(r"/v2/{name:.+}/blobs/{digest}", self._blob)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return f"127.0.0.1:{self.server.port}"

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def _record(self, request: web.Request) -> None:
        keep = {k: v for k, v in request.headers.items()
                if k in ("Authorization", "Range", "Accept")}
        self.requests.append((request.path_qs, keep))

    def _user_of(self, request: web.Request) -> tuple[bool, str | None]:
        """(authenticated at all, user name or None for anonymous)."""
        h = request.headers.get("Authorization", "")
        if self.auth == "none":
            return True, None
        if self.auth == "basic" and h.startswith("Basic "):
            user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
            return (self.users.get(user) == pw), user
        if self.auth == "token" and h.startswith("Bearer "):
            tok = h[7:]
            if tok in self.tokens:
                return True, self.tokens[tok]
        return False, None

    def _challenge(self, request: web.Request, repo: str | None, error: str = "") -> web.Response:
        if self.auth == "basic":
            header = 'Basic realm="fake"'
        else:
            header = f'Bearer realm="http://{request.host}/token",service="fake-registry"'
            if repo:
                header += f',scope="repository:{repo}:pull"'
            if error:
                header += f',error="{error}"'
        return web.json_response(
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            status=401, headers={"WWW-Authenticate": header})

    def _allowed(self, request: web.Request, repo: str) -> web.Response | None:
        ok, user = self._user_of(request)
        if not ok:
            return self._challenge(request, repo)
        if repo in self.private and user is None:
            return self._challenge(request, repo, "insufficient_scope")
        return None

    async def _ping(self, request: web.Request) -> web.Response:
        self._record(request)
        ok, _ = self._user_of(request)
        if not ok:
            return self._challenge(request, None)
        return web.json_response({})

    async def _token(self, request: web.Request) -> web.Response:
        self._record(request)
        user = None
        h = request.headers.get("Authorization", "")
        if h.startswith("Basic "):
            user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
            if self.users.get(user) != pw:
                return web.json_response({"details": "incorrect username or password"}, status=401)
        tok = f"tok-{len(self.tokens)}"
        self.tokens[tok] = user
        return web.json_response({"token": tok, "expires_in": 300})

    async def _manifest(self, request: web.Request) -> web.Response:
        self._record(request)
        repo, ref = request.match_info["name"], request.match_info["ref"]
        denied = self._allowed(request, repo)
        if denied is not None:
            return denied
        hit = self.manifests.get((repo, ref))
        if hit is None:
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN",
                                                  "message": "manifest unknown"}]}, status=404)
        body, mt = hit
        digest = "sha256:" + "0" * 64 if self.wrong_content_digest else sha(body)
        return web.Response(body=body, headers={"Content-Type": mt,
                                                "Docker-Content-Digest": digest})

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        repo, digest = request.match_info["name"], request.match_info["digest"]
        denied = self._allowed(request, repo)
        if denied is not None:
            return denied
        data = self.blobs.get(digest)
        if data is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN",
                                                  "message": "blob unknown"}]}, status=404)
        if digest in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = request.headers.get("Range", "")
        if rng and not self.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                return web.Response(status=416)
        body = data[start:]
        headers = {"Content-Length": str(len(body)), "Content-Type": "application/octet-stream"}
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.active_blob_gets += 1
        self.max_active_blob_gets = max(self.max_active_blob_gets, self.active_blob_gets)
        try:
            if self.blob_delay:
                await asyncio.sleep(self.blob_delay)
            resp = web.StreamResponse(status=status, headers=headers)
            await resp.prepare(request)
            cuts = self.disconnect_after.get(digest)
            if cuts:
                n = cuts.pop(0)
                await resp.write(body[:n])
                await asyncio.sleep(0.05)
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(body)
            await resp.write_eof()
            return resp
        finally:
            self.active_blob_gets -= 1

    def token_requests(self) -> list[tuple[str, dict[str, str]]]:
        return [r for r in self.requests if r[0].startswith("/token")]


def config_of(reg: FakeRegistry, repo: str, ref: str) -> dict[str, Any]:
    body, _ = reg.manifests[(repo, ref)]
    return json.loads(reg.blobs[json.loads(body)["config"]["digest"]])
