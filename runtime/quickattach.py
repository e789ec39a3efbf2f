"""The exec websocket of the quick CLI path: runtime.attach's frames over runtime.wsclient."""
from __future__ import annotations

from runtime.attach import AttachStream, split_frames
from runtime.wsclient import WebSocket


class QuickAttach(AttachStream):
    """An attach stream over composerd's websocket (whole frames per binary message), as
    runtime.client.WsAttach, but blocking: its coroutines return when the socket has
    answered (run them with `run_now`). One thread may read while another writes."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.buf = bytearray()
        self.frames: list[tuple[int, bytes]] = []

    async def _send(self, data: bytes) -> None:
        try:
            self.ws.send_binary(data)
        except OSError:  # composerd closed: the output (and EXIT) already sent is still read
            pass

    async def _recv(self) -> tuple[int, bytes] | None:
        while not self.frames:
            msg = self.ws.recv()
            if msg is None:
                return None
            self.buf += msg
            try:
                self.frames = split_frames(self.buf)
            except ValueError:  # an oversize attach frame: the stream is broken
                return None
        return self.frames.pop(0)

    async def close(self) -> None:
        self.ws.close()
