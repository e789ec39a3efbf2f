"""An engine whose state root is a loop-mounted ext4 image -- with project quotas
(`mkfs.ext4 -O quota,project`, mounted with prjquota) or without -- or an xfs one mounted
with pquota. The image, its mount and
its loop device are gone afterwards, also when the test failed."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from runtime.engine import Engine
from runtime.paths import Paths
from tests.leaks import Scope, take


def loop_devices_of(image: Path) -> list[str]:
    out = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True).stdout
    return [line.split(":", 1)[0] for line in out.splitlines() if line.strip()]


def attached_images() -> str:
    """`losetup -a`: every attached loop device with its backing file."""
    return subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout


@contextlib.contextmanager
def ext4_mount(base: Path, *, project_quota: bool, size_mb: int = 160,
               fstype: str = "ext4") -> Iterator[Path]:
    """`base`/fs.img made and mounted at `base`/root; unmounted, detached and deleted after.
    xfs (always with project quotas: pquota) needs at least 300 MiB."""
    img, mnt = base / "fs.img", base / "root"
    if fstype == "xfs":
        size_mb = max(size_mb, 320)
    with open(img, "wb") as f:
        f.truncate(size_mb << 20)
    if fstype == "xfs":
        mkfs = ["mkfs.xfs", "-q", "-f", str(img)]
        opts = "loop,pquota"
    else:
        features = ["-I", "256", "-O", "quota,project"] if project_quota else []
        mkfs = ["mkfs.ext4", "-q", "-F", *features, str(img)]
        opts = "loop,prjquota" if project_quota else "loop"
    subprocess.run(mkfs, check=True, capture_output=True)
    mnt.mkdir()
    try:
        r = subprocess.run(["mount", "-o", opts, str(img), str(mnt)], capture_output=True, text=True)
        assert r.returncode == 0, f"mount -o {opts} failed: {r.stderr.strip()}"
        yield mnt
    finally:
        if os.path.ismount(mnt) and subprocess.run(["umount", str(mnt)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        for dev in loop_devices_of(img):  # mount -o loop sets autoclear; be sure anyway
            subprocess.run(["losetup", "-d", dev], check=False)
        img.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def engine_on_ext4(*, project_quota: bool,
                         fstype: str = "ext4") -> AsyncIterator[tuple[Engine, Path]]:
    """An engine with its state root on the image; yields (engine, image path). Afterwards
    its containers are removed through the API, the leak check holds, the image is gone."""
    base = Path(tempfile.mkdtemp(prefix="cmpquota"))
    parent = f"composer-it-{os.getpid()}-{base.name[-6:]}"
    try:
        with ext4_mount(base, project_quota=project_quota, fstype=fstype):
            scope = Scope.for_base(base, parent)
            before = take(scope)
            eng = await Engine.open(Paths(base / "root", base / "run"), cgroup_parent=parent)
            try:
                eng.images.ensure_busybox()
                yield eng, base / "fs.img"
            finally:
                for c in await eng.list_containers(all=True):
                    await eng.remove_container(c.id, force=True, volumes=True)
                await eng.close()
                leaks = take(scope).leaks_since(before)
                eng.cgroups.remove_parent()
                assert not leaks, f"left behind: {leaks}"
    finally:
        shutil.rmtree(base, ignore_errors=True)
