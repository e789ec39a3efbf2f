"""The CLI's quick path (composer.cli.quick) in a subprocess against the real daemon app and
a fake engine: `ps`, `port`, `logs`, `exec -T` with a stack file import neither asyncio nor
aiohttp, networkx, jsonschema, yaml, the spec loader or the operations layer once the stack
is cached, and say exactly what the slow path (with_project over aiohttp) says -- output,
errors and exit codes. Also QuickClient.exec_attach (the stdlib websocket) on its own."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from pathlib import Path

import pytest

from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.quickattach import QuickAttach
from runtime.quickclient import QuickClient, run_now
from runtime.types import ContainerSpec, PortBinding
from tests.unit.daemon.fake_engine import FakeEngine

STACK = """\
services:
  web:
    image: busybox
    command: ${WEB_COMMAND}
  db:
    image: busybox
    profiles: [debug]
"""
HEAVY = ("asyncio", "aiohttp", "yarl", "networkx", "jsonschema", "yaml", "rich",
         "composer.spec", "composer.operations", "composer.convert", "runtime.client")
LABELS = {"com.docker.compose.project": "demo", "com.docker.compose.service": "web",
          "com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False"}

# the CLI in a subprocess, as the `composer` program (composer.cli.entry); SLOW=1 takes the
# quick path away (what main did before it); files written by the test are trusted at once
# (no 2 s wait for their mtime to age); the modules loaded are printed by an atexit
# function; TEARDOWN=1: an object that says TEARDOWN when the interpreter's teardown frees it
CLI = """\
import atexit, os, sys
import composer.stackcache
composer.stackcache.STABLE_AFTER = 0
if os.environ.get("SLOW"):
    import composer.cli.quick
    composer.cli.quick.quick_client = lambda: None
if os.environ.get("TEARDOWN"):
    class Mark:
        def __del__(self):
            os.write(2, b"TEARDOWN\\n")
    mark = Mark()
atexit.register(lambda: print("MODULES " + " ".join(sorted(sys.modules)), file=sys.stderr))
from composer.cli import entry
entry()
"""


async def cli(socket_path: Path, cwd: Path, *argv: str, stdin: bytes = b"",
              slow: bool = False, teardown: bool = False) -> tuple[int, bytes, str, set[str]]:
    """(exit code, stdout, stderr without the module list, modules loaded)."""
    repo = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ, COMPOSER_RUN=str(socket_path.parent),
               COMPOSER_ROOT=str(cwd / "root"), WEB_COMMAND="sleep 1",
               PYTHONPATH=os.pathsep.join(filter(None, (repo, os.environ.get("PYTHONPATH")))))
    env.pop("SLOW", None)
    env.pop("TEARDOWN", None)
    if slow:
        env["SLOW"] = "1"
    if teardown:
        env["TEARDOWN"] = "1"
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI, *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(p.communicate(stdin), 60)
    lines = err.decode().splitlines()
    mods = next((line for line in lines if line.startswith("MODULES ")), "MODULES ")
    assert p.returncode is not None
    return (p.returncode, out, "\n".join(x for x in lines if x != mods),
            set(mods.split()[1:]))


async def web_container(engine: FakeEngine) -> str:
    info = await engine.create_container(ContainerSpec("demo-web-1", "busybox:latest",
                                                       labels=LABELS))
    await engine.start_container(info.id)
    await engine.add_log(info.id, "hello\n")
    box = engine.containers[info.id]  # hours old (ps says the same in every run); port 80 bound
    box.info = dataclasses.replace(
        box.info, created_at=box.info.created_at - 7200, started_at=time.time() - 7000,
        ports=(PortBinding(80, host_ip="127.0.0.1", host_port=8080),))
    return info.id


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY
                  or any(m.startswith(h + ".") for h in HEAVY))


# argv -> (exit code, what its stdout or stderr says), beside the equality with the slow path
CASES: dict[tuple[str, ...], tuple[int, str]] = {
    ("ps",): (0, "demo-web-1   busybox:latest"),
    ("ps", "-a", "--format", "json"): (0, '"Name":"demo-web-1"'),
    ("ps", "--services"): (0, "web"),
    ("ps", "nosuch"): (1, "no such service: nosuch (known: db, web)"),
    ("port", "web", "80"): (0, "127.0.0.1:8080"),
    ("port", "web", "81"): (1, "no port 81/tcp published for service web"),
    ("logs", "web"): (0, "web-1  | hello"),
    ("logs", "--no-log-prefix", "-t", "web"): (0, "Z hello"),
    ("logs", "nosuch"): (1, "no such service: nosuch"),
    ("exec", "-T", "web", "echo", "hi"): (0, "hi"),
    ("exec", "-T", "web", "false"): (1, ""),
    ("exec", "-T", "web", "nosuch"): (1, "nosuch: command not found"),
    ("exec", "-T", "db", "echo"): (1, "service 'db' is not running"),
    ("exec", "-T", "--index", "2", "web", "echo"): (1, "(container #2)"),
}


@pytest.mark.parametrize("argv", list(CASES))
async def test_quick_verbs_import_nothing_heavy_and_say_what_the_slow_path_says(
        engine: FakeEngine, socket_path: Path, short_tmp: Path, argv: tuple[str, ...]) -> None:
    await web_container(engine)
    (short_tmp / "compose.yaml").write_text(STACK)
    base = ("-f", "compose.yaml", "-p", "demo")
    first = await cli(socket_path, short_tmp, *base, *argv)  # loads the stack, caches it
    assert not {"asyncio", "aiohttp"} & first[3], argv
    quick = await cli(socket_path, short_tmp, *base, *argv)
    assert heavy(quick[3]) == [], argv
    slow = await cli(socket_path, short_tmp, *base, *argv, slow=True)
    assert "aiohttp" in slow[3] or "asyncio" in slow[3]  # the reference did take the slow path
    assert quick[:3] == first[:3] == slow[:3], argv
    code, says = CASES[argv]
    assert quick[0] == code and says in quick[1].decode() + quick[2], quick


async def test_the_quick_path_ends_without_the_interpreters_teardown(
        engine: FakeEngine, socket_path: Path, short_tmp: Path) -> None:
    """composer.cli.entry: after a verb the quick path served, the process ends at once
    (os._exit) -- with all of its buffered output, its exit code and its atexit functions
    (the module list) -- but frees nothing one by one; the slow path ends the normal way."""
    await web_container(engine)
    (short_tmp / "compose.yaml").write_text(STACK)
    base = ("-f", "compose.yaml", "-p", "demo")
    await cli(socket_path, short_tmp, *base, "ps")  # caches the stack
    for argv, code, says in ((("ps",), 0, "demo-web-1   busybox:latest"),
                             (("exec", "-T", "web", "echo", "hi"), 0, "hi"),
                             (("exec", "-T", "web", "false"), 1, "")):
        quick = await cli(socket_path, short_tmp, *base, *argv, teardown=True)
        assert (quick[0], "TEARDOWN" in quick[2]) == (code, False), (argv, quick)
        assert says in quick[1].decode() and quick[3], (argv, quick)  # output, atexit's list
        slow = await cli(socket_path, short_tmp, *base, *argv, teardown=True, slow=True)
        assert (slow[0], slow[1], "TEARDOWN" in slow[2]) == (code, quick[1], True), argv


async def test_down_and_detached_up_end_without_the_teardown_other_slow_verbs_with_it(
        engine: FakeEngine, socket_path: Path, short_tmp: Path) -> None:
    """`down` and `up -d` end when their event loop has (they call
    composer.cli.nothing_left_to_tear_down): with their output, exit code and atexit
    functions, without freeing every module one by one (~20 ms of each); a slow verb that
    does not (`stop`) still ends the normal way."""
    (short_tmp / "compose.yaml").write_text(STACK)
    base = ("-f", "compose.yaml", "-p", "demo")
    for argv, says, teardown in ((("up", "-d"), "Container demo-web-1  Started", False),
                                 (("stop",), "Container demo-web-1  Stopped", True),
                                 (("down",), "Container demo-web-1  Removed", False)):
        code, _, err, modules = await cli(socket_path, short_tmp, *base, *argv, teardown=True)
        assert code == 0 and says in err, (argv, err)
        assert modules and ("TEARDOWN" in err) is teardown, (argv, err)
    assert engine.containers == {}


async def test_exec_relays_piped_stdin_and_its_end(engine: FakeEngine, socket_path: Path,
                                                   short_tmp: Path) -> None:
    await web_container(engine)
    (short_tmp / "compose.yaml").write_text(STACK)
    data = bytes(range(256)) * 4096 + b"end\n"  # 1 MiB and a bit: several messages
    for _ in range(2):  # the first run caches the stack, the second is the quick one
        code, out, err, modules = await cli(socket_path, short_tmp, "-p", "demo", "-f",
                                            "compose.yaml", "exec", "-T", "web", "cat",
                                            stdin=data)
        assert (code, out, err) == (0, data, "")
    assert heavy(modules) == []


async def test_exec_cat_output_is_byte_exact(engine: FakeEngine, socket_path: Path) -> None:
    """QuickAttach itself: 1 MiB in, the same out, then the exit code."""
    cid = await web_container(engine)
    data = os.urandom(1024 * 1024)

    def go() -> tuple[bytes, int | None]:
        q = QuickClient(socket_path)
        stream = run_now(q.exec_attach(cid, ["cat"]))
        assert isinstance(stream, QuickAttach)
        run_now(stream.write(data))
        run_now(stream.close_stdin())
        got = b""
        while (item := run_now(stream.read())) is not None:
            assert item[0] == "stdout"
            got += item[1]
        run_now(stream.close())
        return got, stream.exit_code

    assert await asyncio.to_thread(go) == (data, 0)


async def test_exec_attach_errors_keep_their_class_and_message(
        engine: FakeEngine, socket_path: Path) -> None:
    q = QuickClient(socket_path)
    with pytest.raises(NotFound, match="no such container: nosuch"):
        await asyncio.to_thread(run_now, q.exec_attach("nosuch", ["true"]))
    idle = await engine.create_container(ContainerSpec("idle-1", "busybox:latest"))
    with pytest.raises(Conflict, match="idle-1 is not running"):
        await asyncio.to_thread(run_now, q.exec_attach(idle.id, ["true"]))
    cid = await web_container(engine)
    with pytest.raises(InvalidArgument, match="nosuch: command not found"):
        await asyncio.to_thread(run_now, q.exec_attach(cid, ["nosuch"]))


async def test_the_exit_code_survives_stdin_ending_with_the_command(
        engine: FakeEngine, socket_path: Path) -> None:
    """The race of docs/daemon.md: CLOSE_IN written as composerd ends the stream. The
    blocking session must still read EXIT (code 1 from `false`), every time."""
    from composer.cli.blockingio import blocking_session

    cid = await web_container(engine)

    def once() -> int:
        r, w = os.pipe()
        os.close(w)  # stdin at its end at once: CLOSE_IN races the command's end
        try:
            stream = run_now(QuickClient(socket_path).exec_attach(cid, ["false"]))
            return blocking_session(stream, r)
        finally:
            os.close(r)

    codes = [await asyncio.to_thread(once) for _ in range(30)]
    assert codes == [1] * 30


# -p NAME without a file: the project from its containers' labels (as with_project's
# stack_by_name), from any folder
BY_NAME: dict[tuple[str, ...], tuple[int, str]] = {
    ("ps",): (0, "demo-web-1   busybox:latest"),
    ("ps", "nosuch"): (0, "NAME"),  # from labels, a typo and a removed service look alike
    ("port", "web", "80"): (0, "127.0.0.1:8080"),
    ("logs", "nosuch"): (1, "no such service: nosuch (known: web)"),
    ("exec", "-T", "web", "echo", "hi"): (0, "hi"),
}


@pytest.mark.parametrize("argv", list(BY_NAME))
async def test_a_project_by_name_alone_takes_the_quick_path_too(
        engine: FakeEngine, socket_path: Path, short_tmp: Path, argv: tuple[str, ...]) -> None:
    await web_container(engine)
    other = await engine.create_container(ContainerSpec("other-x-1", "busybox:latest", labels={
        **LABELS, "com.docker.compose.project": "other", "com.docker.compose.service": "x"}))
    await engine.start_container(other.id)
    quick = await cli(socket_path, short_tmp, "-p", "demo", *argv)
    assert heavy(quick[3]) == [], argv
    slow = await cli(socket_path, short_tmp, "-p", "demo", *argv, slow=True)
    assert quick[:3] == slow[:3], argv
    code, says = BY_NAME[argv]
    assert quick[0] == code and says in quick[1].decode() + quick[2], quick


def test_label_services_are_the_services_of_a_stack_from_labels() -> None:
    from composer import labels as L
    from composer.labelstack import stack_from_labels
    from runtime.api import ContainerInfo

    def c(project: str, service: str, **extra: str) -> ContainerInfo:
        labels = {**LABELS, "com.docker.compose.project": project,
                  "com.docker.compose.service": service, **extra}
        return ContainerInfo(id=service + project, name=f"{project}-{service}", image="busybox",
                             spec=ContainerSpec(f"{project}-{service}", "busybox", labels=labels),
                             state="running")

    cs = [c("demo", "web"), c("demo", "db", **{"com.docker.compose.oneoff": "True"}),
          c("other", "x"), c("demo", "hook", **{L.HOOK: "pre_start"}), c("demo", "web")]
    assert L.label_services("demo", cs) == list(stack_from_labels("demo", cs).services) \
        == ["web", "db"]


async def test_exec_decodes_no_container_dataclasses(engine: FakeEngine, socket_path: Path,
                                                     short_tmp: Path) -> None:
    """`exec -T` reads the containers' ids and labels from the listing as it came
    (QuickClient's ContainerRows): runtime.api's dataclasses (~15 ms to import) stay out."""
    await web_container(engine)
    (short_tmp / "compose.yaml").write_text(STACK)
    base = ("-f", "compose.yaml", "-p", "demo")
    argv = (*base, "exec", "-T", "web", "echo", "hi")
    await cli(socket_path, short_tmp, *argv)  # fills the stack cache (its entry names `web`)
    code, out, _, modules = await cli(socket_path, short_tmp, *argv)
    assert (code, out) == (0, b"hi\n")
    assert not {"runtime.api", "runtime.types"} & modules
