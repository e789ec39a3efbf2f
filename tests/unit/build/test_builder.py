"""The builder with fake sinks and no runner: multi-stage COPY/ENV/WORKDIR/... builds, the
cache, targets, build args. No root needed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.images.build.builder import Builder
from runtime.images.build.cache import state_digest, step_key
from runtime.images.build.errors import BuildError
from runtime.images.build.interfaces import BuildImage, ImageConfig, RunResult
from runtime.types import Healthcheck
from tests.looplag import worst_lag
from tests.unit.build.fakes import DictImageSink, DirLayerSink

DOCKERFILE = """\
ARG BASE=base:1
FROM $BASE AS build
ARG VERSION=0.1
ENV APP_HOME=/opt/app VERSION=${VERSION}
WORKDIR $APP_HOME
COPY src/ ./src/
COPY *.txt ./
RUN-LESS-LINE-PLACEHOLDER

FROM scratch AS final
COPY --from=build /opt/app/src /app/
COPY --from=0 /opt/app/a.txt /app/a-copy.txt
COPY --from=build /etc/os-release /etc/
ENV PATH=/bin
LABEL org.example.version=$VERSION
USER 1000:1000
EXPOSE 8080
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=10s CMD ["/bin/check"]
ENTRYPOINT ["/app/main.py"]
CMD ["--serve"]
"""


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    layers = DirLayerSink(tmp_path / "layers")
    images = DictImageSink()
    base_root = tmp_path / "base-rootfs"
    (base_root / "etc").mkdir(parents=True)
    (base_root / "etc/os-release").write_text("ID=fake\n")
    (base_root / "usr/bin").mkdir(parents=True)
    os.symlink("usr/bin", base_root / "bin")
    images.put(BuildImage(layers=(layers.add_dir(base_root),),
                          config=ImageConfig(env=("PATH=/usr/bin",), cmd=("sh",))), tags=("base:1",))
    ctx = tmp_path / "ctx"
    (ctx / "src/pkg").mkdir(parents=True)
    (ctx / "src/main.py").write_text("print('hi')\n")
    os.chmod(ctx / "src/main.py", 0o755)
    (ctx / "src/pkg/mod.py").write_text("x = 1\n")
    (ctx / "a.txt").write_text("a\n")
    (ctx / "b.txt").write_text("b\n")
    (ctx / "ignored.txt").write_text("no\n")
    (ctx / ".dockerignore").write_text("ignored.txt\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE.replace("RUN-LESS-LINE-PLACEHOLDER\n", ""))
    builder = Builder(layers=layers, images=images, runner=None, state_root=tmp_path / "state")
    return builder, layers, images, ctx


def _files(layers: DirLayerSink, image: BuildImage) -> dict[str, str]:
    out: dict[str, str] = {}
    for layer in image.layers:
        root = layers.path(layer)
        for p in root.rglob("*"):
            if p.is_file():
                out["/" + str(p.relative_to(root))] = p.read_text()
    return out


async def test_multi_stage_build(env) -> None:  # type: ignore[no-untyped-def]
    builder, layers, images, ctx = env
    lines: list[str] = []
    image_id = await builder.build(ctx, tag="app:1", progress=lines.append)
    image = images.get("app:1")
    assert image is not None and images.get(image_id) == image
    files = _files(layers, image)
    assert files == {"/app/main.py": "print('hi')\n", "/app/pkg/mod.py": "x = 1\n",
                     "/app/a-copy.txt": "a\n", "/etc/os-release": "ID=fake\n"}
    assert os.stat(layers.path(image.layers[0]) / "app/main.py").st_mode & 0o777 == 0o755
    cfg = image.config
    assert cfg.env == ("PATH=/bin",)  # stage 2 starts from scratch: nothing inherited
    assert cfg.labels == {"org.example.version": ""}  # ARG VERSION is not in scope in stage 2
    assert cfg.user == "1000:1000" and cfg.exposed_ports == ("8080/tcp",) and cfg.volumes == ("/data",)
    assert cfg.stop_signal == "SIGINT"
    assert cfg.healthcheck == Healthcheck(test=("CMD", "/bin/check"), interval=10.0)
    assert cfg.entrypoint == ("/app/main.py",) and cfg.cmd == ("--serve",)
    assert len(image.layers) == 3  # one per COPY
    steps = [line for line in lines if line.startswith("Step ")]
    assert steps[0] == "Step 1/19 : FROM $BASE AS build" and steps[-1].startswith("Step 19/19 : CMD")
    assert not any("Using cache" in line for line in lines)


async def test_build_stage_config_and_workdir(env) -> None:  # type: ignore[no-untyped-def]
    builder, layers, images, ctx = env
    await builder.build(ctx, tag="b", target="build", build_args={"VERSION": "2.0"})
    image = images.get("b")
    assert image.config.env == ("PATH=/usr/bin", "APP_HOME=/opt/app", "VERSION=2.0")
    assert image.config.working_dir == "/opt/app" and image.config.cmd == ("sh",)
    files = _files(layers, image)
    assert files["/opt/app/src/main.py"] == "print('hi')\n"
    assert files["/opt/app/a.txt"] == "a\n" and files["/opt/app/b.txt"] == "b\n"
    assert "/opt/app/ignored.txt" not in files


async def test_unchanged_rebuild_uses_cache_and_changes_invalidate(env) -> None:  # type: ignore[no-untyped-def]
    builder, layers, images, ctx = env
    first = await builder.build(ctx, tag="app:1")
    n_layers = len(layers.added)
    lines: list[str] = []
    assert await builder.build(ctx, tag="app:1", progress=lines.append) == first
    assert len(layers.added) == n_layers
    assert sum("Using cache" in line for line in lines) == 6  # WORKDIR, 2 COPY, 3 COPY --from
    (ctx / "b.txt").write_text("b2\n")
    lines.clear()
    second = await builder.build(ctx, tag="app:1", progress=lines.append)
    # COPY *.txt of stage 1 runs again; COPY --from keys on the source stage's state, so
    # the final stage's copies run again too (conservative: never a stale file)
    assert sum("Using cache" in line for line in lines) == 2  # WORKDIR, COPY src/
    assert _files(layers, images.get("app:1"))["/app/a-copy.txt"] == "a\n"
    assert second != first
    lines.clear()
    await builder.build(ctx, tag="app:1", progress=lines.append, no_cache=True)
    assert not any("Using cache" in line for line in lines)


async def test_stale_cache_entry_is_rebuilt(env) -> None:  # type: ignore[no-untyped-def]
    builder, layers, images, ctx = env
    await builder.build(ctx, tag="app:1")
    for layer in list(layers.added[1:]):
        layers.remove(layer)
    lines: list[str] = []
    await builder.build(ctx, tag="app:1", progress=lines.append)
    assert not any("Using cache" in line for line in lines)
    assert _files(layers, images.get("app:1"))["/app/a-copy.txt"] == "a\n"


async def test_copy_into_symlinked_dir_keeps_the_symlink(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    builder, layers, images, ctx = env
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY a.txt /bin/\nCOPY b.txt /new/dir/b\n")
    await builder.build(ctx, tag="s")
    image = images.get("s")
    top = layers.path(image.layers[-2])
    assert (top / "usr/bin/a.txt").read_text() == "a\n" and not (top / "bin").exists()
    assert (layers.path(image.layers[-1]) / "new/dir/b").read_text() == "b\n"


async def test_errors(env) -> None:  # type: ignore[no-untyped-def]
    builder, layers, images, ctx = env
    cases = {
        "FROM base:1\n\nCOPY missing.txt /x\n": "Dockerfile:3: COPY: 'missing.txt' not found in the build context",
        "FROM base:1\nCOPY ignored.txt /x\n": "Dockerfile:2: COPY: 'ignored.txt' not found",
        "FROM base:1\nCOPY a.txt b.txt /x\n": "Dockerfile:2: COPY with more than one source needs a directory",
        "FROM base:1\nADD https://example.com/f.tgz /x/\n": "Dockerfile:2: ADD https://example.com/f.tgz: remote sources are not supported offline",
        "FROM base:1\nCOPY --chown=nobody a.txt /x\n": "Dockerfile:2: --chown=nobody: no user 'nobody'",
        "FROM nosuch:image\n": "Dockerfile:1: base image 'nosuch:image' is not in the image store",
        "FROM base:1\nCOPY --from=nostage /a /b\n": "Dockerfile:2: COPY --from=nostage: no such stage or image",
        "FROM base:1\nRUN true\n": "Dockerfile:2: RUN needs a build runner",
    }
    for text, msg in cases.items():
        (ctx / "Dockerfile").write_text(text)
        with pytest.raises(BuildError) as ei:
            await builder.build(ctx, tag="x")
        assert str(ei.value).startswith(msg), str(ei.value)
    with pytest.raises(BuildError, match="target stage 'nope' not found"):
        (ctx / "Dockerfile").write_text("FROM base:1 AS a\n")
        await builder.build(ctx, target="nope")
    assert list((builder.dir / "tmp").iterdir()) == []


async def test_only_needed_stages_are_built(env) -> None:  # type: ignore[no-untyped-def]
    builder, layers, images, ctx = env
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS unused\nCOPY missing /x\nFROM base:1 AS dep\nCOPY a.txt /a\n"
        "FROM scratch\nCOPY --from=dep /a /a\n")
    lines: list[str] = []
    await builder.build(ctx, tag="t", progress=lines.append)
    assert [line for line in lines if line.startswith("Step")][0] == "Step 1/4 : FROM base:1 AS dep"


def test_cache_keys_are_stable() -> None:
    img = BuildImage(layers=("l1", "l2"), config=ImageConfig(env=("A=1",), labels={"b": "2", "a": "1"}))
    same = BuildImage(layers=("l1", "l2"), config=ImageConfig(env=("A=1",), labels={"a": "1", "b": "2"}))
    assert state_digest(img) == state_digest(same)
    assert state_digest(img) != state_digest(BuildImage(layers=("l1",), config=img.config))
    k = step_key(state_digest(img), "COPY a /b", {"context": "d1"})
    assert k == step_key(state_digest(same), "COPY a /b", {"context": "d1"})
    # keys live on disk across runs: they must not depend on dict order, hash seeds, etc.
    assert k == "70deb06027aecca68cfe3189d00f4f56ae7ecba53374e66e332e5c9bb61ffcc1"
    assert k != step_key(state_digest(img), "COPY a /b", {"context": "d2"})
    assert k != step_key(state_digest(img), "COPY a /c", {"context": "d1"})


async def test_inline_dockerfile_labels_tags(env) -> None:  # type: ignore[no-untyped-def]
    """Compose's dockerfile_inline is the Dockerfile (not ./Dockerfile of the context), its
    build.labels join the image's, build.tags name it too."""
    builder, layers, images, ctx = env
    inline = "FROM base:1\nLABEL from.file=yes\nCOPY a.txt /inline.txt\n"
    image_id = await builder.build(ctx, tag=["app:inline", "app:extra"], dockerfile_text=inline,
                                   labels={"from.compose": "1", "from.file": "overridden"})
    image = images.get("app:inline")
    assert image is not None and images.get("app:extra") == image and images.get(image_id) == image
    assert _files(layers, image)["/inline.txt"] == "a\n"  # not the context's Dockerfile
    assert image.config.labels == {"from.file": "overridden", "from.compose": "1"}
    with pytest.raises(BuildError, match="Dockerfile \\(inline\\)"):
        await builder.build(ctx, tag="bad", dockerfile_text="FROM base:1\nRUNN x\n")


async def test_pull_fetches_each_base_image_first(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, layers, images, ctx = env
    pulled: list[str] = []

    async def puller(ref: str) -> None:
        pulled.append(ref)

    builder = Builder(layers=layers, images=images, runner=None, state_root=tmp_path / "s2", puller=puller)
    await builder.build(ctx, tag="p", dockerfile_text="FROM base:1 AS a\nFROM a\n")
    assert pulled == []  # pull: false uses the store as it is
    await builder.build(ctx, tag="p", dockerfile_text="FROM base:1 AS a\nFROM a\n", pull=True)
    assert pulled == ["base:1"]  # the image FROM, never a stage

    async def offline(ref: str) -> None:
        raise OSError("connection refused")

    builder = Builder(layers=layers, images=images, runner=None, state_root=tmp_path / "s3", puller=offline)
    with pytest.raises(BuildError, match="pull of base:1 failed \\(pull: true\\): connection refused"):
        await builder.build(ctx, tag="p", dockerfile_text="FROM base:1\n", pull=True)


async def test_named_contexts_stand_for_images_and_directories(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Compose's additional_contexts: FROM NAME / COPY --from=NAME use the image or folder."""
    builder, layers, images, ctx = env
    other = tmp_path / "other-dir"
    (other / "sub").mkdir(parents=True)
    (other / "sub/file.txt").write_text("from the named dir\n")
    inline = ("FROM base AS stage\nCOPY --from=assets sub/file.txt /copied.txt\n"
              "COPY --from=img /etc/os-release /os-release\n")
    await builder.build(ctx, tag="named", dockerfile_text=inline,
                        named_contexts={"base": "image:base:1", "img": "image:base:1",
                                        "assets": f"dir:{other}"})
    files = _files(layers, images.get("named"))
    assert files["/copied.txt"] == "from the named dir\n" and files["/os-release"] == "ID=fake\n"
    # the folder's content is part of the cache key
    (other / "sub/file.txt").write_text("changed\n")
    await builder.build(ctx, tag="named", dockerfile_text=inline,
                        named_contexts={"base": "image:base:1", "img": "image:base:1",
                                        "assets": f"dir:{other}"})
    assert _files(layers, images.get("named"))["/copied.txt"] == "changed\n"
    with pytest.raises(BuildError, match="that build context is a directory"):
        await builder.build(ctx, tag="x", dockerfile_text="FROM assets\n",
                            named_contexts={"assets": f"dir:{other}"})


async def test_hashing_a_big_context_leaves_the_event_loop_free(tmp_path: Path) -> None:
    """composerd's loop also answers the stack's DNS: a `COPY .` of a big context is hashed
    in a thread. Measured on a cache hit, where hashing is nearly all the build does."""

    layers = DirLayerSink(tmp_path / "layers")
    images = DictImageSink()
    (tmp_path / "base").mkdir()
    images.put(BuildImage(layers=(layers.add_dir(tmp_path / "base"),), config=ImageConfig()),
               tags=("base:1",))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with open(ctx / "big.bin", "wb") as f:
        f.truncate(384 << 20)  # sparse: hashing it reads 384 MiB of zeros all the same
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY big.bin /big.bin\n")
    builder = Builder(layers=layers, images=images, runner=None, state_root=tmp_path / "state")
    await builder.build(ctx, tag="big:1", progress=lambda _: None)

    lines: list[str] = []
    _, worst, elapsed = await worst_lag(builder.build(ctx, tag="big:1", progress=lines.append))
    assert any("Using cache" in line for line in lines)
    # hashed on the loop, one tick waits about as long as the whole build
    assert worst < 0.5 * elapsed, (worst, elapsed)


class RecordingRun:
    """A RunStep that records what each RUN asked for and writes nothing."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    async def run(self, **kw: object) -> RunResult:
        self.calls.append(kw)
        return RunResult(0, "")


ENTITLED = """\
FROM base:1 AS tools
RUN --security=insecure never-built
FROM base:1
RUN plain
RUN --security=insecure mount -t tmpfs t /mnt
RUN --network=host wget http://127.0.0.1/
RUN --network=none --security=sandbox offline
"""


async def test_runs_needing_an_entitlement_not_granted_fail_before_any_step(
        env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """As BuildKit checks the whole graph before solving: RUN --security=insecure without
    security.insecure (Compose's build.privileged) is one line naming the line and the key
    that grants it, and no RUN has run; RUN --network=host likewise needs network.host. A
    stage the target does not need is not checked (it is not built)."""
    _, layers, images, ctx = env
    runner = RecordingRun()
    builder = Builder(layers=layers, images=images, runner=runner, state_root=tmp_path / "state")
    (ctx / "Dockerfile").write_text(ENTITLED)
    with pytest.raises(BuildError) as ei:
        await builder.build(ctx, tag="x", entitlements=("network.host",))
    assert str(ei.value) == (
        "Dockerfile:5: RUN --security=insecure needs the security.insecure entitlement, which "
        "this build was not granted: set build.privileged: true (or build.entitlements: "
        "[security.insecure]) on the service")
    with pytest.raises(BuildError) as ei:
        await builder.build(ctx, tag="x", entitlements=("security.insecure",))
    assert str(ei.value) == (
        "Dockerfile:6: RUN --network=host needs the network.host entitlement, which this build "
        "was not granted: set build.entitlements: [network.host] (or build.network: host) on "
        "the service")
    assert runner.calls == []

    await builder.build(ctx, tag="x", entitlements=("security.insecure", "network.host"))
    asked = [(c["argv"][-1], c.get("security", "sandbox"), c.get("network", "default"))  # type: ignore[index]
             for c in runner.calls]
    assert asked == [("plain", "sandbox", "default"),
                     ("mount -t tmpfs t /mnt", "insecure", "default"),
                     ("wget http://127.0.0.1/", "sandbox", "host"),
                     ("offline", "sandbox", "none")]
    # the flags are part of the step: the same command in the sandbox is another cache entry
    (ctx / "Dockerfile").write_text("FROM base:1\nRUN --security=insecure same\nRUN same\n")
    runner.calls.clear()
    await builder.build(ctx, tag="y", entitlements=("security.insecure",))
    assert [c.get("security", "sandbox") for c in runner.calls] == ["insecure", "sandbox"]
