"""`composer` command line: global options, then one module per verb (config_cmd, up_cmd, ...).

Each verb module exposes `register(subparsers)` which adds its parser and sets
`func=run` where `run(args) -> int` returns the exit code. Only the CLI prints or exits;
errors a user can cause are one line on stderr (traceback with --debug).

Exit codes as docker compose v2 (since 2.33): 0 ok, 1 for any error — a user error, a bad
flag or a missing argument alike (cobra's usage errors exit 1 in the compose plugin,
argparse's would be 2) — 130 interrupted; a command's own code (`exec`, `run`, `up
--exit-code-from`) passes through. Output into a closed pipe (`composer ps | head -1`)
ends quietly, as a Go program killed by SIGPIPE would, with 141.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

EXIT_ERROR = 1
EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE

# Every verb, in the order `composer --help` lists them: the module that registers its parser
# and runs it, and its one-line help. The dispatcher imports a verb's module only when that
# verb is parsed (`composer --help` and `composer version` import none of the heavy ones:
# aiohttp, networkx, yaml, the spec loader); a unit test keeps this table equal to what the
# modules register.
VERBS: dict[str, tuple[str, str]] = {
    "config": ("config_cmd", "validate and print the stack in canonical form"),
    "up": ("up_cmd", "create and start the stack's containers"),
    "down": ("up_cmd", "stop and remove containers and networks"),
    "ps": ("ps_cmd", "list the stack's containers"),
    "ls": ("ps_cmd", "list running projects"),
    "port": ("ps_cmd", "the host address of a published port"),
    "top": ("ps_cmd", "the processes of each container"),
    "stats": ("ps_cmd", "a live stream of each container's resource usage"),
    "images": ("ps_cmd", "images used by the stack's containers"),
    "start": ("lifecycle_cmd", "start existing containers"),
    "stop": ("lifecycle_cmd", "stop running containers (dependents first)"),
    "restart": ("lifecycle_cmd", "restart containers"),
    "pause": ("lifecycle_cmd", "freeze containers"),
    "unpause": ("lifecycle_cmd", "thaw containers"),
    "kill": ("lifecycle_cmd", "send a signal to containers"),
    "rm": ("lifecycle_cmd", "remove stopped containers"),
    "logs": ("logs_cmd", "output of the stack's containers"),
    "events": ("logs_cmd", "container events of the stack, as they happen"),
    "exec": ("exec_cmd", "run a command in a running service container"),
    "run": ("exec_cmd", "run a one-off command in a new service container"),
    "attach": ("attach_cmd", "attach the terminal to a running service container"),
    "build": ("image_cmd", "build the stack's images"),
    "pull": ("image_cmd", "pull the stack's images from their registries"),
    "image": ("image_cmd", "manage images"),
    "watch": ("watch_cmd", "watch the develop.watch paths and sync, restart or rebuild "
                           "services when files change"),
    "cp": ("files_cmd", "copy files/folders between a service container and the local "
                        "filesystem"),
    "export": ("files_cmd", "export a service container's filesystem as a tar archive"),
    "commit": ("files_cmd", "create a new image from a service container's changes"),
    "create": ("project_cmd", "create the containers of the stack without starting them"),
    "scale": ("project_cmd", "set the number of containers of services"),
    "wait": ("project_cmd", "block until the containers of the services stop; exit with the "
                            "code of the first one that stops"),
    "volumes": ("project_cmd", "list the stack's volumes"),
    "version": ("version_cmd", "show composer's version"),
    "completion": ("completion_cmd", "print a shell completion script (bash or zsh)"),
}
VERB_MODULES: tuple[str, ...] = tuple(dict.fromkeys(module for module, _ in VERBS.values()))


class Parser(argparse.ArgumentParser):
    """argparse with docker compose's exit code for a usage error: 1, not 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


class LazyVerbs(argparse._SubParsersAction):  # type: ignore[type-arg]
    """The verbs' subparsers, each a placeholder (its module's name) until argparse reaches
    that verb: then the module is imported and registers the real parser in its place, so
    `composer VERB --help` shows every flag of VERB while `composer --help` imports none."""

    def add_placeholder(self, name: str, module: str, help: str) -> None:  # noqa: A002
        self._name_parser_map[name] = module
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help))

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        placeholder = isinstance(self._name_parser_map.get(name), str)
        if placeholder:
            del self._name_parser_map[name]
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        if placeholder:  # keep the verb's place in the help listing
            new = self._choices_actions.pop()
            at = next(i for i, a in enumerate(self._choices_actions) if a.dest == name)
            self._choices_actions[at] = new
        return parser

    def load(self, module: str) -> None:
        """Import a verb module and let it register the parsers of its verbs."""
        from composer.cli.helptext import fill

        before = {n for n, p in self._name_parser_map.items() if not isinstance(p, str)}
        importlib.import_module(f"composer.cli.{module}").register(self)
        for name, parser in self._name_parser_map.items():
            if name not in before and not isinstance(parser, str):
                fill(parser, name)

    def load_all(self) -> None:
        for module in dict.fromkeys(p for p in self._name_parser_map.values()
                                    if isinstance(p, str)):
            self.load(module)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        placeholder = self._name_parser_map.get(values[0])
        if isinstance(placeholder, str):
            self.load(placeholder)
        super().__call__(parser, namespace, values, option_string)


def build_parser(*, lazy: bool = False) -> argparse.ArgumentParser:
    """The whole command line; `lazy`: verb parsers are loaded only when argparse reaches
    their verb (what `main` uses), else all of them now (completion, tests)."""
    p = Parser(prog="composer", description="Compose-compatible stacks on our own runtime")
    p.add_argument("-f", "--file", action="append", dest="files", default=None,
                   help="stack file (repeat to merge); default compose.yaml and friends")
    p.add_argument("-p", "--project-name", dest="project_name", default=None)
    p.add_argument("--project-directory", dest="project_directory", default=None)
    p.add_argument("--env-file", dest="env_files", action="append", default=None)
    p.add_argument("--profile", dest="profiles", action="append", default=None)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--parallel", default=None, metavar="N",
                   help="containers started or stopped at a time (-1, the default: unlimited, as "
                        "docker compose; also COMPOSE_PARALLEL_LIMIT)")
    p.add_argument("--ansi", choices=("never", "always", "auto"), default=None,
                   help="colours and the live display: never, always, or auto (on a terminal; "
                        "also COMPOSE_ANSI)")
    p.add_argument("--progress", choices=("auto", "tty", "plain", "quiet", "json"),
                   default=None, help="how progress is shown (also COMPOSE_PROGRESS; "
                                      "COMPOSE_STATUS_STDOUT=1 writes it to stdout)")
    p.add_argument("--dry-run", action="store_true",
                   help="show what the command would change (containers, networks, volumes, "
                        "images, files) without changing anything")
    p.add_argument("-v", "--version", action="store_true", help="show composer's version")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND", action=LazyVerbs)
    assert isinstance(sub, LazyVerbs)
    for name, (module, text) in VERBS.items():
        sub.add_placeholder(name, module, text)
    from composer.cli.helptext import fill

    fill(p)
    if not lazy:
        sub.load_all()
    return p


def main(argv: Sequence[str] | None = None) -> int:
    global _NOTHING_LEFT
    _NOTHING_LEFT = False  # a test may call main() more than once
    try:
        return _main(argv)
    except BrokenPipeError:
        return _closed_pipe()


def entry() -> NoReturn:
    """The program (the `composer` script, `python -m composer.cli`): main's code as the
    exit status. When the command said it left nothing to tear down
    (`nothing_left_to_tear_down`), the process ends without the interpreter's teardown,
    which frees every module and object one by one: ~10-20 ms of a ~90 ms `exec -T`, ~20 ms
    of a ~340 ms `down`. The atexit functions run and both streams are flushed first, as at
    a normal exit; a thread that is not a daemon one still gets the normal exit."""
    code = main()
    if _NOTHING_LEFT and _only_daemon_threads():
        _end_now(code)
    sys.exit(code)


# The one flag behind entry()'s early end. A command sets it, through
# nothing_left_to_tear_down(), once its work is over and nothing of it needs the teardown:
# no event loop, no file or connection of its own open, no thread but daemon ones (the
# stdin relay, as a normal exit would leave it). Who does: the quick path once it served a
# verb (composer.cli.quick: `ps`, `port`, `logs`, `exec -T`; composer.cli.quickrun: `run`),
# and `down` and `up -d`, whose whole work is one event loop that has ended (its
# connections closed, its executor joined, the stack cache written and closed) when they
# return. main() clears it; a command that raises never sets it.
_NOTHING_LEFT = False


def nothing_left_to_tear_down() -> None:
    """Called by a command that has ended cleanly and keeps nothing open (see above)."""
    global _NOTHING_LEFT
    _NOTHING_LEFT = True


def _only_daemon_threads() -> bool:
    threading = sys.modules.get("threading")
    if threading is None:
        return True
    main_thread = threading.main_thread()
    return all(t.daemon for t in threading.enumerate() if t is not main_thread)


def _end_now(code: int) -> NoReturn:
    import atexit

    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: started with that fd closed
                stream.flush()
    except (OSError, ValueError):  # a stream broke: the normal exit reports it as before
        sys.exit(code)
    os._exit(code & 0xFF)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser(lazy=True)
    args = parser.parse_args(argv)
    if args.version:
        from composer.cli.version_cmd import version_text

        print(version_text())
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from composer.errors import DryRunDone

    try:
        from composer.cli.output import configure

        configure(args.ansi, args.progress, args.dry_run)
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        return 130
    except DryRunDone:
        sys.stdout.flush()
        return 0
    except BrokenPipeError:
        raise
    except Exception as exc:  # one clear line unless --debug
        if args.debug or not _is_user_error(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_ERROR) or EXIT_ERROR


def _closed_pipe() -> int:
    """The reader of our stdout went away: drop what is still buffered (so the interpreter's
    final flush does not fail again) and end quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _is_user_error(exc: BaseException) -> bool:
    from composer.errors import ComposerError

    try:
        from runtime.errors import EngineError
    except ImportError:  # pragma: no cover
        EngineError = ComposerError  # type: ignore[misc,assignment]  # noqa: N806
    return isinstance(exc, (ComposerError, EngineError))


if __name__ == "__main__":
    entry()
