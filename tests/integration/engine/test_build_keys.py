"""Compose's build keys on the real engine: what a RUN step sees (network, /dev/shm,
/etc/hosts), the inline Dockerfile, the target stage, build args, labels and extra tags."""
from __future__ import annotations

import asyncio
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


SECRETS_DOCKERFILE = """\
FROM busybox
RUN --mount=type=secret,id=token cat /run/secrets/token > /seen-token
RUN --mount=type=secret,id=env,target=/etc/app/key,mode=0440,uid=1000 \\
    --mount=type=secret,id=absent \\
    stat -c '%a %u' /etc/app/key > /key-mode; cat /etc/app/key > /seen-key; \\
    ls /run/secrets/absent 2>/dev/null || echo skipped > /absent
"""


async def test_build_secrets_reach_run_and_leave_no_trace(engine: Engine, tmp_path: Path) -> None:
    """Compose's build.secrets: RUN --mount=type=secret sees each as a read-only file (its
    target, mode and owner) for that command only; the layers keep neither the content nor
    the mountpoints; an optional missing one is left out, a required one ends the build."""
    req = BuildRequest(context=str(tmp_path), dockerfile_inline=SECRETS_DOCKERFILE,
                       tag="secrets:1", no_cache=True,
                       secrets={"token": "s3cr3t\n", "env": "from-env\n"})
    await _build(engine, req)
    out = await _read(engine, "secrets:1", "s1", "/seen-token", "/key-mode", "/seen-key",
                      "/absent", "/run/secrets/token", "/etc/app/key")
    assert out.splitlines() == ["s3cr3t", "440 1000", "from-env", "skipped",
                                "missing /run/secrets/token", "missing /etc/app/key"]
    image = engine.images.get("secrets:1")
    for layer in image.layers:  # the files only ever existed in the RUN's own mount
        root = Path(engine.images.layers.get(layer).path)
        assert not (root / "run" / "secrets").exists() and not (root / "etc" / "app").exists()
        for f in root.rglob("*"):
            if f.is_file() and not f.is_symlink() and f.stat().st_size < 4096:
                assert b"s3cr3t" not in f.read_bytes() or f.name == "seen-token", f

    required = BuildRequest(context=str(tmp_path), tag="secrets:2", dockerfile_inline=(
        "FROM busybox\nRUN --mount=type=secret,id=missing,required=true true\n"))
    errors = [s.error async for s in engine.build_image(required) if s.error]
    assert errors and "id=missing: the secret is required" in errors[0]


SSH_DOCKERFILE = """\
FROM busybox
RUN --mount=type=ssh \\
    --mount=type=ssh,id=log,target=/dev/log,mode=0660,uid=1000,gid=1001 \\
    --mount=type=ssh,id=absent \\
    echo "$SSH_AUTH_SOCK" > /sock-env; \\
    stat -c '%F %a %u:%g' /run/buildkit/ssh_agent.0 /dev/log > /sock-stat; \\
    ls /run/buildkit/ssh_agent.2 2>/dev/null || echo skipped > /absent; \\
    logger -t build hello-through-the-relay
RUN echo "${SSH_AUTH_SOCK:-unset}" > /later-env
"""


async def test_build_ssh_agent_reaches_run_only(engine: Engine, tmp_path: Path) -> None:
    """Compose's build.ssh: RUN --mount=type=ssh sees the agent as a socket (its target,
    mode and owner) relayed to the agent's own socket, and $SSH_AUTH_SOCK names the first
    one; the next RUN has neither and no layer keeps the socket or its mountpoint. The
    "agent" is a socket server of the test; busybox's `logger` (glibc's syslog() falls back
    to a stream socket) is the client that proves bytes get through."""
    received: list[bytes] = []
    got = asyncio.Event()

    async def agent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(4096))
        got.set()
        writer.close()

    server = await asyncio.start_unix_server(agent, str(tmp_path / "agent.sock"))
    try:
        req = BuildRequest(context=str(tmp_path), dockerfile_inline=SSH_DOCKERFILE, tag="ssh:1",
                           no_cache=True, ssh={"default": str(tmp_path / "agent.sock"),
                                               "log": str(tmp_path / "agent.sock")})
        await _build(engine, req)
        await asyncio.wait_for(got.wait(), 10)
    finally:
        server.close()
        await server.wait_closed()
    assert b"hello-through-the-relay" in b"".join(received)
    out = await _read(engine, "ssh:1", "k1", "/sock-env", "/sock-stat", "/absent", "/later-env")
    assert out.splitlines() == ["/run/buildkit/ssh_agent.0", "socket 600 0:0",
                                "socket 660 1000:1001", "skipped", "unset"]
    for layer in engine.images.get("ssh:1").layers:  # the socket lived in the RUN's mount only
        root = Path(engine.images.layers.get(layer).path)
        assert not (root / "run" / "buildkit").exists() and not (root / "dev" / "log").exists()
        assert not [f for f in root.rglob("*") if f.is_socket()]

    required = BuildRequest(context=str(tmp_path), tag="ssh:2", dockerfile_inline=(
        "FROM busybox\nRUN --mount=type=ssh,id=missing,required=true true\n"))
    errors = [s.error async for s in engine.build_image(required) if s.error]
    assert errors and "id=missing: the ssh agent is required" in errors[0]
