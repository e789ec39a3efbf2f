"""`composerd`'s command line: flags, logging, root check, and `--background`, which forks
*before* any event loop exists and returns once the daemon answers (or failed to start).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

from runtime.daemon import warmstart
from runtime.daemon.lifecycle import (
    LOG_FILE,
    EngineFactory,
    load_engine_factory,
    run,
    secure_run_dir,
)
from runtime.errors import EngineError
from runtime.paths import Paths

log = logging.getLogger("composerd")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="composerd", description="composer's daemon: serves the engine on a unix socket"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--foreground", action="store_true", help="stay attached (default)")
    mode.add_argument(
        "--background", action="store_true", help="detach; return once the daemon answers"
    )
    p.add_argument("--socket", type=Path, help="socket path (default $COMPOSER_RUN/composer.sock)")
    p.add_argument(
        "--root", type=Path, help="state root (default $COMPOSER_ROOT or /var/lib/composer)"
    )
    p.add_argument("--run", type=Path, help="run root (default $COMPOSER_RUN or /run/composer)")
    p.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s composerd[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    env = Paths.from_env()
    paths = Paths(root=args.root or env.root, run=args.run or env.run)
    if os.geteuid() != 0:
        print("composerd needs root: run it with sudo", file=sys.stderr)
        return 1
    try:
        factory = load_engine_factory()
        secure_run_dir(paths.run)
    except (ImportError, AttributeError, OSError) as e:
        print(f"composerd: cannot start: {e}", file=sys.stderr)
        return 1
    warmstart.reexec_if_compiled()  # everything composerd imports at its start is imported now
    if args.background:
        return _background(paths, factory, args)
    return _foreground(paths, factory, args, ready_fd=None)


def _foreground(
    paths: Paths, factory: EngineFactory, args: argparse.Namespace, ready_fd: int | None
) -> int:
    pending = [ready_fd] if ready_fd is not None else []  # the fd to report to, until used

    def report(msg: bytes) -> None:
        if pending:
            fd = pending.pop()
            with contextlib.suppress(OSError):
                os.write(fd, msg)
            os.close(fd)

    try:
        asyncio.run(
            run(
                paths,
                factory,
                socket_path=args.socket,
                on_ready=lambda: report(b"ok\n"),
                debug=args.debug,
            )
        )
    except Exception as e:  # one line for the user; the traceback only with --debug
        if args.debug or not isinstance(e, (EngineError, OSError)):
            log.exception("composerd failed")
        msg = f"composerd: {e}"
        print(msg, file=sys.stderr)
        report(msg.encode() + b"\n")
        return 1
    report(b"composerd: stopped before it was ready\n")
    return 0


def _background(paths: Paths, factory: EngineFactory, args: argparse.Namespace) -> int:
    """Fork now (single-threaded, no event loop yet); the parent returns when the child is ready."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:  # parent: relay the child's verdict
        os.close(w)
        chunks = []
        while chunk := os.read(r, 4096):
            chunks.append(chunk)
        os.close(r)
        out = b"".join(chunks).decode(errors="replace").strip()
        if out == "ok":
            return 0
        print(
            out or f"composerd: exited before it was ready; see {paths.run / LOG_FILE}",
            file=sys.stderr,
        )
        return 1
    # child: own session, stdio to the log file, then run as in the foreground
    os.close(r)
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    logfd = os.open(paths.run / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(logfd, 1)
    os.dup2(logfd, 2)
    os.close(null)
    os.close(logfd)
    os.chdir("/")
    os._exit(_foreground(paths, factory, args, ready_fd=w))

