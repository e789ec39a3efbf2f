"""Base images made locally: busybox (fast) and a real debootstrap of bookworm-slim (slow)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from runtime.images import bases
from runtime.images.build.errors import BuildError
from tests.unit.build.fakes import DictImageSink, DirLayerSink


def _du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def _no_mounts_below(path: Path) -> bool:
    with open("/proc/self/mounts") as f:
        return not any(line.split()[1].startswith(str(path)) for line in f)


async def test_busybox_base_is_created_once(tmp_path: Path) -> None:
    layers, images = DirLayerSink(tmp_path / "layers"), DictImageSink()
    lines: list[str] = []
    img = await bases.ensure_base("busybox", layers=layers, images=images,
                                  cache_dir=tmp_path / "bases", progress=lines.append)
    assert len(img.layers) == 1
    root = layers.path(img.layers[0])
    assert (root / "bin/busybox").is_file() and os.path.islink(root / "bin/sh")
    assert img.config.cmd == ("sh",) and img.config.env[0].startswith("PATH=")
    assert any("creating base image busybox:latest locally" in line for line in lines)
    assert images.get("busybox:latest") == img
    again = await bases.ensure_base("docker.io/library/busybox:latest", layers=layers, images=images,
                                    cache_dir=tmp_path / "bases", progress=lines.append)
    assert again == img and len(layers.added) == 1
    assert list((tmp_path / "bases/tmp").iterdir()) == []


async def test_unknown_base_says_how_to_load(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"composer image load FILE"):
        await bases.ensure_base("alpine:3.19", layers=DirLayerSink(tmp_path / "l"), images=DictImageSink(),
                                cache_dir=tmp_path / "bases")


@pytest.fixture
def big_tmp(tmp_path: Path):  # type: ignore[no-untyped-def]
    """tmp_path, emptied afterwards: two rootfs copies and a tarball are ~250 MB."""
    yield tmp_path
    bases._umount_below(tmp_path)
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.slow
async def test_debootstrap_bookworm_slim_then_reuse_tarball(big_tmp: Path) -> None:
    tmp_path = big_tmp
    cache = tmp_path / "bases"
    layers, images = DirLayerSink(tmp_path / "layers"), DictImageSink()
    lines: list[str] = []
    t0 = time.monotonic()
    img = await bases.ensure_base("debian:bookworm-slim", layers=layers, images=images,
                                  cache_dir=cache, progress=lines.append)
    took = time.monotonic() - t0
    root = layers.path(img.layers[0])
    size = _du(root)
    print(f"\ndebootstrap bookworm-slim: {took:.1f}s, rootfs {size / 1e6:.1f} MB")
    assert img.config.cmd == ("bash",)
    assert (root / "usr/bin/apt-get").is_file() and (root / "usr/bin/bash").is_file()
    assert "bookworm" in (root / "etc/os-release").read_text()
    assert (root / "etc/dpkg/dpkg.cfg.d/docker").is_file()
    assert not any((root / "usr/share/man").iterdir())
    docs = [p.name for p in (root / "usr/share/doc").rglob("*") if p.is_file()]
    assert docs and set(docs) == {"copyright"}
    assert "URIs: " + bases.host_mirror() in (root / "etc/apt/sources.list.d/debian.sources").read_text()
    assert bases.tarball_path(cache, bases.recipe_for("debian:bookworm-slim")).is_file()  # type: ignore[arg-type]
    assert list((cache / "tmp").iterdir()) == [] and _no_mounts_below(tmp_path)
    assert any("debootstrap --variant=minbase" in line for line in lines)

    # a second machine start: empty image store, same state root -> the tarball is reused
    layers2, images2 = DirLayerSink(tmp_path / "layers2"), DictImageSink()
    t1 = time.monotonic()
    img2 = await bases.ensure_base("debian:bookworm-slim", layers=layers2, images=images2,
                                   cache_dir=cache, progress=lines.append)
    reuse = time.monotonic() - t1
    print(f"reuse of the cached tarball: {reuse:.1f}s")
    assert any("from the cached rootfs" in line for line in lines)
    assert (layers2.path(img2.layers[0]) / "usr/bin/apt-get").is_file()
    assert reuse < took


def test_the_cached_rootfs_round_trips_owners_modes_links_and_xattrs(tmp_path: Path) -> None:
    """The debootstrap result is cached as a tarball and unpacked for the next image (our own
    pack/extract, no `tar` shell-out): what a rootfs needs must survive."""
    src = tmp_path / "src"
    (src / "usr/bin").mkdir(parents=True)
    ping = src / "usr/bin/ping"
    ping.write_bytes(b"\x7fELF")
    os.chown(ping, 0, 5)  # before the chmod: a chown clears the setuid bit
    os.chmod(ping, 0o4755)
    os.setxattr(ping, "security.capability", b"\x01\x00\x00\x02" + b"\x00" * 16)
    (src / "usr/bin/sh").symlink_to("dash")
    os.link(ping, src / "usr/bin/ping6")
    os.mkdir(src / "tmp", 0o1777)
    os.chmod(src / "tmp", 0o1777)
    tarball = tmp_path / "cache.tar"
    bases._pack(src, tarball)
    dest = tmp_path / "dest"
    dest.mkdir()
    bases._extract(tarball, dest)
    got = dest / "usr/bin/ping"
    st = got.stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o4755, 0, 5)
    assert os.getxattr(got, "security.capability") == os.getxattr(ping, "security.capability")
    assert os.readlink(dest / "usr/bin/sh") == "dash"
    assert os.stat(dest / "usr/bin/ping6").st_ino == st.st_ino
    assert (dest / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert got.read_bytes() == b"\x7fELF"


def test_umount_below_detaches_every_mount_deepest_first(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "proc").mkdir(parents=True)
    (root / "dev").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "cmpt", str(root / "dev")], check=True)
    (root / "dev/pts").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "cmpt", str(root / "dev/pts")], check=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    bases._umount_below(root)
    assert _no_mounts_below(root)
