"""A container's start does its file work (rootfs, mounts, a volume's first copy of the
image's files) in a thread: composerd's loop also answers the stack's DNS meanwhile.
Measured where it weighs most: a volume's first use copies the image's files, 10,000 of them
(file by file, with owners, modes and times: one big file is copied by the kernel at once)."""
from __future__ import annotations

from pathlib import Path

from runtime.engine import Engine
from runtime.types import ContainerSpec, Mount
from tests.looplag import worst_lag

DIRS, FILES = 100, 100


async def test_a_volume_copy_up_leaves_the_event_loop_free(engine: Engine, tmp_path: Path) -> None:
    data = tmp_path / "layer" / "data"
    data.mkdir(parents=True)
    for d in range(DIRS):
        sub = data / f"d{d}"
        sub.mkdir()
        for n in range(FILES):
            (sub / f"f{n}").write_text(f"{d}/{n}\n")
    busybox = engine.images.get("busybox")
    layer = engine.images.layers.add_dir(tmp_path / "layer")
    engine.images.put(busybox.config, [*busybox.layers, layer], tags=["bigdata:1"])
    await engine.create_container(ContainerSpec(
        name="cu", image="bigdata:1", command=("sh", "-c", "find /data -type f | wc -l"),
        mounts=(Mount("volume", "/data", "cmpbigvol"),)))

    _, worst, elapsed = await worst_lag(engine.start_container("cu"))
    assert await engine.wait_container("cu") == 0
    out = "".join([line.data async for line in engine.logs("cu")]).split()
    assert out == [str(DIRS * FILES)]  # the volume got the image's files
    await engine.remove_container("cu", volumes=True)
    await engine.remove_volume("cmpbigvol")
    # copied on the loop, one tick waits about as long as the whole start
    assert worst < 0.5 * elapsed, (worst, elapsed)
