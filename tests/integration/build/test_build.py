"""Real builds as root: FROM busybox with RUN (chroot runner), COPY --chown, multi-stage,
ADD of a tarball, the cache, and a failing RUN that leaves nothing behind."""
from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from runtime.images.build.builder import Builder
from runtime.images.build.errors import BuildError
from runtime.storage import whiteout
from tests.integration.build.chroot_runner import ChrootRunner
from tests.unit.build.fakes import DictImageSink, DirLayerSink


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    layers = DirLayerSink(tmp_path / "layers")
    images = DictImageSink()
    runner = ChrootRunner()
    builder = Builder(layers=layers, images=images, runner=runner, state_root=tmp_path / "state")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    yield builder, layers, images, runner, ctx
    with open("/proc/self/mounts") as f:
        assert not [line for line in f if str(tmp_path) in line]


def _merged_file(layers: DirLayerSink, image, path: str) -> Path | None:  # type: ignore[no-untyped-def]
    for layer in reversed(image.layers):
        p = layers.path(layer) / path.lstrip("/")
        if p.exists() or p.is_symlink():
            return None if whiteout.is_whiteout(p) else p
    return None


APP = """\
FROM busybox AS build
ARG GREETING=hello
RUN mkdir -p /out && echo "$GREETING from $(id -u)" > /out/greeting && rm /etc/hostname
COPY --chown=www-data:www-data site/ /var/www/html/
COPY --chown=1234 --chmod=0600 secret.txt /etc/secret.txt
WORKDIR /srv/app
RUN pwd > where && ls -ln /var/www/html/index.html > /out/owner

FROM busybox
COPY --from=build /out/ /result/
COPY --from=build /srv/app/where /result/
ADD bundle.tar.gz /opt/
USER www-data
CMD ["cat", "/result/greeting"]
"""


def _context(ctx: Path) -> None:
    (ctx / "site").mkdir()
    (ctx / "site/index.html").write_text("<h1>hi</h1>\n")
    (ctx / "secret.txt").write_text("s3cret\n")
    (ctx / "Dockerfile").write_text(APP)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"#!/bin/sh\necho tool\n"
        info = tarfile.TarInfo("tool/bin/tool")
        info.size, info.mode, info.uid, info.gid = len(data), 0o755, 7, 8
        tf.addfile(info, io.BytesIO(data))
    (ctx / "bundle.tar.gz").write_bytes(buf.getvalue())


async def test_build_run_copy_chown_multistage_add_and_cached_rebuild(setup) -> None:  # type: ignore[no-untyped-def]
    builder, layers, images, runner, ctx = setup
    _context(ctx)
    lines: list[str] = []
    t0 = time.monotonic()
    first = await builder.build(ctx, tag="app:1", build_args={"GREETING": "hey"}, progress=lines.append)
    cold = time.monotonic() - t0
    build_stage = images.get("busybox:latest")
    assert build_stage is not None  # made locally on first use
    image = images.get("app:1")
    assert image.config.user == "www-data" and image.config.cmd == ("cat", "/result/greeting")
    greeting = _merged_file(layers, image, "/result/greeting")
    assert greeting is not None and greeting.read_text() == "hey from 0\n"
    assert _merged_file(layers, image, "/result/where").read_text() == "/srv/app\n"
    owner_line = _merged_file(layers, image, "/result/owner").read_text().split()
    assert owner_line[2:4] == ["33", "33"]  # www-data:www-data from the image's /etc/passwd
    tool = _merged_file(layers, image, "/opt/tool/bin/tool")
    st = os.stat(tool)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (7, 8, 0o755)
    assert any(line == "Step 3/13 : " + APP.splitlines()[2] for line in lines)

    # the build stage: RUN's diff has a whiteout for the deleted /etc/hostname
    b = await builder.build(ctx, tag="b", target="build", build_args={"GREETING": "hey"})
    bimg = images.get("b")
    assert _merged_file(layers, bimg, "/etc/hostname") is None
    assert any(whiteout.is_whiteout(layers.path(layer) / "etc/hostname") for layer in bimg.layers)
    secret = _merged_file(layers, bimg, "/etc/secret.txt")
    st = os.stat(secret)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1234, 1234, 0o600)
    assert b

    # unchanged rebuild: every file step from the cache, no RUN executed, well under 1 s
    runs_before = len(runner.calls)
    lines.clear()
    t1 = time.monotonic()
    again = await builder.build(ctx, tag="app:1", build_args={"GREETING": "hey"}, progress=lines.append)
    warm = time.monotonic() - t1
    print(f"\ncold build {cold:.2f}s, cached rebuild {warm:.3f}s")
    assert again == first
    assert len(runner.calls) == runs_before
    assert sum(line == " ---> Using cache" for line in lines) == 8  # 2 RUN, 2 COPY, WORKDIR, 2 COPY --from, ADD
    assert warm < 1.0

    # a different build arg invalidates the RUN that sees it
    lines.clear()
    await builder.build(ctx, tag="app:2", build_args={"GREETING": "yo"}, progress=lines.append)
    assert _merged_file(layers, images.get("app:2"), "/result/greeting").read_text() == "yo from 0\n"
    assert list((builder.dir / "tmp").iterdir()) == []


async def test_failing_run_leaves_nothing_behind(setup) -> None:  # type: ignore[no-untyped-def]
    builder, layers, images, runner, ctx = setup
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN echo ok > /ok\n\nRUN echo partial > /half && echo 'it broke' >&2 && exit 3\nRUN echo never\n")
    lines: list[str] = []
    with pytest.raises(BuildError) as ei:
        await builder.build(ctx, tag="bad", progress=lines.append)
    err = ei.value
    assert str(err).startswith("Dockerfile:4: RUN echo partial > /half && echo 'it broke' >&2 && exit 3 failed with exit code 3")
    assert err.exit_code == 3 and "it broke" in err.output and "it broke" in str(err)
    assert images.get("bad") is None
    assert list((builder.dir / "tmp").iterdir()) == []  # no step dir, no upper, no overlay work dir
    layer_dirs = [layers.path(x) for x in layers.added]
    assert not any((d / "half").exists() for d in layer_dirs)  # no half layer
    assert len(runner.calls) == 2
    # the steps before the failure are cached
    lines.clear()
    with pytest.raises(BuildError):
        await builder.build(ctx, tag="bad", progress=lines.append)
    assert lines.count(" ---> Using cache") == 1


async def test_run_exec_form_user_and_env(setup) -> None:  # type: ignore[no-untyped-def]
    builder, layers, images, runner, ctx = setup
    (ctx / "Dockerfile").write_text(
        'FROM busybox\nENV A=1\nSHELL ["/bin/sh", "-ec"]\nRUN ["/bin/sh", "-c", "echo $A:$PATH > /env"]\n'
        "USER 65534\nRUN id -u > /tmp/uid\n")
    await builder.build(ctx, tag="e")
    image = images.get("e")
    assert _merged_file(layers, image, "/env").read_text().startswith("1:/usr/local/sbin")
    assert _merged_file(layers, image, "/tmp/uid").read_text() == "65534\n"
    assert runner.calls[-1] == ["/bin/sh", "-ec", "id -u > /tmp/uid"]
