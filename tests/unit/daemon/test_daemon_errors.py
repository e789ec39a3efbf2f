"""Malformed requests get 4xx with a JSON message and change nothing; engine errors keep
their class and message across the socket; bugs are a one-line 500."""

from __future__ import annotations

import io
import json
import logging

import aiohttp
import pytest

from runtime import serde
from runtime.client import Client
from runtime.errors import Conflict, EngineError, InvalidArgument, LaunchError, NotFound
from runtime.types import ContainerSpec
from tests.unit.daemon.fake_engine import FakeEngine


async def body_of(resp: aiohttp.ClientResponse) -> dict[str, object]:
    assert resp.content_type == "application/json"
    data = json.loads(await resp.read())
    assert isinstance(data, dict) and isinstance(data["message"], str)
    return data


def spec_dict(**over: object) -> dict[str, object]:
    d = serde.to_dict(ContainerSpec("web-1", "busybox:latest"))
    d.update(over)
    return d


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "request body is not valid json"),
        (b"", "request body is not valid json"),
        (b"[1, 2]", "invalid ContainerSpec: expected an object"),
        (json.dumps(spec_dict(bogus=1)).encode(), "unknown field(s) bogus"),
        (json.dumps({"image": "busybox:latest"}).encode(), "missing field name"),
        (json.dumps(spec_dict(name=5)).encode(), "ContainerSpec.name: expected a string, got int"),
        (
            json.dumps(spec_dict(privileged="yes")).encode(),
            "ContainerSpec.privileged: expected a boolean",
        ),
        (
            json.dumps(spec_dict(command="sh -c x")).encode(),
            "ContainerSpec.command: expected an array",
        ),
        (json.dumps(spec_dict(env={"A": 1})).encode(), "ContainerSpec.env['A']: expected a string"),
        (
            json.dumps(spec_dict(mounts=[{"type": "nfs", "target": "/x"}])).encode(),
            "ContainerSpec.mounts[0].type: 'nfs' is not one of",
        ),
        (
            json.dumps(spec_dict(mounts=[{"type": "bind"}])).encode(),
            "ContainerSpec.mounts[0]: missing field target",
        ),
        (
            json.dumps(spec_dict(resources={"memory": True})).encode(),
            "ContainerSpec.resources.memory: expected an integer",
        ),
        (
            json.dumps(spec_dict(extra_hosts=[["db"]])).encode(),
            "ContainerSpec.extra_hosts[0]: expected 2 items",
        ),
        (json.dumps(spec_dict(name="../../etc")).encode(), "invalid container name '../../etc'"),
        (json.dumps(spec_dict(name="a/b")).encode(), "invalid container name"),
        (json.dumps(spec_dict(image="../../etc/passwd")).encode(), "invalid image reference"),
        (json.dumps(spec_dict(name="x\u0000y")).encode(), "contains a NUL byte"),
    ],
)
async def test_bad_create_bodies_are_400_and_change_nothing(
    raw: aiohttp.ClientSession, engine: FakeEngine, payload: bytes, message: str
) -> None:
    async with raw.post(
        "/containers/create", data=payload, headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        body = await body_of(resp)
    assert message in body["message"]
    assert body["kind"] == "InvalidArgument"
    assert engine.containers == {}


async def test_oversize_body_is_413(raw: aiohttp.ClientSession, engine: FakeEngine) -> None:
    big = json.dumps(spec_dict(env={"X": "a" * (1024 * 1024 + 10)})).encode()
    async with raw.post("/containers/create", data=io.BytesIO(big)) as resp:
        assert resp.status == 413
        assert "request body too large" in (await body_of(resp))["message"]
    assert engine.containers == {}


async def test_oversize_body_via_client_is_a_clear_error(
    client: Client, engine: FakeEngine
) -> None:
    with pytest.raises(
        InvalidArgument, match="request body too large: the limit is 1024 KiB"
    ) as exc:
        await client.create_container(
            ContainerSpec("web-1", "busybox:latest", env={"X": "a" * (2 << 20)})
        )
    assert exc.value.status == 413
    assert engine.containers == {}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/containers/..%2F..%2Fetc/json"),
        ("GET", "/containers/..%2f..%2fetc%2fpasswd/json"),
        ("POST", "/containers/..%2F..%2Fetc/start"),
        ("DELETE", "/containers/..%2F..%2Fetc"),
        ("DELETE", "/volumes/..%2F..%2Fetc"),
        ("DELETE", "/volumes/.."),
        ("DELETE", "/networks/..%2Fx"),
        ("GET", "/images/..%2F..%2Fetc%2Fpasswd/json"),
        ("GET", "/images/library%2F..%2F..%2Fetc/json"),
    ],
)
async def test_path_traversal_in_refs_is_400(
    raw: aiohttp.ClientSession, method: str, path: str
) -> None:
    url = aiohttp.client.URL("http://composerd" + path, encoded=True)
    async with raw.request(method, url) as resp:
        assert resp.status == 400, await resp.text()
        assert (await body_of(resp))["kind"] == "InvalidArgument"


async def test_traversal_names_via_client_are_invalid_argument(client: Client) -> None:
    with pytest.raises(InvalidArgument, match="invalid container reference '../../etc'"):
        await client.inspect_container("../../etc")
    with pytest.raises(InvalidArgument, match="invalid volume name"):
        await client.remove_volume("../../etc")
    with pytest.raises(InvalidArgument, match="invalid image reference"):
        await client.inspect_image("../../etc/passwd")


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/containers?all=maybe", 400, "invalid query parameter all='maybe'"),
        ("GET", "/containers?label=novalue", 400, "invalid label filter 'novalue'"),
        ("POST", "/containers/x/stop?timeout=soon", 400, "expected a number"),
        ("POST", "/containers/x/stop?timeout=-1", 400, "must be >= 0"),
        ("POST", "/containers/x/kill?signal=SIGNOPE", 400, "invalid signal 'SIGNOPE'"),
        ("GET", "/containers/x/logs?tail=-3", 400, "must be >= 0"),
        ("GET", "/events?since=yesterday", 400, "expected epoch seconds"),
        ("GET", "/events?until=1e300", 400, "out of range"),
        ("GET", "/nope", 404, "no such endpoint: GET /nope"),
        ("GET", "/containers/create", 405, "method GET not allowed on /containers/create"),
        ("PUT", "/containers/create", 405, "method PUT not allowed"),
    ],
)
async def test_bad_queries_and_routes(
    raw: aiohttp.ClientSession, method: str, path: str, status: int, message: str
) -> None:
    async with raw.request(method, path) as resp:
        assert resp.status == status
        assert message in (await body_of(resp))["message"]


async def test_unknown_ids_are_404_not_found(client: Client) -> None:
    for call in (
        client.start_container("deadbeef"),
        client.stop_container("deadbeef"),
        client.kill_container("deadbeef"),
        client.wait_container("deadbeef"),
        client.remove_container("deadbeef"),
        client.pause_container("deadbeef"),
        client.exec_run("deadbeef", ["true"]),
        client.top("deadbeef"),
        client.stats("deadbeef"),
    ):
        with pytest.raises(NotFound, match="no such container: deadbeef") as exc:
            await call
        assert exc.value.subject == "deadbeef" and exc.value.status == 404
    with pytest.raises(NotFound):
        async with client.logs("deadbeef"):
            pass


async def test_conflict_keeps_class_message_and_subject(client: Client) -> None:
    await client.create_container(ContainerSpec("web-1", "busybox:latest"))
    with pytest.raises(Conflict) as exc:
        await client.create_container(ContainerSpec("web-1", "busybox:latest"))
    assert (
        str(exc.value) == "container name web-1 is already in use: remove it or pick another name"
    )
    assert exc.value.subject == "web-1"
    with pytest.raises(NotFound, match="no such image: missing:1: pull or build it first"):
        await client.create_container(ContainerSpec("web-2", "missing:1"))


async def test_exec_with_empty_argv_is_400(raw: aiohttp.ClientSession, engine: FakeEngine) -> None:
    info = await engine.create_container(ContainerSpec("web-1", "busybox:latest"))
    await engine.start_container(info.id)
    async with raw.post(f"/containers/{info.id}/exec", json={"argv": []}) as resp:
        assert resp.status == 400
        assert "argv is empty" in (await body_of(resp))["message"]
    async with raw.post(f"/containers/{info.id}/exec", json={"argv": "ls"}) as resp:
        assert resp.status == 400
    assert engine.exec_calls == []


async def test_launch_error_keeps_exit_code(client: Client, engine: FakeEngine) -> None:
    info = await engine.create_container(ContainerSpec("web-1", "busybox:latest"))
    await engine.start_container(info.id)

    def fail(cid: str, argv: list[str]) -> object:
        raise LaunchError(
            "exec failed: /nope: no such file or directory", subject="web-1", exit_code=127
        )

    engine.exec_handler = fail  # type: ignore[assignment]
    with pytest.raises(LaunchError, match="exec failed: /nope") as exc:
        await client.exec_run(info.id, ["/nope"])
    assert exc.value.exit_code == 127 and exc.value.status == 500


async def test_unexpected_exception_is_one_line_500_and_logged(
    client: Client, engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    info = await engine.create_container(ContainerSpec("web-1", "busybox:latest"))
    await engine.start_container(info.id)
    with caplog.at_level(logging.ERROR, logger="composerd"):
        with pytest.raises(EngineError) as exc:
            await client.exec_run(info.id, ["crash"])
    assert str(exc.value) == "internal error in composerd: RuntimeError: fake engine bug"
    assert exc.value.status == 500
    assert any(r.exc_info and "fake engine bug" in str(r.exc_info[1]) for r in caplog.records)
    assert await client.ping()  # the daemon survived
