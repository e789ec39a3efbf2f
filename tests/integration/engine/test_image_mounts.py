"""Compose's image mounts (`type: image`) on the real kernel: an image's files, read-only,
at a path of the container; several layers are overlaid (a later layer's file and whiteout
win), `subpath` picks a directory of it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.engine import Engine
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.images.config import ImageConfig
from runtime.storage import whiteout
from runtime.types import ContainerSpec, Mount


def _layer(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


async def test_image_mount_overlays_the_layers_read_only(engine: Engine, tmp_path: Path) -> None:
    low = _layer(tmp_path / "l1", {"www/index.html": "old\n", "www/gone.txt": "x\n", "etc/conf": "c\n"})
    top = _layer(tmp_path / "l2", {"www/index.html": "new\n", "www/extra.txt": "e\n"})
    fd = os.open(top / "www", os.O_RDONLY | os.O_DIRECTORY)
    try:
        whiteout.make_whiteout("gone.txt", fd)  # the top layer deletes it
    finally:
        os.close(fd)
    layers = [engine.images.layers.add_dir(low), engine.images.layers.add_dir(top)]
    engine.images.put(ImageConfig(), layers, tags=["content:1"])
    script = ("cat /srv/www/index.html; ls /srv/www; ls /html; (echo x > /srv/www/new) 2>/dev/null || echo ro")
    await engine.create_container(ContainerSpec(name="im", image="busybox", command=("sh", "-c", script),
                                                mounts=(Mount("image", "/srv", "content:1", read_only=True),
                                                        Mount("image", "/html", "content:1", read_only=True,
                                                              subpath="www"))))
    with pytest.raises(Conflict, match="is used by container\\(s\\) im"):
        await engine.remove_image("content:1")  # the mount holds its layers
    await engine.start_container("im")
    assert await engine.wait_container("im") == 0
    out = "".join([line.data async for line in engine.logs("im")]).split()
    assert out == ["new", "extra.txt", "index.html", "extra.txt", "index.html", "ro"]
    await engine.remove_container("im", force=True)

    await engine.create_container(ContainerSpec(name="bad", image="busybox", command=("true",),
                                                mounts=(Mount("image", "/x", "content:1", subpath="nope"),)))
    with pytest.raises(InvalidArgument, match="image content:1 has no 'nope' to mount at /x"):
        await engine.start_container("bad")
    with pytest.raises(NotFound):
        await engine.create_container(ContainerSpec(name="m", image="busybox",
                                                    mounts=(Mount("image", "/x", "nosuch:1"),)))
    assert not any("/srv" in line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
    assert os.path.isdir(engine.images.lowerdirs("content:1")[0])
