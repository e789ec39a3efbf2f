"""The engine on the real kernel: lifecycle, errors, volumes, limits, restart of the engine."""
from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest

from runtime.engine import Engine
from runtime.errors import Conflict, LaunchError, NotFound
from runtime.images.config import ImageConfig
from runtime.paths import Paths
from runtime.types import ContainerSpec, Mount, Resources


async def run(engine: Engine, name: str, *cmd: str, **kw: object) -> tuple[int, str]:
    await engine.create_container(ContainerSpec(name=name, image="busybox", command=cmd, **kw))  # type: ignore[arg-type]
    await engine.start_container(name)
    code = await engine.wait_container(name)
    out = "".join([line.data async for line in engine.logs(name)])
    return code, out


async def test_runs_a_command_and_keeps_its_output_and_exit_code(engine: Engine) -> None:
    code, out = await run(engine, "c1", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert code == 3
    assert "out\n" in out and "err\n" in out
    streams = {line.stream async for line in engine.logs("c1")}
    assert streams == {"stdout", "stderr"}
    info = await engine.inspect_container("c1")
    assert info.state == "exited" and info.exit_code == 3 and info.finished_at


async def test_command_not_found_is_127_with_a_clear_message(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(name="nf", image="busybox", command=("nosuchcmd",)))
    with pytest.raises(LaunchError) as e:
        await engine.start_container("nf")
    assert e.value.exit_code == 127
    assert "nosuchcmd" in str(e.value) and "not found" in str(e.value)
    assert (await engine.inspect_container("nf")).exit_code == 127


async def test_missing_image_and_duplicate_name_and_running_remove(engine: Engine) -> None:
    with pytest.raises(NotFound, match="image load"):
        await engine.create_container(ContainerSpec(name="x", image="nosuch:1"))
    await engine.create_container(ContainerSpec(name="dup", image="busybox", command=("sleep", "30")))
    with pytest.raises(Conflict, match="already in use"):
        await engine.create_container(ContainerSpec(name="dup", image="busybox"))
    await engine.start_container("dup")
    with pytest.raises(Conflict, match="stop it first"):
        await engine.remove_container("dup")
    await engine.remove_container("dup", force=True)
    with pytest.raises(NotFound):
        await engine.inspect_container("dup")


async def test_stop_sends_the_stop_signal_then_sigkill_after_the_grace_period(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(
        name="stubborn", image="busybox", command=("sh", "-c", "trap '' TERM; while :; do sleep 1; done"),
        stop_grace_period=1.0))
    await engine.start_container("stubborn")
    t = time.monotonic()
    info = await engine.stop_container("stubborn")
    took = time.monotonic() - t
    assert 0.9 <= took < 5, took
    assert info.state == "exited" and info.exit_code == 137

    await engine.create_container(ContainerSpec(
        name="polite", image="busybox", init=True, command=("sleep", "600")))
    await engine.start_container("polite")
    top = await engine.top("polite")
    assert "docker-init" in top[0]["CMD"]  # tini-static as pid 1 (installed by install-deps)
    t = time.monotonic()
    info = await engine.stop_container("polite", timeout=10)
    assert time.monotonic() - t < 3  # SIGTERM through the init ends it at once
    assert info.exit_code == 143


async def test_a_kill_during_a_stops_grace_period_kills_at_once(engine: Engine) -> None:
    """As Docker: `kill` while `stop` waits out its grace period does not wait for it; the
    stop ends with the kill's exit."""
    await engine.create_container(ContainerSpec(
        name="deaf", image="busybox", command=("sh", "-c", "trap '' TERM; while :; do sleep 1; done"),
        stop_grace_period=60.0))
    await engine.start_container("deaf")
    stop = asyncio.create_task(engine.stop_container("deaf"))
    await asyncio.sleep(0.5)  # the stop signal was sent (and ignored); the grace runs
    assert not stop.done()
    t = time.monotonic()
    await asyncio.wait_for(engine.kill_container("deaf"), 5)
    info = await asyncio.wait_for(stop, 10)
    assert time.monotonic() - t < 10
    assert info.state == "exited" and info.exit_code == 137


async def test_exec_sees_the_same_pid_namespace_and_files(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(
        name="ex", image="busybox", command=("sh", "-c", "echo secret > /tmp/f; exec sleep 600"),
        env={"FOO": "bar"}, init=True))
    await engine.start_container("ex")
    for _ in range(50):
        res = await engine.exec_run("ex", ["cat", "/tmp/f"])
        if res.exit_code == 0:
            break
        await asyncio.sleep(0.05)
    assert res.stdout == "secret\n"
    ps = await engine.exec_run("ex", ["ps", "-o", "pid,args"])
    assert "sleep 600" in ps.stdout
    assert (await engine.exec_run("ex", ["sh", "-c", "echo $FOO"])).stdout == "bar\n"
    assert (await engine.exec_run("ex", ["nosuch"])).exit_code == 127
    # in every hierarchy the command is where the init is (runtime.process.nsexec joins each
    # v1 hierarchy by its `tasks` file): from the container's cgroup namespace, "/" each
    mine = (await engine.exec_run("ex", ["cat", "/proc/self/cgroup"])).stdout.splitlines()
    init = (await engine.exec_run("ex", ["cat", "/proc/1/cgroup"])).stdout.splitlines()
    assert mine == init and len(mine) > 1 and all(line.endswith(":/") for line in mine), mine
    top = await engine.top("ex")
    assert any("sleep 600" in row["CMD"] for row in top)


async def test_remove_leaves_no_directory_cgroup_or_process(engine: Engine) -> None:
    info = await engine.create_container(ContainerSpec(name="gone", image="busybox",
                                                       command=("sleep", "600")))
    await engine.start_container("gone")
    pid = (await engine.inspect_container("gone")).pid
    cg_dirs = engine.cgroups.open(info.id).directories()
    await engine.remove_container("gone", force=True)
    assert not engine.paths.container_dir(info.id).exists()
    assert not any(d.exists() for d in cg_dirs)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_remove_racing_a_start_leaves_nothing(engine: Engine) -> None:
    """`rm -f` while a start is still launching (two terminals, or `down` during `up`):
    the remove waits for the start, then kills what it started; nothing is left (the
    fixture checks cgroups, mounts and processes) and the name is free again."""
    for i in range(5):
        name = f"race-{i}"
        info = await engine.create_container(ContainerSpec(name=name, image="busybox",
                                                           command=("sleep", "600")))
        start = asyncio.create_task(engine.start_container(info.id))
        await asyncio.sleep(0.002 * i)  # from before the launch to its middle
        await engine.remove_container(info.id, force=True)
        with contextlib.suppress(NotFound):
            await start  # either it ran first (and was killed) or it found the record gone
        with pytest.raises(NotFound):
            await engine.inspect_container(info.id)
        assert not engine.paths.container_dir(info.id).exists()
        assert await engine.list_containers(all=True) == []


async def test_named_volume_is_initialised_from_the_image_and_outlives_the_container(engine: Engine) -> None:
    code, out = await run(engine, "v1", "sh", "-c", "cat /etc/group | head -1; echo data > /etc/new",
                          mounts=(Mount("volume", "/etc", "vol1"),))
    assert code == 0 and out.startswith("root:x:0:")
    await engine.remove_container("v1")
    code, out = await run(engine, "v2", "cat", "/data/new", mounts=(Mount("volume", "/data", "vol1"),))
    assert out == "data\n"
    await engine.remove_container("v2")
    await engine.remove_volume("vol1")
    assert "vol1" not in [v.name for v in await engine.list_volumes()]


async def test_anonymous_volumes_of_the_image_go_with_the_container(engine: Engine) -> None:
    base = engine.images.get("busybox")
    engine.images.put(base.config.with_changes(volumes=("/srv",)), list(base.layers), ["withvol:1"])
    info = await engine.create_container(ContainerSpec(name="anon", image="withvol:1", command=("true",)))
    vols = [v.name for v in await engine.list_volumes()]
    assert len(vols) == 1
    await engine.remove_container(info.id, volumes=True)
    assert await engine.list_volumes() == []


async def test_bind_mounts_tmpfs_and_read_only_rootfs(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    host = tmp_path / "site"
    host.mkdir()
    (host / "index.html").write_text("hi\n")
    code, out = await run(engine, "b", "sh", "-c",
                          "cat /site/index.html; touch /site/x 2>/dev/null || echo ro-bind; "
                          "touch /scratch/ok && echo tmpfs-rw; touch /etc/x 2>/dev/null || echo ro-root",
                          mounts=(Mount("bind", "/site", str(host), read_only=True),
                                  Mount("tmpfs", "/scratch", tmpfs_size=1 << 20)),
                          read_only=True)
    assert code == 0, out
    assert out.split() == ["hi", "ro-bind", "tmpfs-rw", "ro-root"]


async def test_memory_limit_oom_kills_and_inspect_says_so(engine: Engine) -> None:
    code, _ = await run(engine, "oom", "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo $x",
                        resources=Resources(memory=32 << 20))
    info = await engine.inspect_container("oom")
    assert info.oom_killed, (code, info)
    assert code == 137


async def test_pause_freezes_and_unpause_thaws(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(
        name="p", image="busybox", command=("sh", "-c", "while :; do echo x; sleep 0.05; done")))
    await engine.start_container("p")
    await asyncio.sleep(0.3)
    await engine.pause_container("p")
    assert (await engine.inspect_container("p")).state == "paused"
    n1 = len([x async for x in engine.logs("p")])
    await asyncio.sleep(0.5)
    n2 = len([x async for x in engine.logs("p")])
    assert n2 - n1 <= 1
    await engine.unpause_container("p")
    await asyncio.sleep(0.5)
    assert len([x async for x in engine.logs("p")]) > n2 + 3


async def test_a_restarted_engine_still_knows_its_containers(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(name="long", image="busybox", init=True,
                                                command=("sleep", "600")))
    await engine.start_container("long")
    await engine.create_container(ContainerSpec(name="short", image="busybox", command=("sh", "-c", "exit 4")))
    await engine.start_container("short")
    await engine.wait_container("short")
    pid = (await engine.inspect_container("long")).pid
    await engine.close()
    again = await Engine.open(engine.paths, cgroup_parent=engine.cgroups.parent)
    try:
        info = await again.inspect_container("long")
        assert info.state == "running" and info.pid == pid
        assert (await again.inspect_container("short")).exit_code == 4
        await again.stop_container("long")
        assert (await again.inspect_container("long")).exit_code == 143
        for c in await again.list_containers(all=True):
            await again.remove_container(c.id, force=True)
    finally:
        await again.close()
    # the fixture's engine is closed: give it a fresh server so its teardown works
    await engine.launcher.start_server()


async def test_an_image_with_many_layers_runs(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = engine.images.get("busybox")
    layers = list(base.layers)
    for i in range(60):
        d = tmp_path / f"layer{i:03d}"
        (d / "layers").mkdir(parents=True)
        (d / "layers" / f"f{i:03d}").write_text(str(i))
        layers.append(engine.images.layers.add_dir(d).diff_id)
    engine.images.put(ImageConfig(cmd=("sh", "-c", "ls /layers | wc -l")), layers, ["many:1"])
    await engine.create_container(ContainerSpec(name="many", image="many:1"))
    await engine.start_container("many")
    assert await engine.wait_container("many") == 0
    out = "".join([line.data async for line in engine.logs("many")])
    assert out.strip() == "60"


def test_paths_reject_traversal() -> None:
    with pytest.raises(ValueError):
        Paths.from_env().container_dir("../../etc")


async def test_a_directory_left_by_a_dead_engine_is_swept_at_start() -> None:
    """An engine killed inside a removal's rmtree (or a create before its config.json) left
    a container directory no record points at; the next engine removes it, mounts first."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from tests.leaks import Scope, take

    base = Path(tempfile.mkdtemp(prefix="cmpswp"))
    parent = f"composer-it-{os.getpid()}-sweep"
    scope = Scope.for_base(base, parent)
    before = take(scope)
    paths = Paths(base / "root", base / "run")
    eng = await Engine.open(paths, cgroup_parent=parent)
    try:
        await eng.close()
        left = paths.containers / ("ab" * 32)
        merged = left / "rootfs" / "merged"
        merged.mkdir(parents=True)
        (left / "container.log").write_text("half removed\n")
        subprocess.run(["mount", "-t", "tmpfs", "cmpswp", str(merged)], check=True)
        eng = await Engine.open(paths, cgroup_parent=parent)
        assert not left.exists()
        assert str(merged) not in Path("/proc/self/mounts").read_text()
    finally:
        await eng.close()
        leaks = take(scope).leaks_since(before)
        subprocess.run(["umount", "-l", str(base / "root" / "containers" / ("ab" * 32) /
                                            "rootfs" / "merged")], capture_output=True)
        eng.cgroups.remove_parent()
        shutil.rmtree(base, ignore_errors=True)
    assert not leaks
