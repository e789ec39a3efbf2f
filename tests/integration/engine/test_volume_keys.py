"""Compose's volume keys on the real engine: the local driver's bind form (driver_opts),
`volume.nocopy` and `volume.subpath`."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.engine import Engine
from runtime.errors import InvalidArgument
from runtime.types import ContainerSpec, Mount, VolumeSpec


async def _run(engine: Engine, name: str, script: str, *mounts: Mount) -> str:
    await engine.create_container(ContainerSpec(name=name, image="busybox", command=("sh", "-c", script),
                                                mounts=mounts))
    await engine.start_container(name)
    code = await engine.wait_container(name)
    out = "".join([line.data async for line in engine.logs(name)])
    assert code == 0, out
    return out


async def test_local_bind_driver_opts_make_the_volume_a_host_directory(engine: Engine, tmp_path: Path) -> None:
    device = tmp_path / "device"
    device.mkdir()
    await engine.create_volume(VolumeSpec("bound", driver_opts={"type": "none", "o": "bind",
                                                                  "device": str(device)}))
    await _run(engine, "w", "echo from-container > /data/x", Mount("volume", "/data", "bound"))
    assert (device / "x").read_text() == "from-container\n"
    # first use of an empty volume copies the image's files at the target, as Docker
    (tmp_path / "etc-dev").mkdir()
    await engine.create_volume(VolumeSpec("etc2", driver_opts={"type": "none", "o": "bind",
                                                                 "device": str(tmp_path / "etc-dev")}))
    await _run(engine, "e", "test -f /etc/passwd", Mount("volume", "/etc", "etc2"))
    assert (tmp_path / "etc-dev" / "passwd").is_file()
    with pytest.raises(InvalidArgument, match="only the bind form"):
        await engine.create_volume(VolumeSpec("tmp", driver_opts={"type": "tmpfs", "device": "tmpfs"}))
    await engine.create_volume(VolumeSpec("gone", driver_opts={"type": "none", "o": "bind",
                                                                 "device": str(tmp_path / "nope")}))
    await engine.create_container(ContainerSpec(name="g", image="busybox", command=("true",),
                                                mounts=(Mount("volume", "/data", "gone"),)))
    with pytest.raises(InvalidArgument, match="nope, which is not a directory on this host"):
        await engine.start_container("g")


async def test_nocopy_leaves_a_new_volume_empty(engine: Engine) -> None:
    # (/etc/hosts, hostname and resolv.conf are the engine's own binds over the volume)
    out = await _run(engine, "nc", "ls /etc/passwd 2>&1; true", Mount("volume", "/etc", "nocopy-vol", nocopy=True))
    assert "No such file" in out
    out = await _run(engine, "cp", "ls /etc/passwd", Mount("volume", "/etc", "copied-vol"))
    assert out.strip() == "/etc/passwd"


async def test_subpath_mounts_a_directory_of_the_volume(engine: Engine) -> None:
    await _run(engine, "fill", "mkdir -p /v/sub/deeper && echo inner > /v/sub/f && echo outer > /v/top",
               Mount("volume", "/v", "shared"))
    out = await _run(engine, "sub", "cat /m/f; ls /m", Mount("volume", "/m", "shared", subpath="sub"))
    assert out.split() == ["inner", "deeper", "f"]
    for bad, message in (("missing", "does not exist in the volume"), ("../x", "without .."),
                         ("/abs", "relative path")):
        name = f"bad{abs(hash(bad)) % 1000}"
        await engine.create_container(ContainerSpec(name=name, image="busybox", command=("true",),
                                                    mounts=(Mount("volume", "/m", "shared", subpath=bad),)))
        with pytest.raises(InvalidArgument, match=message):
            await engine.start_container(name)
