"""Every EngineAPI method through Client -> socket -> daemon -> fake engine and back."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from runtime.api import BuildRequest, ContainerInfo, EngineAPI, ExecResult, ImageInfo, Stats
from runtime.client import Client
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.types import (
    ContainerSpec,
    Healthcheck,
    Mount,
    NetworkAttachment,
    NetworkSpec,
    PortBinding,
    Resources,
    VolumeSpec,
)
from tests.unit.daemon.fake_engine import FakeEngine

LABELS = {"com.docker.compose.project": "demo", "com.docker.compose.service": "web"}


def full_spec(name: str = "demo-web-1") -> ContainerSpec:
    return ContainerSpec(
        name=name,
        image="busybox:latest",
        command=("sh", "-c", "echo hi"),
        env={"A": "1", "EMPTY": ""},
        labels=LABELS,
        mounts=(
            Mount("bind", "/data", "/srv/data", read_only=True),
            Mount("tmpfs", "/tmp", tmpfs_size=1 << 20),
        ),
        resources=Resources(memory=64 << 20, cpu_quota=50_000),
        networks=(NetworkAttachment("demo_default", aliases=("web",)),),
        ports=(PortBinding(80, host_port=8080),),
        extra_hosts=(("db", "10.0.0.2"),),
        healthcheck=Healthcheck(("CMD", "true"), interval=1.5),
        restart="on-failure:3",
    )


def test_client_implements_every_engine_api_method() -> None:
    wanted = {
        n for n, _ in inspect.getmembers(EngineAPI, inspect.isfunction) if not n.startswith("_")
    }
    have = {n for n, _ in inspect.getmembers(Client, inspect.isfunction)}
    assert wanted <= have
    for name in wanted:  # same parameters, same defaults
        assert list(inspect.signature(getattr(Client, name)).parameters) == list(
            inspect.signature(getattr(EngineAPI, name)).parameters
        ), name


async def test_ping_and_version(client: Client) -> None:
    assert await client.ping() is True
    v = await client.version()
    assert v["api_version"] == "1" and v["engine"] == "FakeEngine"


async def test_create_round_trips_the_whole_spec(client: Client, engine: FakeEngine) -> None:
    spec = full_spec()
    info = await client.create_container(spec)
    assert isinstance(info, ContainerInfo)
    assert info.spec == spec  # tuples, nested dataclasses, dicts survive
    assert engine.containers[info.id].info.spec == spec
    assert await client.inspect_container("demo-web-1") == info
    assert await client.inspect_container(info.id[:12]) == info


async def test_container_lifecycle(client: Client, engine: FakeEngine) -> None:
    info = await client.create_container(full_spec())
    started = await client.start_container(info.id)
    assert started.state == "running" and started.pid > 0
    await client.pause_container(info.name)
    assert (await client.inspect_container(info.name)).state == "paused"
    await client.unpause_container(info.name)
    assert [c.id for c in await client.list_containers()] == [info.id]
    top = await client.top(info.name)
    assert top == [{"PID": str(started.pid), "CMD": "sh -c echo hi"}]
    assert await client.stats(info.name) == Stats(
        memory_usage=1024, memory_limit=2048, cpu_usage_ns=5, pids=1
    )
    stopped = await client.stop_container(info.name, timeout=2.5)
    assert stopped.state == "exited" and stopped.exit_code == 143
    assert await client.list_containers() == []
    assert len(await client.list_containers(all=True)) == 1
    await client.remove_container(info.name)
    assert engine.containers == {}
    with pytest.raises(NotFound, match="no such container: demo-web-1"):
        await client.inspect_container(info.name)


async def test_list_filters_by_labels(client: Client) -> None:
    await client.create_container(full_spec("demo-web-1"))
    await client.create_container(
        ContainerSpec(
            "other-db-1", "busybox:latest", labels={"com.docker.compose.project": "other"}
        )
    )
    got = await client.list_containers(all=True, labels={"com.docker.compose.project": "demo"})
    assert [c.name for c in got] == ["demo-web-1"]
    both = await client.list_containers(
        all=True, labels={"com.docker.compose.project": "demo", "com.docker.compose.service": "db"}
    )
    assert both == []
    assert len(await client.list_containers(all=True)) == 2


async def test_kill_and_wait(client: Client) -> None:
    info = await client.create_container(full_spec())
    await client.start_container(info.id)
    waiter = asyncio.ensure_future(client.wait_container(info.id))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await client.kill_container(info.id, "SIGTERM")
    assert await asyncio.wait_for(waiter, 2) == 143


async def test_wait_returns_exit_code_of_natural_exit(client: Client, engine: FakeEngine) -> None:
    info = await client.create_container(full_spec())
    await client.start_container(info.id)
    waiter = asyncio.ensure_future(client.wait_container(info.name))
    await asyncio.sleep(0.05)
    await engine.exit(info.id, 3)
    assert await asyncio.wait_for(waiter, 2) == 3


async def test_exec_run_passes_user_env_workdir(client: Client, engine: FakeEngine) -> None:
    info = await client.create_container(full_spec())
    await client.start_container(info.id)
    assert await client.exec_run(info.id, ["echo", "a", "b"]) == ExecResult(0, "a b\n")
    res = await client.exec_run(info.id, ["env"], user="www-data", env={"X": "y"}, workdir="/srv")
    assert res.stdout == "X=y\nUSER=www-data\nPWD=/srv\n"
    res = await client.exec_run(info.id, ["env"], privileged=True)  # a hook's privileged: true
    assert res.stdout.endswith("PRIVILEGED=1\n")
    assert (await client.exec_run(info.id, ["false"])).exit_code == 1
    with pytest.raises(InvalidArgument, match="command not found"):
        await client.exec_run(info.id, ["nope"])


async def test_put_archive_streams_a_tar_and_remove_paths_names_what_failed(
        client: Client, engine: FakeEngine) -> None:
    import io
    import tarfile

    info = await client.create_container(full_spec())
    await client.start_container(info.id)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("app/a.txt", b"A" * 70000), ("app/b.txt", b"b")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(raw), 4096):  # streamed in pieces, not one body
            yield raw[i:i + 4096]

    await client.put_archive(info.id, "/", chunks())
    assert engine.containers[info.id].files["/app/a.txt"] == b"A" * 70000
    assert engine.containers[info.id].files["/app/b.txt"] == b"b"
    res = await client.remove_paths(info.id, ["/app/b.txt", "/nope"])
    assert res.written == 1 and res.errors == ("/nope: no such file",)
    with pytest.raises(InvalidArgument, match="absolute paths"):
        await client.remove_paths(info.id, ["rel"])


async def test_remove_running_needs_force(client: Client, engine: FakeEngine) -> None:
    info = await client.create_container(full_spec())
    await client.start_container(info.id)
    with pytest.raises(Conflict, match="is running: stop it first or use force"):
        await client.remove_container(info.id)
    assert info.id in engine.containers
    await client.remove_container(info.id, force=True, volumes=True)
    assert engine.containers == {}


async def test_networks(client: Client) -> None:
    spec = NetworkSpec(
        "demo_default", subnet="10.99.1.0/24", labels={"com.docker.compose.project": "demo"}
    )
    net = await client.create_network(spec)
    assert net.spec == spec and net.subnet == "10.99.1.0/24"
    assert (await client.create_network(spec)).subnet == net.subnet  # again: the same one
    assert [
        n.name for n in await client.list_networks(labels={"com.docker.compose.project": "demo"})
    ] == ["demo_default"]
    assert await client.list_networks(labels={"com.docker.compose.project": "x"}) == []
    await client.remove_network("demo_default")
    with pytest.raises(NotFound):
        await client.remove_network("demo_default")


async def test_volumes(client: Client) -> None:
    vol = await client.create_volume(VolumeSpec("demo_data", labels={"k": "v"}))
    assert vol.mountpoint == "/fake/volumes/demo_data"
    assert [v.name for v in await client.list_volumes(labels={"k": "v"})] == ["demo_data"]
    await client.remove_volume("demo_data", force=True)
    assert await client.list_volumes() == []
    with pytest.raises(NotFound, match="no such volume: demo_data"):
        await client.remove_volume("demo_data")


async def test_images_with_slashes_and_tags(client: Client) -> None:
    images = await client.list_images()
    assert {t for i in images for t in i.tags} == {"busybox:latest", "library/nginx:1.25"}
    img = await client.inspect_image("library/nginx:1.25")
    assert isinstance(img, ImageInfo) and img.id == "sha256:" + "c" * 64
    assert (await client.inspect_image("sha256:" + "b" * 64)).tags == ("busybox:latest",)
    with pytest.raises(NotFound, match="no such image: library/missing:1"):
        await client.inspect_image("library/missing:1")


async def test_remove_image(client: Client, engine: FakeEngine) -> None:
    await client.create_container(ContainerSpec("web-1", "busybox:latest"))
    with pytest.raises(Conflict, match="image busybox:latest is used by container web-1"):
        await client.remove_image("busybox:latest")
    assert await client.remove_image("library/nginx:1.25") == [
        "library/nginx:1.25",
        "sha256:" + "c" * 64,
    ]
    with pytest.raises(NotFound):
        await client.inspect_image("library/nginx:1.25")
    assert await client.remove_image("busybox:latest", force=True) == [
        "busybox:latest",
        "sha256:" + "b" * 64,
    ]


async def test_import_and_load(client: Client) -> None:
    img = await client.import_image("/srv/rootfs.tar", "mybase:1")
    assert img.tags == ("mybase:1",) and img.id.startswith("sha256:")
    assert (await client.inspect_image("mybase:1")) == img
    loaded = await client.load_image("/srv/image.tar")
    assert [i.tags for i in loaded] == [("loaded:1",)]
    with pytest.raises(
        InvalidArgument, match="invalid import path 'rootfs.tar': give an absolute path"
    ):
        await client.import_image("rootfs.tar", "x:1")
    with pytest.raises(InvalidArgument, match="invalid image reference"):
        await client.import_image("/srv/rootfs.tar", "../../x")
    with pytest.raises(InvalidArgument, match="invalid archive path"):
        await client.load_image("image.tar")


async def test_build_streams_progress_then_the_image(client: Client) -> None:
    req = BuildRequest(context="/srv/app", tag="app:dev", build_args={"X": "42"})
    items = [p async for p in client.build_image(req)]
    assert [p.line for p in items[:2]] == [
        "step 1/2 : FROM busybox (context /srv/app)",
        "step 2/2 : RUN echo 42",
    ]
    assert items[-1].image_id.startswith("sha256:") and not items[-1].error
    assert (await client.inspect_image("app:dev")).id == items[-1].image_id
    bad = [p async for p in client.build_image(BuildRequest(context="/srv/app", target="broken"))]
    assert bad[-1].error == "build failed: target broken does not exist"
    with pytest.raises(InvalidArgument, match="invalid build context 'app'"):
        async with client.build_image(BuildRequest(context="app")):
            pass


async def test_pull_streams_progress(client: Client) -> None:
    events = [e async for e in client.pull_image("docker.io/library/alpine:3.19")]
    assert [(e.status, e.current, e.total) for e in events[:2]] == [
        ("downloading", 10, 20),
        ("downloading", 20, 20),
    ]
    assert events[-1].status == "pulled"
    assert (await client.inspect_image("docker.io/library/alpine:3.19")).id == events[-1].image_id
    with pytest.raises(NotFound, match="no such image in the registry: missing:1"):
        async with client.pull_image("missing:1"):
            pass
    with pytest.raises(InvalidArgument, match="invalid image reference"):
        async with client.pull_image("../../etc"):
            pass


async def test_events_since_and_until_through_the_daemon(client: Client, engine: FakeEngine) -> None:
    import time

    t0 = time.time()
    await engine.create_container(ContainerSpec("ev-1", "busybox:latest"))
    t1 = time.time()
    got = [e async for e in client.events(since=t0 - 1, until=t1 + 0.2)]
    assert [(e.action, e.name) for e in got] == [("create", "ev-1")]
    assert [e async for e in client.events(since=t1 + 100, until=t1 + 0.1)] == []
