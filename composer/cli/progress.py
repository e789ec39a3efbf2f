"""Progress of up/down: a live per-container display on a terminal (rich), plain lines otherwise.

Both take `(object, status)` calls from composer.operations, e.g. ("Container lnmp-db-1",
"Started"). The plain form is what scripts and CI logs see, byte for byte as docker compose
v2 prints it when stderr is not a terminal: ` Container lnmp-db-1  Started` (a space, the
object, an empty detail, the status: Go's Println of the three); the live form redraws one
line per object with a spinner until its status is final.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

DONE = {"Started", "Running", "Healthy", "Stopped", "Removed", "Created", "Built", "Killed",
        "Paused", "Unpaused", "Recreated", "Pulled", "Pull complete", "Already exists", "Exited",
        "Resource is still in use"}


def _prefix() -> str:
    """`DRY-RUN MODE - ` before every object under --dry-run, as docker compose marks them."""
    from composer.cli.output import SETTINGS
    from composer.dryrun import PREFIX

    return PREFIX if SETTINGS.dry_run else ""


class PlainProgress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.prefix = _prefix()

    def __call__(self, obj: str, status: str) -> None:
        if obj == "Warning":
            print(f"WARN[0000] {status}", file=self.stream, flush=True)
            return
        print(f"{self.prefix} {obj}  {status}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class LiveProgress:
    """One line per container/network/volume with a spinner until its status is final."""

    def __init__(self, stream: TextIO | None = None, force: bool = False) -> None:
        from rich.console import Console
        from rich.live import Live

        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, force_terminal=force or None)
        self.rows: dict[str, tuple[str, float, float | None]] = {}
        self.spinners: dict[str, Any] = {}
        self.prefix = _prefix()
        # rendered anew at each refresh: a running row's time counts up while nothing
        # happens (a 10 s stop shows 0.1s ... 10.0s, as docker compose's, not a frozen 0.0s)
        self.live = Live(console=self.console, refresh_per_second=10, transient=False,
                         get_renderable=self._render)
        self.live.start()
        self.closed = False

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        # (list: the refresh thread renders while __call__ adds rows; a spinner of its own
        # per row, kept across renders, turns)
        for obj, (status, started, ended) in list(self.rows.items()):
            mark: Any = "[green]✔[/]" if ended is not None else self.spinners.setdefault(
                obj, Spinner("dots"))
            took = (ended or now) - started
            table.add_row(mark, obj, f"[bold]{status}[/]", f"[dim]{took:.1f}s[/]")
        return table

    def __call__(self, obj: str, status: str) -> None:
        if obj == "Warning":
            self.console.print(f"[yellow]WARN[/] {status}")
            return
        obj = self.prefix + obj
        prev = self.rows.get(obj)
        started = prev[1] if prev else time.monotonic()
        self.rows[obj] = (status, started, time.monotonic() if status in DONE else None)
        self.live.refresh()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.live.stop()  # (a last refresh: the final state stays on the screen)


class QuietProgress:
    """--progress quiet: nothing but warnings (on stderr)."""

    def __call__(self, obj: str, status: str) -> None:
        if obj == "Warning":
            print(f"WARN[0000] {status}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class JsonProgress:
    """--progress json: one object per line, as docker compose's json writer
    (`{"id":"Container x-web-1","text":"Started"}`); a warning is a `tail` message."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.dry_run = bool(_prefix())

    def __call__(self, obj: str, status: str) -> None:
        import json

        msg: dict[str, object] = (
            {"tail": True, "text": status} if obj == "Warning" else {"id": obj, "text": status})
        if self.dry_run:
            msg["dry_run"] = True
        print(json.dumps(msg, separators=(",", ":")), file=self.stream, flush=True)

    def close(self) -> None:
        pass


Progress = PlainProgress | LiveProgress | QuietProgress | JsonProgress


def make_progress(stream: TextIO | None = None) -> Progress:
    """What --progress / COMPOSE_PROGRESS ask for (composer.cli.output); auto: the live
    display on a terminal that may get ANSI, plain lines otherwise."""
    from composer.cli.output import SETTINGS, colours, status_stream

    s = stream or status_stream()
    mode = SETTINGS.progress
    if mode == "quiet":
        return QuietProgress()
    if mode == "json":
        return JsonProgress(s)
    if mode == "plain":
        return PlainProgress(s)
    if mode == "tty" or (getattr(s, "isatty", lambda: False)() and colours(s)):
        return LiveProgress(s, force=mode == "tty")
    return PlainProgress(s)


def end_live(progress: Callable[[str, str], None]) -> Callable[[str, str], None]:
    """The live display ends where an attached session's logs begin (a display redrawn over
    the containers' lines would garble both); what comes after it -- a Ctrl-C's
    Stopping/Stopped -- goes out as lines, as when stderr is not a terminal."""
    if not isinstance(progress, LiveProgress):
        return progress
    progress.close()
    return line_progress(progress.stream)


def line_progress(stream: TextIO | None = None) -> Progress:
    """make_progress without the live display: for lines outside a verb's own progress
    (what a dry run would do in `image rm`, `commit`, ...), in the --progress mode asked for."""
    from composer.cli.output import SETTINGS, status_stream

    s = stream or status_stream()
    if SETTINGS.progress == "quiet":
        return QuietProgress()
    if SETTINGS.progress == "json":
        return JsonProgress(s)
    return PlainProgress(s)
