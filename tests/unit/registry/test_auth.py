"""Authentication: bearer tokens (anonymous and with credentials), basic, docker config."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from runtime.images.registry import pull
from runtime.images.registry_auth import Credentials, credentials_for, parse_challenges
from runtime.images.registry_client import is_insecure
from runtime.images.registry_errors import Unauthorized, unreachable
from runtime.images.store import ImageStore
from tests.unit.registry.fake_registry import FakeRegistry, make_layer


def _write_config(path: Path, domain: str, user: str, pw: str) -> Path:
    auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
    path.write_text(json.dumps({"auths": {f"http://{domain}/v2/": {"auth": auth}}}))
    return path


async def test_anonymous_token_flow(registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    registry.auth = "token"
    registry.push_image("test/app", "1", [make_layer({"a": b"a"})])

    img = await pull(store, f"{domain}/test/app:1")

    assert img.tags == (f"{domain}/test/app:1",)
    tokens = registry.token_requests()
    assert tokens and "service=fake-registry" in tokens[0][0]
    assert "scope=repository:test/app:pull" in tokens[0][0]
    assert "Authorization" not in tokens[0][1]  # anonymous
    blob_auth = {h.get("Authorization") for _, h in registry.blob_gets()}
    assert blob_auth and all(a and a.startswith("Bearer tok-") for a in blob_auth)
    assert len(tokens) == 1  # the token is reused for every request


async def test_private_repo_needs_credentials(
        registry: FakeRegistry, domain: str, store: ImageStore, tmp_path: Path) -> None:
    registry.auth = "token"
    registry.private.add("test/secret")
    registry.push_image("test/secret", "1", [make_layer({"a": b"a"})])

    with pytest.raises(Unauthorized) as e:
        await pull(store, f"{domain}/test/secret:1")
    msg = str(e.value)
    assert msg.startswith(f"pull access denied for {domain}/test/secret:1")
    assert f"docker login {domain}" in msg

    cfg = _write_config(tmp_path / "config.json", domain, "alice", "secret")
    img = await pull(store, f"{domain}/test/secret:1", docker_config=cfg)
    assert img.tags == (f"{domain}/test/secret:1",)
    assert registry.token_requests()[-1][1]["Authorization"].startswith("Basic ")


async def test_docker_config_from_env(
        registry: FakeRegistry, domain: str, store: ImageStore, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    registry.auth = "token"
    registry.private.add("test/secret")
    registry.push_image("test/secret", "1", [make_layer({"a": b"a"})])
    (tmp_path / "env").mkdir()
    _write_config(tmp_path / "env" / "config.json", domain, "alice", "secret")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "env"))

    assert (await pull(store, f"{domain}/test/secret:1")).layers


async def test_wrong_credentials(registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    registry.auth = "token"
    registry.push_image("test/app", "1", [make_layer({"a": b"a"})])
    with pytest.raises(Unauthorized, match="refused access .*run `docker login` again"):
        await pull(store, f"{domain}/test/app:1", auth={"username": "alice", "password": "nope"})


async def test_basic_auth(registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    registry.auth = "basic"
    registry.push_image("test/app", "1", [make_layer({"a": b"a"})])

    with pytest.raises(Unauthorized, match="pull access denied"):
        await pull(store, f"{domain}/test/app:1")

    img = await pull(store, f"{domain}/test/app:1", auth={"username": "alice", "password": "secret"})
    assert img.layers
    assert not registry.token_requests()

    with pytest.raises(Unauthorized, match="check the credentials"):
        await pull(store, f"{domain}/test/app:1", auth={"username": "alice", "password": "bad"})


def test_parse_challenges() -> None:
    [c] = parse_challenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                           'scope="repository:library/busybox:pull"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/busybox:pull"}
    a, b = parse_challenges('Bearer realm="a,b", error="insufficient_scope", Basic realm=x')
    assert (a.scheme, a.params) == ("bearer", {"realm": "a,b", "error": "insufficient_scope"})
    assert (b.scheme, b.params) == ("basic", {"realm": "x"})
    assert parse_challenges("") == []


def test_credentials_for(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw:with:colons").decode()},
        "reg.example.com:5000": {"username": "u", "password": "p"},
        "tok.example.com": {"identitytoken": "refresh"},
    }}))
    assert credentials_for("docker.io", cfg) == Credentials("hub", "pw:with:colons")
    assert credentials_for("reg.example.com:5000", cfg) == Credentials("u", "p")
    assert credentials_for("tok.example.com", cfg) == Credentials(identity_token="refresh")
    assert credentials_for("other.example.com", cfg) is None
    assert credentials_for("docker.io", tmp_path / "missing.json") is None
    cfg.write_text("not json")
    assert credentials_for("docker.io", cfg) is None


def test_insecure_registries() -> None:
    assert is_insecure("localhost:5000") and is_insecure("127.0.0.1:5000") and is_insecure("[::1]:5000")
    assert not is_insecure("docker.io") and not is_insecure("reg.example.com:5000")
    assert is_insecure("reg.example.com:5000", ["reg.example.com:5000"])
    assert is_insecure("reg.example.com:5000", ["http://reg.example.com"])
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"])
    assert not is_insecure("192.168.1.1:5000", ["10.0.0.0/8"])


def test_unreachable_messages() -> None:
    import socket

    dns = unreachable("busybox:latest", "docker.io", socket.gaierror(-3, "Temporary failure in name resolution"))
    assert "busybox:latest" in str(dns) and "does not resolve (no network" in str(dns)
    net = unreachable("busybox:latest", "docker.io", OSError(101, "Network is unreachable"))
    assert "no network here" in str(net)
    assert "composer image load" in str(net)
