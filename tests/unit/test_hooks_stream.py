"""The hooks on the engine's streaming exec (exec_attach, the one `composer exec` uses): lines
reach the output as the hook writes them, whatever the chunks; a failure names the last
stderr line; and an `up --watch` session lasts until Ctrl-C, not until its containers stop."""
from __future__ import annotations

from typing import Any

import pytest

from composer.cli.attached import AttachedUp
from composer.hooks import HookFailed, exec_hooks
from composer.spec.hooks import ServiceHook
from runtime.api import ContainerInfo
from runtime.attach import ERR, EXIT, OUT, exit_payload
from runtime.types import ContainerSpec
from tests.unit.memengine import ScriptedStream


class StreamingEngine:
    """exec_attach only: the frames a test gives, and the call it got."""

    def __init__(self, frames: list[tuple[int, bytes]]) -> None:
        self.frames = frames
        self.calls: list[dict[str, Any]] = []
        self.streams: list[ScriptedStream] = []

    async def exec_attach(self, ref: str, argv: list[str], **kw: Any) -> ScriptedStream:
        self.calls.append({"ref": ref, "argv": argv, **kw})
        stream = ScriptedStream(list(self.frames))
        self.streams.append(stream)
        return stream


def container() -> ContainerInfo:
    return ContainerInfo(id="c1", name="p-app-1", image="img", spec=ContainerSpec(name="p-app-1", image="img"),
                         state="running")


def hook(**kw: Any) -> ServiceHook:
    return ServiceHook(command=("sh", "-c", "work"), **kw)


async def test_lines_split_across_frames_come_out_whole_and_in_order() -> None:
    engine = StreamingEngine([(OUT, b"one\ntw"), (OUT, b"o\nthr"), (ERR, b"warn\n"),
                              (OUT, b"ee"), (EXIT, exit_payload(0))])
    out: list[tuple[str, str]] = []
    await exec_hooks(engine, container(), "app", "post_start", [hook(privileged=True, user="1")],  # type: ignore[arg-type]
                     lambda source, line: out.append((source, line)))
    assert out == [("p-app-1 ->", "one"), ("p-app-1 ->", "two"), ("p-app-1 ->", "warn"),
                   ("p-app-1 ->", "three")]
    call = engine.calls[0]
    assert call["privileged"] is True and call["stdin"] is False and call["user"] == "1"
    assert engine.streams[0].closed


async def test_a_failing_hook_names_its_last_stderr_line_and_stops_the_rest() -> None:
    engine = StreamingEngine([(OUT, b"migrating\n"), (ERR, b"error: no schema\n"),
                              (EXIT, exit_payload(3))])
    with pytest.raises(HookFailed, match=r"pre_stop\[0\] hook in container p-app-1 exited "
                                         r"with code 3: error: no schema"):
        await exec_hooks(engine, container(), "app", "pre_stop", [hook(), hook()])  # type: ignore[arg-type]
    assert len(engine.calls) == 1


async def test_a_stream_that_breaks_before_its_exit_is_a_failure() -> None:
    engine = StreamingEngine([(OUT, b"half")])
    with pytest.raises(HookFailed, match="broke before it ended"):
        await exec_hooks(engine, container(), "app", "post_start", [hook()])  # type: ignore[arg-type]


def test_a_watching_session_lasts_until_ctrl_c() -> None:
    session = AttachedUp(object(), set(), object(), services=(), timeout=None,  # type: ignore[arg-type]
                         watching=True)
    assert not session.done()  # nothing attached (a rebuild replaced it): still watching
    session.interrupted = 1
    assert session.done()
    plain = AttachedUp(object(), set(), object(), services=(), timeout=None)  # type: ignore[arg-type]
    assert plain.done()
