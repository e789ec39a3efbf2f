"""Volume init keeps owners; the busybox image is a sane root filesystem."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from runtime.images.importer import load
from runtime.images.store import ImageStore
from runtime.paths import Paths
from runtime.storage import rootfs
from runtime.storage.volumes import VolumeStore
from tests.unit.images.archives import docker_archive, two_layer_image


def test_volume_init_from_image_keeps_owners(tmp_path: Path, state: Paths, store: ImageStore) -> None:
    layers, cfg = two_layer_image()
    docker_archive(tmp_path / "img.tar", layers, cfg, ["demo:1"])
    load(store, tmp_path / "img.tar")
    vols = VolumeStore(state.volumes)
    v = vols.create("www")
    assert vols.init_from_image("www", store.lowerdirs("demo:1"), "/www")
    st = os.stat(v.mountpoint)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (33, 33, 0o750)
    st = os.stat(Path(v.mountpoint, "index.html"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (33, 33, 0o640)
    vols.remove("www")
    assert not Path(v.mountpoint).exists()


def test_busybox_image_runs_in_chroot(tmp_path: Path, store: ImageStore) -> None:
    img = store.ensure_busybox()
    (lower,) = store.lowerdirs(img)
    out = subprocess.run(["chroot", lower, "/bin/busybox", "true"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(["chroot", lower, "/bin/sh", "-c", "id -un; cat /etc/hostname"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "root\nbusybox\n"
    # and through an overlay, as a container will see it: writes land in the upper dir
    lay = rootfs.prepare(tmp_path / "c1", store.lowerdirs(img))
    opts, _ = lay.mount_options()
    out = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec",
         f"mount -t overlay overlay -o {opts} {lay.mergeddir}; "
         f"chroot {lay.mergeddir} /bin/sh -c 'echo hi > /tmp/f; /bin/busybox true'"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert Path(lay.upperdir, "tmp/f").read_text() == "hi\n"
    assert not Path(lower, "tmp/f").exists()
    rootfs.cleanup(tmp_path / "c1")
