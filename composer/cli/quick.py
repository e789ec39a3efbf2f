"""The verbs a user types to look (`ps`, `port`, `logs` without -f) and `exec` without a
terminal, without asyncio, aiohttp or the spec loader: ~100 ms instead of ~200-370.

    return read_project(args, go)     # go: async def go(project) -> int, as with_project's

The stack comes from composer.stackcache (the full loader only when a file it read or the
environment changed), composerd is spoken to by runtime.quickclient (http.client), and
`go` -- the same coroutine the slow path runs with an operations.Project -- is driven by
`run_now`: QuickClient's calls never wait on anything, so no event loop is needed.

`-p NAME` without a file works from the containers' labels, as with_project's
stack_by_name (the services its containers name). Whenever the quick path can't serve
the command exactly as the slow one would, it hands it to
`composer.cli.common.with_project` unchanged: composerd not answering (that path starts
it), `-f -` (the stack on stdin), no stack file at all, an invalid -p name (the loader's
error), a dry run of `exec`, or an engine replaced by a test.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from composer import labels as L
from composer.cli import nothing_left_to_tear_down
from composer.errors import NoStackFile, check_services
from composer.stackcache import StackSummary, cache_dir, summary_of

if TYPE_CHECKING:
    from runtime.api import ContainerInfo
    from runtime.quickclient import QuickClient

# Verbs that act only on what exists: with `-p NAME` and no `-f` they work from the project
# name and the container labels alone, as docker compose (`projectOrName`): no stack file
# is read, so they work from any folder. `up`, `run`, `build`, `pull`, `config` need one.
BY_NAME_VERBS = frozenset({
    "ps", "logs", "down", "stop", "start", "restart", "kill", "rm", "pause", "unpause",
    "top", "port", "images", "events", "exec", "attach", "stats", "cp", "export", "commit",
    "wait", "volumes",
})


def targeted_services(args: argparse.Namespace) -> list[str]:
    """Services named on the command line (`up debug`, `run debug sh`): as docker compose,
    they run whatever their profiles (see Stack.with_services_enabled)."""
    many, one = getattr(args, "services", None), getattr(args, "service", None)
    names = [n for n in many if isinstance(n, str)] if isinstance(many, list) else []
    return names + [one] if isinstance(one, str) else names


def add_services_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*", metavar="SERVICE")


class _Services(Protocol):
    @property
    def services(self) -> Collection[str]: ...


class ReadProject(Protocol):
    """What a read-only verb uses of its project: operations.Project and QuickProject."""

    @property
    def name(self) -> str: ...

    @property
    def stack(self) -> _Services: ...

    @property
    def engine(self) -> Any: ...

    by_labels: bool

    async def containers(self, services: Collection[str] = (), *, all: bool = True,
                         oneoff: bool | None = False,
                         hooks: bool = False) -> list[ContainerInfo]: ...


class QuickProject:
    """The project as the quick path knows it: a StackSummary and a QuickClient."""

    def __init__(self, summary: StackSummary, engine: QuickClient) -> None:
        self.stack = summary
        self.engine = engine
        self.by_labels = False

    @property
    def name(self) -> str:
        return self.stack.name

    async def containers(self, services: Collection[str] = (), *, all: bool = True,
                         oneoff: bool | None = False,
                         hooks: bool = False) -> list[ContainerInfo]:
        found = await self.engine.list_containers(all=all, labels={L.PROJECT: self.name})
        return L.project_containers(found, services, oneoff=oneoff, hooks=hooks)


def quick_client() -> QuickClient | None:
    """The stdlib client when composerd answers and the engine is the real one, else None."""
    common = sys.modules.get("composer.cli.common")
    if common is not None and common.engine is not common._ENGINE:
        return None  # a test's in-memory engine serves every verb
    from runtime.calls import DaemonUnavailable
    from runtime.paths import Paths
    from runtime.quickclient import QuickClient, run_now

    client = QuickClient(Paths.from_env().socket)
    try:
        if run_now(client.ping()) and client.runs_this_code():  # else the full path restarts it
            return client
    except DaemonUnavailable:
        pass
    run_now(client.close())
    return None


def by_name(args: argparse.Namespace) -> str | None:
    """-p NAME without a file, for a verb that works from labels alone (common's
    project_by_name); None as well for a name the loader would refuse (the slow path says
    why, in the loader's words)."""
    if getattr(args, "verb", None) not in BY_NAME_VERBS or not args.project_name or args.files:
        return None
    return str(args.project_name) if L.PROJECT_NAME.match(args.project_name) else None


def stack_summary(args: argparse.Namespace) -> StackSummary | None:
    """The summary of the stack the global options select, from the cache when nothing
    changed; None when the quick path can't tell (stack on stdin, or -p NAME alone)."""
    if "-" in (args.files or ()):
        return None
    if by_name(args) is not None:
        return None  # from the containers' labels: read_project's
    targeted = targeted_services(args)
    inputs = [args.files, args.project_name, args.project_directory, args.env_files,
              args.profiles, targeted]

    def load() -> tuple[StackSummary, list[str]]:
        from composer.cli.stackargs import load_from_args
        from composer.readlog import recording

        with recording() as seen:
            stack = load_from_args(args).with_services_enabled(targeted)
        return StackSummary(stack.name, tuple(stack.services), tuple(stack.all_services()),
                            tuple(stack.warnings)), list(seen)

    from runtime.paths import Paths

    return summary_of(load, cache_dir(Paths.from_env().run), inputs)


def read_project(args: argparse.Namespace, go: Callable[[Any], Coroutine[Any, Any, int]],
                 *, read_only: bool = True) -> int:
    """Run `go(project)` on the quick path when it can serve the command, else as
    `with_project(args, go, lock=False, read_only=read_only)`; `read_only=False` (exec):
    `go` also attaches, and a dry run takes the slow path (its engine says what it would
    do)."""
    from composer.cli.output import SETTINGS
    from runtime.quickclient import run_now

    summary: StackSummary | None = None
    # a dry run of exec (with or without -p NAME) takes the slow path: its engine only says
    # what it would do; the quick client would run the command for real
    name = None if not read_only and SETTINGS.dry_run else by_name(args)
    if read_only or not SETTINGS.dry_run:
        try:
            summary = stack_summary(args)
        except NoStackFile:
            pass  # COMPOSE_PROJECT_NAME may name it: the slow path knows how
    client = quick_client() if summary is not None or name is not None else None
    if client is None:
        from composer.cli.common import run, with_project

        return run(with_project(args, go, lock=False, read_only=read_only))
    try:
        verb = getattr(args, "verb", None)
        if summary is None:  # as common.stack_by_name: the services its containers name
            assert name is not None
            services: tuple[str, ...] = ()
            if verb not in ("ps", "down"):  # the only use of them: the check below
                found = run_now(client.list_containers(all=True, labels={L.PROJECT: name}))
                services = tuple(L.label_services(name, found))
            summary = StackSummary(name, services, services, ())
        for w in summary.warnings:
            print(f"WARN[0000] {w}", file=sys.stderr)
        project = QuickProject(summary, client)
        project.by_labels = name is not None
        if verb in BY_NAME_VERBS and not (project.by_labels and verb in ("ps", "down")):
            # an unknown service is an error naming it (from labels alone, `ps` can't tell
            # a typo from a service already removed), as with_project
            check_services(targeted_services(args), summary.all_services)
        code = run_now(go(project))
    finally:
        run_now(client.close())
    # served: no event loop, no thread but daemon ones, every stream of ours closed
    nothing_left_to_tear_down()
    return code
