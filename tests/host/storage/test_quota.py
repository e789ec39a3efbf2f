"""`storage_size` (Compose's storage_opt.size) enforced by a project quota, on Debian's
kernel (this tier's VM: the development machine's kernel has no quota format for ext4 and no
xfs quota). The state root is a loop-mounted ext4 image made with `-O quota,project` and
mounted with prjquota, or an xfs image mounted with pquota (xfsprogs is installed with apt
for it, as Docker's overlay2 wants xfs); it, its mount and its loop device are gone after."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runtime.storage import quota
from runtime.types import ContainerSpec
from tests.loopdev import loop_devices
from tests.quotafs import attached_images, engine_on_ext4

__all__ = ["loop_devices"]

SCRIPT = """
dd if=/dev/zero of=/small bs=1M count=5 2>/dev/null && sync && echo small-ok
dd if=/dev/zero of=/big bs=1M count=20 2>&1; echo big-exit=$?
rm -f /big; sync
df -k / | tail -n 1
"""


async def released(root: Path, projid: int) -> bool:
    """No limit left, and no usage once the files are freed: xfs frees unlinked inodes in
    the background (inodegc), so its usage drops a moment after the directory is gone."""
    for _ in range(100):
        if quota.get_limit(root, projid) == quota.Usage(0, 0):
            return True
        assert quota.get_limit(root, projid).limit == 0
        os.sync()
        await asyncio.sleep(0.1)
    return False


def have_mkfs(fstype: str) -> None:
    if fstype == "xfs" and shutil.which("mkfs.xfs") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "xfsprogs"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                       capture_output=True)


@pytest.mark.parametrize("fstype", ["ext4", "xfs"])
async def test_size_limits_the_writable_layer_and_goes_with_the_container(
        loop_devices: None, fstype: str) -> None:
    have_mkfs(fstype)
    async with engine_on_ext4(project_quota=True, fstype=fstype) as (eng, img):
        info = await eng.create_container(ContainerSpec(
            name="q1", image="busybox", command=("sh", "-c", SCRIPT), storage_size=10 << 20))
        cdir = eng.paths.container_dir(info.id)
        projid = int((cdir / quota.PROJID_FILE).read_text())
        assert projid >= quota.FIRST_ID
        assert quota.get_project(cdir / "rootfs") == (projid, True)
        assert quota.get_limit(eng.paths.root, projid).limit == 10 << 20
        other = await eng.create_container(ContainerSpec(
            name="q2", image="busybox", command=("true",), storage_size=1 << 30))
        other_id = int((eng.paths.container_dir(other.id) / quota.PROJID_FILE).read_text())
        assert other_id != projid  # each container its own project

        await eng.start_container("q1")
        assert await eng.wait_container("q1") == 0
        out = "".join([line.data async for line in eng.logs("q1")])
        print(out)  # the df line is documented in docs/storage-and-images.md
        assert "small-ok" in out, out
        # ext4 answers a full project with EDQUOT, xfs with ENOSPC (as for a full disk)
        full = "Disk quota exceeded" if fstype == "ext4" else "No space left on device"
        assert full in out and "big-exit=1" in out, out
        assert quota.get_project(cdir / "rootfs" / "upper") == (projid, True)  # inherited
        used = quota.get_limit(eng.paths.root, projid).used
        assert 5 << 20 <= used < 10 << 20, used
        # overlay's statfs asks the upper dir, and ext4 and xfs answer with the project's limit
        df = out.strip().splitlines()[-1].split()
        assert int(df[1]) == 10 << 10, df  # 1K-blocks: the limit, not the image's size

        await eng.remove_container("q1")
        assert not cdir.exists()
        assert await released(eng.paths.root, projid)
        await eng.remove_container("q2")
        assert await released(eng.paths.root, other_id)
    assert not img.exists() and str(img) not in attached_images()
