"""Imported layers are real overlay lowerdirs: whiteouts and opaque dirs work in the kernel."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from runtime.images.importer import load
from runtime.images.store import ImageStore
from runtime.storage import rootfs
from tests.unit.images.archives import docker_archive, two_layer_image


def _load_two_layers(tmp_path: Path, store: ImageStore) -> str:
    layers, cfg = two_layer_image()
    docker_archive(tmp_path / "img.tar", layers, cfg, ["demo:1"])
    (img,) = load(store, tmp_path / "img.tar")
    return img.id


def test_whiteout_conversion_on_disk(tmp_path: Path, store: ImageStore) -> None:
    _load_two_layers(tmp_path, store)
    top, bottom = store.lowerdirs("demo:1")
    st = os.lstat(os.path.join(top, "etc/old"))
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0
    assert os.getxattr(os.path.join(top, "data"), "trusted.overlay.opaque") == b"y"
    assert not os.path.exists(os.path.join(top, "data/.wh..wh..opq"))
    st = os.lstat(os.path.join(bottom, "www/index.html"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (33, 33, 0o640)


def _in_private_ns(script: str, cwd: str | None = None) -> str:
    """Run `script` in a new mount namespace: its mounts die with it, none reach the host."""
    out = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
        capture_output=True, text=True, cwd=cwd, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_overlay_mount_of_imported_image(tmp_path: Path, store: ImageStore) -> None:
    _load_two_layers(tmp_path, store)
    lay = rootfs.prepare(tmp_path / "c1", store.lowerdirs("demo:1"))
    opts, cwd = lay.mount_options()
    assert cwd is None
    m = lay.mergeddir
    out = _in_private_ns(
        f"mount -t overlay overlay -o {opts} {m}\n"
        f"ls {m}/etc; echo --; ls {m}/data; echo --; ls {m}/www; echo --\n"
        f"echo written > {m}/data/x; rm {m}/etc/keep; stat -c %u:%g {m}/www/index.html"
    )
    assert out.split("\n") == ["keep", "--", "new.txt", "--", "index.html", "--", "33:33", ""]
    # writes went to the upper dir; deleting a lower file made a whiteout there
    assert Path(lay.upperdir, "data/x").read_text() == "written\n"
    st = os.lstat(Path(lay.upperdir, "etc/keep"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    # ... and that upper dir becomes a layer with the OCI spelling of the deletion
    layer = store.layers.add_dir(lay.upperdir)
    import tarfile
    with tarfile.open(store.layers.export_tar(layer.diff_id)) as tf:
        names = tf.getnames()
    assert "etc/.wh.keep" in names and "data/x" in names
    assert rootfs.mounts_under(lay.root) == []
    rootfs.cleanup(tmp_path / "c1")
    assert not Path(lay.root).exists()


def test_short_form_mount_options_work(tmp_path: Path, store: ImageStore) -> None:
    _load_two_layers(tmp_path, store)
    lowers = store.lowerdirs("demo:1")
    for i in range(58):  # distinct dirs (overlay refuses a lowerdir twice), long paths
        d = tmp_path / "filler" / (f"{i:02d}" * 40)
        d.mkdir(parents=True)
        lowers.append(str(d))
    lay = rootfs.prepare(tmp_path / "c1", lowers)  # 60 lowers: too long for one page
    opts, cwd = lay.mount_options()
    assert cwd == lay.root and len(f"lowerdir={':'.join(lowers)}") > 4096
    out = _in_private_ns(f"mount -t overlay overlay -o {opts} merged; ls merged/data", cwd=cwd)
    assert out == "new.txt\n"
    rootfs.cleanup(tmp_path / "c1")


def test_cleanup_unmounts_a_host_mount(tmp_path: Path, store: ImageStore) -> None:
    _load_two_layers(tmp_path, store)
    lay = rootfs.prepare(tmp_path / "c1", store.lowerdirs("demo:1"))
    opts, _ = lay.mount_options()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, lay.mergeddir], check=True)
    try:
        assert rootfs.mounts_under(lay.root) == [lay.mergeddir]
        assert Path(lay.mergeddir, "etc/keep").is_file()
        rootfs.cleanup(tmp_path / "c1")
        assert rootfs.mounts_under(str(tmp_path)) == []
        assert not Path(lay.root).exists()
    finally:
        subprocess.run(["umount", "-l", lay.mergeddir], capture_output=True)


def test_devices_and_owners_survive_a_round_trip(tmp_path: Path, store: ImageStore) -> None:
    src = tmp_path / "src"
    (src / "dev").mkdir(parents=True)
    os.mknod(src / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(src / "dev/null", 0o666)  # mknod obeys the umask
    os.mkfifo(src / "dev/fifo")
    (src / "owned").write_text("x")
    os.chown(src / "owned", 1234, 5678)
    layer = store.layers.add_dir(src)
    st = os.lstat(Path(layer.path, "dev/null"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666
    assert stat.S_ISFIFO(os.lstat(Path(layer.path, "dev/fifo")).st_mode)
    st = os.lstat(Path(layer.path, "owned"))
    assert (st.st_uid, st.st_gid) == (1234, 5678)
