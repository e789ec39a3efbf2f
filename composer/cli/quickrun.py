"""`composer run` of the common cases without asyncio, aiohttp, networkx or the stack
loader: ~0.15 s instead of ~0.55 (the imports alone were ~0.25 s).

    code = quick_run(args)   # None: a case the full path (exec_cmd.run_cmd) must serve

The full path loads the stack, computes the service's one-off container (container_spec,
its labels, apply_run_flags), starts its dependencies, makes sure of its image, networks and
volumes, then creates, attaches, starts, relays and removes. Here:

- the plan (`make_plan`): that container with the flags at their defaults, and what the
  full path would check before creating it (dependencies, image ref and pull policy,
  post_start hooks, networks and volumes with whether they are external), kept in
  composer.stackcache beside the stack summaries: same key inputs plus the service and the
  modules that compute it, so any change of a file, the environment or this code is a miss
  (then the full loader makes the plan again, and its errors are the errors);
- checks that the full path would do nothing but confirm (`serves`): no flag the quick
  path does not take (-d, -p, -P, -v, -l, --cap-*, --use-aliases, --build, --pull,
  --dry-run), no dependency to start (or --no-deps), the policy `missing` or
  `never` with the image here, every network and volume already there, no post_start hook;
  anything else is None before anything changed, and the full path runs as before;
- the run: the one-off's changes (exec_cmd.one_off_changes, shared with the full path),
  the create, then composerd's run_attached websocket (runtime.daemon.oneoff: attach in
  follow mode, start, relay, and with --rm the removal before EXIT), the stdio on threads
  (blockingio.blocking_session); on a terminal in raw mode with its size sent now and on
  SIGWINCH (a pty one-off, as the full path's relay), else SIGINT/SIGTERM passed to the
  container; the exit code (a failed start: its 125/126/127).

One difference: the full path re-applies an existing network's firewall rules on every run
(create_network is idempotent: ~30 ms of nft); `up` and composerd's start do that, so a
one-off on an existing network does not.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.stackcache import (
    StackSummary,
    cache_dir,
    lookup_data,
    stat_key,
    store_data,
    summary_from,
    summary_json,
)

if TYPE_CHECKING:
    from runtime.quickattach import QuickAttach
    from runtime.quickclient import QuickClient

PLAN_FORMAT = 1
PULL_SERVED = ("missing", "never")  # a present image is used as it is
# what computes the plan besides the loader (stackcache stamps composer/spec itself)
_PLAN_CODE = ("convert.py", "labels.py", "operations.py", "cli/runflags.py", "cli/quickrun.py",
              "cli/exec_cmd.py")


def _defaults_only(args: argparse.Namespace) -> bool:
    """No flag whose work only the full path does."""
    from composer.cli.output import SETTINGS

    return not (args.detach or args.publish or args.service_ports or args.volume or args.label
                or args.cap_add or args.cap_drop or args.use_aliases or args.build
                or args.pull is not None or SETTINGS.dry_run)


def plan_inputs(args: argparse.Namespace) -> list[object]:
    here = Path(__file__).resolve().parent.parent
    return [args.files, args.project_name, args.project_directory, args.env_files,
            args.profiles, [args.service], "run-plan", PLAN_FORMAT, args.service,
            [[f, stat_key(str(here / f))] for f in _PLAN_CODE]]


def make_plan(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The full loader's plan for `args.service` and the files it read (the loader's errors
    are raised as the full path would)."""
    from argparse import Namespace

    from composer.cli.runflags import apply_run_flags
    from composer.cli.stackargs import load_from_args
    from composer.convert import container_spec, network_spec, volume_spec
    from composer.operations import Project
    from composer.readlog import recording
    from runtime import serde

    with recording() as seen:
        stack = load_from_args(args).with_services_enabled([args.service])
    summary = StackSummary(stack.name, tuple(stack.services), tuple(stack.all_services()),
                           tuple(stack.warnings))
    plan: dict[str, Any] = {"summary": summary_json(summary), "quick": False}
    if args.service not in stack.services:
        return plan, list(seen)  # the full path's error
    project = Project(stack, None)  # type: ignore[arg-type]  # its pure parts only
    svc = stack.services[args.service]
    labels = project.container_labels(args.service, 1, oneoff=True)
    spec = container_spec(stack, args.service, 1, labels=labels)
    defaults = Namespace(service_ports=False, publish=[], volume=[], label=[], cap_add=[],
                         cap_drop=[], use_aliases=False)
    spec = apply_run_flags(stack, spec, defaults)
    networks = [network_spec(stack, k) for k in project.networks_used([args.service])]
    volumes = [volume_spec(stack, k) for k in stack.volumes]
    plan.update(
        quick=(svc.pull_policy or "missing") in PULL_SERVED and not svc.post_start,
        spec=serde.to_dict(spec),
        deps=sorted(project.graph.select([args.service]) - {args.service}),
        image=project.image_ref(args.service),
        networks=[[n.name, n.external] for n in networks],
        volumes=[[v.name, v.external] for v in volumes],
    )
    return plan, list(seen)


def load_plan(args: argparse.Namespace) -> dict[str, Any] | None:
    """The cached plan, else the full loader's (stored for next time); None for `-f -`."""
    if "-" in (args.files or ()):
        return None
    from runtime.paths import Paths

    folder, inputs = cache_dir(Paths.from_env().run), plan_inputs(args)
    hit = lookup_data(folder, inputs)
    if hit is not None:
        return hit
    plan, files = make_plan(args)
    store_data(folder, inputs, plan, files)
    return plan


def serves(plan: dict[str, Any], args: argparse.Namespace, client: QuickClient) -> bool:
    """Whether the full path would do nothing before the create but confirm what is here."""
    from runtime.errors import NotFound

    if not plan.get("quick") or (plan["deps"] and not args.no_deps):
        return False
    from runtime import routes
    from runtime.quickclient import run_now

    try:
        run_now(client.call_json(routes.INSPECT_IMAGE, plan["image"]))
    except NotFound:
        return False  # pulled or built by the full path
    for key, route in (("networks", routes.LIST_NETWORKS), ("volumes", routes.LIST_VOLUMES)):
        if plan[key]:
            have = {x["name"] for x in run_now(client.call_json(route))}
            if any(name not in have for name, _ in plan[key]):
                return False  # created (and said so), or an external one's error
    return True


def quick_run(args: argparse.Namespace) -> int | None:
    """`run`'s exit code, or None (nothing done) when the full path must serve it."""
    if not _defaults_only(args):
        return None
    from composer.cli.quick import quick_client

    if "-" in (args.files or ()):
        return None  # the stack on stdin: read once, by the full path
    client = quick_client()
    if client is None:
        return None  # composerd not running (the full path starts it), or a test's engine
    from runtime.quickclient import run_now

    try:
        plan = load_plan(args)
        if plan is None or not serves(plan, args, client):
            return None
        summary = summary_from(plan["summary"])
        for w in summary.warnings:
            print(f"WARN[0000] {w}", file=sys.stderr)
        code = _run(plan, summary, args, client)
    finally:
        run_now(client.close())
    if code is not None:  # served: no loop, no thread but daemon ones, the terminal restored
        from composer.cli import nothing_left_to_tear_down

        nothing_left_to_tear_down()  # composer.cli.entry ends the process without the teardown
    return code


def one_off_spec(plan: dict[str, Any], project: str, args: argparse.Namespace,
                 tty: bool = False) -> dict[str, Any]:
    """The plan's container with the one-off's changes, in JSON: the ContainerSpec the full
    path would create (no dataclass: runtime.types costs ~8 ms to import)."""
    from composer.cli.exec_cmd import one_off_changes
    from runtime import serde

    spec: dict[str, Any] = plan["spec"]
    return {**spec, **serde.to_dict(one_off_changes(args, project, spec["env"], tty))}


def _run(plan: dict[str, Any], summary: StackSummary, args: argparse.Namespace,
         client: QuickClient) -> int | None:
    from composer.cli.exec_cmd import run_wants_tty
    from runtime import routes
    from runtime.calls import DaemonUnavailable
    from runtime.errors import EngineError, NotFound, UnknownRoute
    from runtime.quickclient import run_now

    tty = run_wants_tty(args)  # as the full path: ours a terminal (or -t), unless -T
    spec = one_off_spec(plan, summary.name, args, tty)
    cid = str(run_now(client.call_json(routes.CREATE_CONTAINER, body=spec))["id"])
    try:
        # attached, started, relayed and (--rm) removed by composerd before it says EXIT
        stream = run_now(client.run_attached(cid, rm=args.rm))
    except UnknownRoute:  # a composerd from before this route: the full path serves the run
        run_now(client.remove_container(cid, force=True, volumes=True))
        return None
    except BaseException:
        if args.rm:
            run_now(client.remove_container(cid, force=True, volumes=True))
        raise
    try:
        code = _session(client, cid, stream, tty)
    finally:
        run_now(stream.close())
    if stream.exit_code is None and code != 141:  # composerd went away mid-run: ask it
        try:
            code = run_now(client.wait_container(cid))
        except DaemonUnavailable as e:  # gone for good: composerd removes an --rm one-off
            from composer.errors import STATUS_UNKNOWN, DaemonLost  # when it starts again

            raise DaemonLost(STATUS_UNKNOWN, exit_code=255) from e
        except EngineError:
            pass
        if args.rm:
            with contextlib.suppress(NotFound):
                run_now(client.remove_container(cid, force=True, volumes=True))
    return code


def _session(client: QuickClient, cid: str, stream: QuickAttach, tty: bool) -> int:
    """The container's stdio until it ends, as attach_cmd.relay with run's settings: on a
    terminal (a tty one-off, our stdin a tty) in raw mode, its size sent now and on every
    SIGWINCH, ^C a byte for the container; else SIGINT and SIGTERM go to the container (it
    decides whether to end: 130 from a ^C'd shell), relay's sig proxy."""
    from composer.cli.blockingio import blocking_session, stdin_fd
    from runtime.quickclient import QuickClient, run_now

    in_fd = stdin_fd()
    if tty and in_fd >= 0 and os.isatty(in_fd):
        with _raw_terminal(in_fd, lambda: _send_size(stream)):
            return blocking_session(stream, in_fd)

    def proxy(signum: int, _frame: object) -> None:
        other = QuickClient(client.socket_path)  # the main one may be mid-request
        try:
            run_now(other.kill_container(cid, signal.Signals(signum).name))
        except Exception:  # noqa: BLE001  (it ended meanwhile: its code comes as usual)
            pass
        finally:
            run_now(other.close())

    before = {s: signal.signal(s, proxy) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return blocking_session(stream, in_fd)
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def _send_size(stream: QuickAttach) -> None:
    import shutil

    from runtime.quickclient import run_now

    size = shutil.get_terminal_size()
    run_now(stream.resize(size.lines, size.columns))


@contextlib.contextmanager
def _raw_terminal(fd: int, on_resize: Callable[[], None]) -> Iterator[None]:
    """runtime.terminal.raw_terminal without an event loop: raw mode (TCSANOW: what was
    typed before goes to the container), `on_resize` now and on SIGWINCH, then as it was."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)
    before = signal.getsignal(signal.SIGWINCH)
    try:
        on_resize()
        signal.signal(signal.SIGWINCH, lambda _s, _f: on_resize())
        yield
    finally:
        signal.signal(signal.SIGWINCH, before)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
