"""Running a service's lifecycle hooks on the engine, with Compose's semantics.

- `pre_start`: each hook in order, in a container of its own (composer.convert.
  hook_container_spec: the service container's volumes and networks), run to completion
  and removed; a non-zero exit fails the service's start, whose container stays created.
- `post_start`: exec'd in the container right after it started, in order; a failure fails
  the service's start (the container keeps running, as in Compose).
- `pre_stop`: exec'd in the container before `stop`, `down` or `restart` stops it; a
  failure fails that stop and the container keeps running (as in Compose).

Every exec goes through the engine's streaming exec (`exec_attach`, the one `composer exec`
uses: output arrives as it is written), so a hook runs with the
container's own confinement (user unless the hook names one, capabilities, no_new_privs,
seccomp, AppArmor, cgroup); `privileged: true` adds every capability, as
`docker exec --privileged`. Output goes to a `HookOutput(source, line)` callback: the
attached `up` prints it as `<container> -> | line` (Compose's `sample-1 ->`), a pre_start
hook's as `<service> pre_start[i] -> | line`.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from composer import labels as L
from composer.errors import ComposerError
from composer.spec.hooks import ServiceHook
from runtime.api import ContainerInfo, EngineAPI
from runtime.errors import EngineError, NotFound
from runtime.types import ContainerSpec

HookOutput = Callable[[str, str], None]  # (source, line)
PRE_START = "pre_start"
TAIL_CHARS = 300


class HookFailed(ComposerError):
    """A hook exited non-zero (or could not run): one line naming service, hook and cause."""


def no_output(source: str, line: str) -> None:
    pass


def tail(*texts: str) -> str:
    """The last non-empty line of the first text that has one (stderr before stdout, as
    Compose prefers it), cut to one short line for the error message."""
    for text in texts:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if lines:
            last = lines[-1]
            return last if len(last) <= TAIL_CHARS else "..." + last[-TAIL_CHARS:]
    return ""


def _failure(prefix: str, code: int, last: str) -> HookFailed:
    return HookFailed(f"{prefix} exited with code {code}" + (f": {last}" if last else ""))


async def exec_hooks(engine: EngineAPI, c: ContainerInfo, service: str, kind: str,
                     hooks: Sequence[ServiceHook], output: HookOutput = no_output) -> None:
    """`post_start` / `pre_stop`: each hook exec'd in `c`, in order; the first failure
    raises HookFailed (the later hooks do not run, as in Compose)."""
    for i, hook in enumerate(hooks):
        assert hook.command is not None  # the spec requires it for these hooks
        where = f"service {service}: {kind}[{i}] hook in container {c.name}"
        try:
            code, last = await _exec_streamed(engine, c, hook, output)
        except EngineError as e:
            raise HookFailed(f"{where}: {e}") from e
        if code is None:
            raise HookFailed(f"{where}: the connection to it broke before it ended")
        if code != 0:
            raise _failure(where, code, last)


async def _exec_streamed(engine: EngineAPI, c: ContainerInfo, hook: ServiceHook,
                         output: HookOutput) -> tuple[int | None, str]:
    """One hook on the engine's streaming exec (exec_attach, no stdin): each line goes to
    `output` as the command writes it; returns its exit code (None: the stream broke
    before its end) and the line for an error
    (stderr's last before stdout's, as Compose)."""
    assert hook.command is not None
    source = f"{c.name} ->"
    stream = await engine.exec_attach(
        c.id, list(hook.command), user=hook.user, env=dict(hook.environment) or None,
        workdir=hook.working_dir, stdin=False, privileged=hook.privileged)
    pending = {"stdout": b"", "stderr": b""}
    seen: dict[str, deque[str]] = {"stdout": deque(maxlen=1), "stderr": deque(maxlen=1)}

    def emit(name: str, raw: bytes) -> None:
        line = raw.decode(errors="replace").rstrip("\r")
        output(source, line)
        if line.strip():
            seen[name].append(line)

    try:
        while (item := await stream.read()) is not None:
            name, data = item
            *lines, pending[name] = (pending.get(name, b"") + data).split(b"\n")
            for raw in lines:
                emit(name, raw)
    finally:
        await stream.close()
    for name, rest in pending.items():
        if rest:
            emit(name, rest)
    return stream.exit_code, tail(*("\n".join(seen[n]) for n in ("stderr", "stdout")))


def hook_labels(project: str, service: str) -> dict[str, str]:
    """What marks a pre_start hook's container (Compose's labels for it)."""
    return {L.PROJECT: project, L.SERVICE: service, L.HOOK: PRE_START,
            L.VERSION: L.COMPOSER_VERSION}


async def remove_hook_containers(engine: EngineAPI, project: str, service: str | None = None) -> None:
    """Containers of pre_start hooks an interrupted run left behind (of one service, or all)."""
    scope = {L.PROJECT: project, L.HOOK: PRE_START}
    if service is not None:
        scope[L.SERVICE] = service
    for c in await engine.list_containers(all=True, labels=scope):
        try:
            await engine.remove_container(c.id, force=True, volumes=True)
        except NotFound:
            pass


async def run_pre_start(engine: EngineAPI, service: str, specs: Sequence[ContainerSpec],
                        output: HookOutput = no_output) -> None:
    """Each hook container of `specs` (composer.convert.hook_container_spec), in order: created,
    started, its output followed, awaited and removed (its own anonymous volumes with it;
    the service's stay, they are in use). A non-zero exit raises HookFailed and the rest
    do not run."""
    for i, spec in enumerate(specs):
        source = f"{service} {PRE_START}[{i}] ->"
        info = await engine.create_container(spec)
        last: deque[str] = deque(maxlen=1)
        try:
            try:
                await engine.start_container(info.id)
            except EngineError as e:
                raise HookFailed(f"service {service}: {PRE_START}[{i}] could not start: {e}") from e
            async for entry in engine.logs(info.id, follow=True):
                for line in entry.data.splitlines():
                    output(source, line)
                    if line.strip():
                        last.append(line.strip())
            code = await engine.wait_container(info.id)
        finally:
            try:
                await engine.remove_container(info.id, force=True, volumes=True)
            except NotFound:
                pass
        if code != 0:
            raise _failure(f"service {service}: {PRE_START}[{i}]", code, tail(*last))
