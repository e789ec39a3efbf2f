"""`storage_size` (Compose's storage_opt.size) where the state root cannot limit a directory:
an ext4 image without project quotas as the state root. The create is refused with one line
naming the container, the key, the filesystem and the fix, and leaves nothing behind.

This kernel cannot mount ext4 with prjquota (no CONFIG_QFMT_V2) nor xfs with pquota (no
CONFIG_XFS_QUOTA); the enforcement itself is tested on Debian's kernel in
tests/host/storage/test_quota.py."""
from __future__ import annotations

import errno
import os

import pytest

from runtime.storage import quota
from runtime.storage.quota import QuotaUnsupported
from runtime.types import ContainerSpec
from tests.quotafs import attached_images, engine_on_ext4


async def test_size_is_refused_on_a_state_root_without_project_quotas() -> None:
    async with engine_on_ext4(project_quota=False) as (eng, img):
        root = eng.paths.root
        with pytest.raises(QuotaUnsupported) as err:
            await eng.create_container(ContainerSpec(name="q1", image="busybox",
                                                     command=("true",), storage_size=10 << 20))
        assert str(err.value) == (
            "container q1: storage_opt.size needs the state root on xfs mounted with pquota or "
            f"ext4 (-O quota,project) mounted with prjquota; {eng.paths.containers} is on ext4 "
            f"at {root} without it")
        assert err.value.status == 400
        assert await eng.list_containers(all=True) == []
        assert os.listdir(eng.paths.containers) == []
        # the same container without a size runs there
        await eng.create_container(ContainerSpec(name="q1", image="busybox",
                                                 command=("echo", "ran")))
        await eng.start_container("q1")
        assert await eng.wait_container("q1") == 0
        assert "ran" in "".join([line.data async for line in eng.logs("q1")])
    assert not img.exists() and str(img) not in attached_images()
    assert not os.path.ismount(root)


async def test_the_quota_syscalls_are_well_formed_on_a_filesystem_without_quotas() -> None:
    """quotactl_fd answers ESRCH (quotas off), not EINVAL (a malformed command or id); the
    fsxattr ioctls read a directory's project and refuse a project id where ext4 has no
    project feature."""
    async with engine_on_ext4(project_quota=False) as (eng, _img):
        d = eng.paths.containers
        with pytest.raises(OSError) as err:
            quota.get_limit(d, quota.FIRST_ID)
        assert err.value.errno == errno.ESRCH
        with pytest.raises(OSError) as err:
            quota.set_limit(d, quota.FIRST_ID, 10 << 20)
        assert err.value.errno == errno.ESRCH
        assert quota.get_project(d) == (0, False)
        with pytest.raises(OSError) as err:
            quota.set_project(d, quota.FIRST_ID)
        assert err.value.errno == errno.EOPNOTSUPP


async def test_a_filesystem_that_looks_right_but_cannot_limit_is_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the mount-option check (faked here), a kernel that refuses the quota calls still
    gives the user one line, and the create leaves no container behind."""
    async with engine_on_ext4(project_quota=False) as (eng, _img):
        monkeypatch.setattr(quota, "require", lambda path, what: quota.filesystem_of(path))
        with pytest.raises(QuotaUnsupported) as err:
            await eng.create_container(ContainerSpec(name="q1", image="busybox",
                                                     command=("true",), storage_size=10 << 20))
        text = str(err.value)
        assert text.startswith("container q1: storage_opt.size: project quotas are not usable on "
                               f"{eng.paths.containers}/"), text
        assert "\n" not in text
        assert await eng.list_containers(all=True) == []
        assert os.listdir(eng.paths.containers) == []
