"""The caller's terminal during an interactive session (`exec -it`, `attach`, `run`).
Standard library only: the CLI imports it at start."""
from __future__ import annotations

import asyncio
import contextlib
import signal
import termios
import tty
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def raw_terminal(fd: int, on_resize: Callable[[], None]) -> Iterator[None]:
    """The terminal on `fd` in raw mode (the container's line discipline does the work);
    `on_resize` now and on every SIGWINCH; the terminal's settings restored on the way out.
    Needs a running event loop."""
    loop = asyncio.get_running_loop()
    saved = termios.tcgetattr(fd)
    # TCSANOW, not setraw's default TCSAFLUSH: what the user typed before we got here is
    # kept and goes to the container (as the docker CLI's raw mode), not thrown away
    tty.setraw(fd, termios.TCSANOW)
    try:
        on_resize()
        loop.add_signal_handler(signal.SIGWINCH, on_resize)
        yield
    finally:
        loop.remove_signal_handler(signal.SIGWINCH)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
