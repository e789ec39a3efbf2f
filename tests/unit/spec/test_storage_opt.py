"""`storage_opt`: only `size`, parsed as Docker parses sizes; other options and bad sizes are
one line naming the key; the runtime's refusal where the filesystem has no project quotas."""
from __future__ import annotations

import pytest

from composer.errors import SpecError
from runtime.storage import quota

from .conftest import Loader


@pytest.mark.parametrize(("value", "size"), [
    ("10M", 10 << 20), ("10m", 10 << 20), ("1G", 1 << 30), ("1.5g", 3 << 29), ("20971520", 20 << 20),
    ("512k", 512 << 10), (4096, 4096),
])
def test_size_parses(load: Loader, value: object, size: int) -> None:
    stack = load(f"services: {{web: {{image: x, storage_opt: {{size: {value!r}}}}}}}")
    assert stack.services["web"].storage_opt == size


def test_empty_storage_opt_means_no_limit(load: Loader) -> None:
    assert load("services: {web: {image: x, storage_opt: {}}}").services["web"].storage_opt is None
    assert load("services: {web: {image: x}}").services["web"].storage_opt is None


@pytest.mark.parametrize(("text", "expected"), [
    ("{size: 10M, dm.basesize: 1G}",
     'compose.yaml: services.web.storage_opt.dm.basesize: unsupported storage option "dm.basesize" '
     "(only size is supported)"),
    ("{size: big}", 'compose.yaml: services.web.storage_opt.size: invalid size "big"'),
    ("{size: 0}", 'compose.yaml: services.web.storage_opt.size: must be a positive size like "10G"'),
    ("[size=10G]", "compose.yaml: services.web.storage_opt: expected a mapping like {size: \"10G\"}"),
])
def test_bad_storage_opt_is_one_line(load: Loader, text: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load(f"services: {{web: {{image: x, storage_opt: {text}}}}}")
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


MOUNTINFO = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,discard
40 22 7:0 / /srv/state rw,relatime shared:9 - ext4 /dev/loop0 rw,prjquota
41 22 7:1 / /srv/xfs rw,relatime shared:10 - xfs /dev/loop1 rw,attr2,inode64,prjquota
42 22 0:50 / /srv/tmp rw,relatime shared:11 - tmpfs tmpfs rw,size=1024k
43 40 7:0 /sub /srv/state/bind rw,relatime shared:9 - ext4 /dev/loop0 rw,prjquota
"""


@pytest.mark.parametrize(("path", "devno", "fstype", "mountpoint", "ok"), [
    ("/var/lib/composer/containers", "254:1", "ext4", "/", False),
    ("/srv/state/containers", "7:0", "ext4", "/srv/state", True),
    ("/srv/state/bind/x", "7:0", "ext4", "/srv/state/bind", True),
    ("/srv/xfs/containers", "7:1", "xfs", "/srv/xfs", True),
    ("/srv/tmp/containers", "0:50", "tmpfs", "/srv/tmp", False),
])
def test_filesystem_found_and_judged(path: str, devno: str, fstype: str, mountpoint: str, ok: bool) -> None:
    fs = quota.find_mount(MOUNTINFO, path, devno)
    assert fs is not None
    assert (fs.fstype, fs.mountpoint, fs.project_quota) == (fstype, mountpoint, ok)


def test_a_path_under_a_mount_point_but_on_another_device_is_judged_by_its_own_device() -> None:
    fs = quota.find_mount(MOUNTINFO, "/srv/state/x", "254:1")  # e.g. the loop image unmounted
    assert fs is not None and (fs.mountpoint, fs.project_quota) == ("/", False)
    assert quota.find_mount(MOUNTINFO, "/srv/state/x", "9:9") is None


def test_refusal_names_the_key_the_path_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quota, "filesystem_of",
                        lambda p: quota.find_mount(MOUNTINFO, "/srv/tmp/c", "0:50"))
    with pytest.raises(quota.QuotaUnsupported) as err:
        quota.require("/srv/tmp/c", "container web-1: storage_opt.size")
    assert str(err.value) == (
        "container web-1: storage_opt.size needs the state root on xfs mounted with pquota or "
        "ext4 (-O quota,project) mounted with prjquota; /srv/tmp/c is on tmpfs at /srv/tmp "
        "without it")
    assert err.value.status == 400  # the user's request, not a broken store


def test_config_shows_the_size_and_it_loads_back(load: Loader) -> None:
    import yaml

    from composer.spec.render import render_stack

    out = render_stack(load("services: {web: {image: x, storage_opt: {size: 10m}}}"))
    assert out["services"]["web"]["storage_opt"] == {"size": str(10 << 20)}
    again = load(yaml.safe_dump(out))
    assert again.services["web"].storage_opt == 10 << 20
    assert "storage_opt" not in render_stack(load("services: {web: {image: x}}"))["services"]["web"]


def test_a_changed_size_changes_the_config_hash(load: Loader) -> None:
    from composer.convert import config_hash

    hashes = {config_hash(load(f"services: {{web: {{image: x{extra}}}}}").services["web"])
              for extra in ("", ", storage_opt: {size: 10m}", ", storage_opt: {size: 20m}")}
    assert len(hashes) == 3  # `up` recreates the container with the new limit
