"""Files into a container from the host as `composer watch` writes them (put_archive with the
tar's owners / remove_paths: runtime.containerfs, the module `cp` uses too), on the kernel:
through the container's own mounts, symlinks resolved inside its root, never out of it."""
from __future__ import annotations

import io
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.engine import Engine
from runtime.errors import Conflict, InvalidArgument
from runtime.types import ContainerSpec, Mount

SETUP = (
    "mkdir -p /app/data /var/sub /vol && ln -s /var/sub /app/data/sub && ln -s /etc /app/etc"
    " && ln -s /etc/hostname /app/link && ln -s ../../.. /app/up && touch /ready && exec sleep 600"
)


def tar_of(*entries: tuple[str, bytes | None, int]) -> bytes:
    """(name, data or None for a directory, uid) -> a tar archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, uid in entries:
            ti = tarfile.TarInfo(name)
            ti.uid = ti.gid = uid
            ti.mtime = 1_700_000_000
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o750
                tar.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o640
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


async def chunks(raw: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(raw), size):
        yield raw[i:i + size]


async def cat(engine: Engine, ref: str, *argv: str) -> str:
    res = await engine.exec_run(ref, list(argv))
    return res.stdout + res.stderr


@pytest.fixture
async def box(engine: Engine, tmp_path: Path) -> str:
    vol = tmp_path / "bind"
    vol.mkdir()
    (tmp_path / "one.txt").write_text("the host's file")
    await engine.create_container(ContainerSpec(
        name="fs", image="busybox", command=("sh", "-c", SETUP),
        mounts=(Mount("volume", "/vol", "fsvol"), Mount("bind", "/bind", str(vol)),
                Mount("bind", "/one.txt", str(tmp_path / "one.txt")))))
    await engine.start_container("fs")
    for _ in range(100):
        if (await engine.exec_run("fs", ["test", "-e", "/ready"])).exit_code == 0:
            break
    return "fs"


def sync(engine: Engine, box: str, path: str, raw: bytes):  # type: ignore[no-untyped-def]
    """As composer.watch.session syncs: the tar's owners, the host's kind of file wins."""
    return engine.put_archive(box, path, chunks(raw), copy_uid_gid=True,
                              no_overwrite_dir_non_dir=False)


async def test_files_land_in_the_container_with_mode_owner_and_mtime(engine: Engine, box: str) -> None:
    await sync(engine, box, "/", tar_of(
        ("app/data/new", None, 1000), ("app/data/new/a.txt", b"hello", 1000),
        ("app/deep/er/b.txt", b"x" * 300_000, 0)))
    assert await cat(engine, box, "cat", "/app/data/new/a.txt") == "hello"
    assert (await cat(engine, box, "stat", "-c", "%u %g %a %Y", "/app/data/new/a.txt")).split() == [
        "1000", "1000", "640", "1700000000"]
    assert (await cat(engine, box, "stat", "-c", "%u %a", "/app/data/new")).split() == ["1000", "750"]
    assert (await cat(engine, box, "wc", "-c", "/app/deep/er/b.txt")).split()[0] == "300000"


async def test_writes_go_through_the_containers_mounts(engine: Engine, box: str, tmp_path: Path) -> None:
    await sync(engine, box, "/vol", tar_of(("v.txt", b"in the volume", 0)))
    await sync(engine, box, "/bind", tar_of(("b.txt", b"in the bind", 0)))
    vol = engine.volumes.get("fsvol")
    assert (Path(vol.mountpoint) / "v.txt").read_text() == "in the volume"
    assert (tmp_path / "bind" / "b.txt").read_text() == "in the bind"
    # a single-file bind is a mount point: it is rewritten in place, not replaced
    await sync(engine, box, "/", tar_of(("one.txt", b"synced", 0)))
    assert (tmp_path / "one.txt").read_text() == "synced"
    assert await cat(engine, box, "cat", "/one.txt") == "synced"
    # a mount point is neither removed nor replaced by another kind of file (that would
    # detach the mount, or empty the host's directory)
    res = await engine.remove_paths(box, ["/one.txt", "/bind"])
    assert res.written == 0 and len(res.errors) == 2 and "mount point" in res.errors[0], res
    with pytest.raises(Conflict, match="mount point"):
        await sync(engine, box, "/", tar_of(("bind", b"a file over a bind", 0)))
    assert (tmp_path / "bind" / "b.txt").read_text() == "in the bind"
    assert await cat(engine, box, "cat", "/bind/b.txt", "/one.txt") == "in the bindsynced"


async def test_symlinks_resolve_inside_the_container_never_on_the_host(engine: Engine, box: str) -> None:
    marker = f"composer-containerfs-{os.getpid()}"
    await sync(engine, box, "/", tar_of(
        ("app/data/sub/hello.txt", b"through the link", 0),  # /app/data/sub -> /var/sub
        (f"app/etc/{marker}", b"container /etc", 0),  # /app/etc -> /etc: the container's
        (f"app/up/tmp/{marker}", b"climbing", 0)))  # ../../.. stops at the container's root
    with pytest.raises(InvalidArgument, match="climbs out"):  # a name with `..`: refused
        await sync(engine, box, "/", tar_of((f"../../../../tmp/{marker}-2", b"dots", 0)))
    assert await cat(engine, box, "cat", "/var/sub/hello.txt") == "through the link"
    assert await cat(engine, box, "cat", f"/etc/{marker}") == "container /etc"
    assert await cat(engine, box, "cat", f"/tmp/{marker}") == "climbing"
    assert (await engine.exec_run(box, ["test", "-e", f"/tmp/{marker}-2"])).exit_code == 1
    for host in (f"/etc/{marker}", f"/tmp/{marker}", f"/tmp/{marker}-2", "/var/sub/hello.txt"):
        assert not os.path.exists(host), host


async def test_a_symlink_as_the_last_component_is_replaced_not_followed(engine: Engine, box: str) -> None:
    before = await cat(engine, box, "cat", "/etc/hostname")
    await sync(engine, box, "/", tar_of(("app/link", b"replaced", 0)))
    assert await cat(engine, box, "cat", "/app/link") == "replaced"
    assert await cat(engine, box, "cat", "/etc/hostname") == before  # the link's target is intact
    assert (await engine.exec_run(box, ["test", "-L", "/app/link"])).exit_code == 1


async def test_a_magic_link_is_refused(engine: Engine, box: str) -> None:
    with pytest.raises(InvalidArgument, match="a link that may not be followed"):
        await sync(engine, box, "/", tar_of(("proc/1/root/escape.txt", b"x", 0)))
    assert (await engine.exec_run(box, ["test", "-e", "/escape.txt"])).exit_code == 1


async def test_remove_paths_removes_files_and_trees_through_links(engine: Engine, box: str) -> None:
    await sync(engine, box, "/", tar_of(("app/data/sub/t/one", b"1", 0), ("app/data/f", b"2", 0)))
    res = await engine.remove_paths(box, ["/app/data/sub/t", "/app/data/f", "/app/data/none", "/app/etc"])
    assert res.written == 3 and res.errors == ()
    assert (await engine.exec_run(box, ["test", "-e", "/var/sub/t"])).exit_code == 1
    assert (await engine.exec_run(box, ["test", "-e", "/app/data/f"])).exit_code == 1
    # /app/etc was a symlink: the link went, the container's /etc is still there
    assert (await engine.exec_run(box, ["test", "-f", "/etc/hostname"])).exit_code == 0


async def test_a_bad_archive_is_an_error_and_a_stopped_container_is_written(
        engine: Engine, box: str) -> None:
    with pytest.raises(InvalidArgument, match="not a valid tar stream"):
        await sync(engine, box, "/", b"this is not a tar archive" * 40)
    await engine.stop_container(box, timeout=1)
    await sync(engine, box, "/", tar_of(("app/stopped.txt", b"while stopped", 0)))
    res = await engine.remove_paths(box, ["/app/link"])
    assert res.written == 1 and res.errors == ()
    st, stream = await engine.get_archive(box, "/app/stopped.txt")  # as `cp` reads it
    raw = b"".join([c async for c in stream])
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        f = tar.extractfile("stopped.txt")
        assert f is not None and f.read() == b"while stopped"
    from runtime.errors import NotFound
    with pytest.raises(NotFound):
        await engine.stat_path(box, "/app/link")
