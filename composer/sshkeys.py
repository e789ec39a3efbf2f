"""Key files in Compose's `build.ssh` (`ID=./id_rsa`): BuildKit's CLI serves them from an
agent of its own; composer starts OpenSSH's `ssh-agent` for the build instead, loads the keys
with `ssh-add`, hands the builder that agent's socket, and stops it when the build ends.
The socket lives in a private temporary folder of this process (the daemon, root, reaches it).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator

from composer.convert import ssh_sources
from composer.errors import SpecError
from composer.spec.stack import Stack

READY_TIMEOUT = 5.0  # for ssh-agent to make its socket


@contextlib.asynccontextmanager
async def key_agents(stack: Stack, service: str) -> AsyncIterator[dict[str, str]]:
    """id -> the socket of an agent holding that id's keys, for the build's duration."""
    _, keys = ssh_sources(stack, service)
    if not keys:
        yield {}
        return
    where = f"services.{service}.build.ssh"
    agent_bin, add_bin = shutil.which("ssh-agent"), shutil.which("ssh-add")
    if agent_bin is None or add_bin is None:
        raise SpecError("key files need ssh-agent and ssh-add to serve them: install "
                        "openssh-client, or give an agent's socket instead", file=_file(stack),
                        path=where, service=service)
    folder = tempfile.mkdtemp(prefix="composer-ssh-")
    agents: list[asyncio.subprocess.Process] = []
    try:
        out = {}
        for n, (sid, paths) in enumerate(keys.items()):
            sock = os.path.join(folder, f"{n}.sock")
            proc = await asyncio.create_subprocess_exec(
                agent_bin, "-D", "-a", sock, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            agents.append(proc)
            await _ready(proc, sock, sid, SpecError(f'ssh agent "{sid}": ssh-agent did not start',
                                                    file=_file(stack), path=where, service=service))
            add = await asyncio.create_subprocess_exec(
                add_bin, "-q", *paths, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "SSH_AUTH_SOCK": sock, "SSH_ASKPASS_REQUIRE": "never"})
            _, err = await add.communicate()
            if add.returncode != 0:
                # one line: ssh-add's words without its "@@@ WARNING @@@" banner (a key
                # readable by others is refused by ssh-add, never by BuildKit: chmod 600 it)
                text = " ".join(line.strip() for line in err.decode(errors="replace").splitlines()
                                if line.strip() and not line.startswith("@"))
                why = text or f"exit status {add.returncode}"
                raise SpecError(f'ssh agent "{sid}": ssh-add {" ".join(paths)} failed: {why}',
                                file=_file(stack), path=where, service=service)
            out[sid] = sock
        yield out
    finally:
        for proc in agents:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _file(stack: Stack) -> str | None:
    return os.path.basename(stack.files[0]) if stack.files else None


async def _ready(proc: asyncio.subprocess.Process, sock: str, sid: str, failure: SpecError) -> None:
    """ssh-agent -D makes its socket, then serves: wait for the socket (it has no other
    readiness signal in foreground mode)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    while not os.path.exists(sock):
        if proc.returncode is not None or loop.time() > deadline:
            raise failure
        await asyncio.sleep(0.01)
