"""Compose's build keys on the real engine: what a RUN step sees (network, /dev/shm,
/etc/hosts), the inline Dockerfile, the target stage, build args, labels and extra tags."""
from __future__ import annotations

from pathlib import Path

from runtime.api import BuildRequest
from runtime.engine import Engine
from runtime.types import ContainerSpec

DOCKERFILE = """\
FROM busybox AS probe
ARG FROM_COMPOSE=dockerfile-default
ARG NOT_GIVEN=dockerfile-default
RUN echo $(ls /sys/class/net) > /nets; cat /sys/class/net/lo/operstate > /lo; \\
    df -k /dev/shm | tail -1 | awk '{print $2}' > /shm; grep -c local /etc/hosts > /hosts; \\
    grep 10.1.2.3 /etc/hosts >> /hosts; echo "$FROM_COMPOSE $NOT_GIVEN" > /args
FROM probe AS final
RUN touch /final
"""


async def _build(engine: Engine, req: BuildRequest) -> tuple[str, list[str]]:
    lines, image = [], ""
    async for step in engine.build_image(req):
        assert not step.error, step.error
        lines.append(step.line)
        image = step.image_id or image
    return image, lines


async def _read(engine: Engine, image: str, name: str, *paths: str) -> str:
    """The files' contents, or `missing PATH` for one that is not there."""
    script = "; ".join(f"cat {p} 2>/dev/null || echo missing {p}" for p in paths)
    await engine.create_container(ContainerSpec(name=name, image=image, command=("sh", "-c", script)))
    await engine.start_container(name)
    assert await engine.wait_container(name) == 0
    return "".join([line.data async for line in engine.logs(name)])


async def test_build_keys_shape_the_run_steps_and_the_image(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN touch /from-the-context-dockerfile\n")
    req = BuildRequest(
        context=str(tmp_path), dockerfile_inline=DOCKERFILE, tag="keys:1", tags=("keys:alias",),
        target="probe", build_args={"FROM_COMPOSE": "compose"}, labels={"org.example.team": "web"},
        network="none", shm_size=8 << 20, extra_hosts=(("db.local", "10.1.2.3"),), no_cache=True,
    )
    image_id, _ = await _build(engine, req)
    info = await engine.inspect_image("keys:alias")
    assert info.id == image_id and "keys:1" in ",".join(info.tags)
    assert engine.images.get("keys:1").config.labels["org.example.team"] == "web"
    out = await _read(engine, "keys:1", "c1", "/nets", "/lo", "/shm", "/hosts", "/args")
    nets, lo, shm, hosts_count, hosts_line, args = out.splitlines()
    assert nets.split() == ["lo"] and lo == "unknown"  # network: none -> only lo, and it is up
    assert shm == str(8 << 10)  # shm_size 8 MiB, in KiB
    assert int(hosts_count) >= 1 and hosts_line.split() == ["10.1.2.3", "db.local"]
    assert args == "compose dockerfile-default"  # an arg Compose does not give keeps its default
    probe = await _read(engine, "keys:1", "c2", "/from-the-context-dockerfile", "/final")
    # the inline Dockerfile, not the context's; the target stage, not the last one
    assert probe.splitlines() == ["missing /from-the-context-dockerfile", "missing /final"]

    # network: host (and the default): the RUN step sees the host's interfaces
    host_req = BuildRequest(context=str(tmp_path), dockerfile_inline=DOCKERFILE, tag="keys:host",
                            target="final", network="host")
    await _build(engine, host_req)
    nets = (await _read(engine, "keys:host", "c3", "/nets", "/final")).splitlines()
    assert nets[1:] == []  # /final is there (empty): the last stage was built
    assert "lo" in nets[0].split() and len(nets[0].split()) > 1


async def test_named_contexts_through_the_engine(engine: Engine, tmp_path: Path) -> None:
    """additional_contexts: service:base becomes image:<its tag>, a folder becomes dir:PATH."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "a.txt").write_text("asset\n")
    await _build(engine, BuildRequest(context=str(tmp_path), tag="proj-base",
                                      dockerfile_inline="FROM busybox\nRUN echo base > /base\n"))
    await _build(engine, BuildRequest(
        context=str(tmp_path), tag="proj-app",
        dockerfile_inline="FROM base\nCOPY --from=assets a.txt /a.txt\n",
        named_contexts={"base": "image:proj-base", "assets": f"dir:{tmp_path / 'assets'}"}))
    out = await _read(engine, "proj-app", "n1", "/base", "/a.txt")
    assert out.splitlines() == ["base", "asset"]
