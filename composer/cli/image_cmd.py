"""`composer build` and `composer image import|load|ls|rm`."""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from composer.cli.common import add_services_arg, engine, run, with_project
from composer.operations import Project

if TYPE_CHECKING:
    from runtime.client import Client

T = TypeVar("T")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    b = sub.add_parser("build", help="build the stack's images")
    add_services_arg(b)
    b.add_argument("--no-cache", action="store_true", help="build without the build cache")
    b.add_argument("--build-arg", action="append", default=[], metavar="KEY[=VALUE]",
                   help="a build argument over the services' args (KEY alone: its value from "
                        "the environment); repeatable")
    b.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    b.add_argument("--pull", action="store_true",
                   help="pull the newest version of each FROM image first")
    b.add_argument("--with-dependencies", action="store_true",
                   help="also build the services they depend on (transitively)")
    b.add_argument("--print", dest="print_bake", action="store_true",
                   help="print the equivalent bake file (JSON) and build nothing")
    b.set_defaults(func=build)

    pl = sub.add_parser("pull", help="pull the stack's images from their registries")
    add_services_arg(pl)
    pl.add_argument("--policy", choices=("missing", "always"), default=None,
                    help="over each service's pull_policy: missing (only absent images) or "
                         "always")
    pl.add_argument("-q", "--quiet", action="store_true", help="pull without progress lines")
    pl.add_argument("--ignore-pull-failures", action="store_true",
                    help="warn about images that can't be pulled and go on")
    pl.add_argument("--include-deps", action="store_true",
                    help="also pull the services the named ones depend on")
    pl.add_argument("--ignore-buildable", action="store_true",
                    help="skip the services that can be built (they have build:)")
    pl.set_defaults(func=pull)

    img = sub.add_parser("image", help="manage images")
    isub = img.add_subparsers(dest="image_verb", metavar="COMMAND")
    imp = isub.add_parser("import", help="import a root filesystem tarball as an image")
    imp.add_argument("file")
    imp.add_argument("--tag", required=True)
    imp.set_defaults(func=image_import)
    load = isub.add_parser("load", help="load a docker-save archive or an OCI layout")
    load.add_argument("file")
    load.set_defaults(func=image_load)
    ls = isub.add_parser("ls", help="list images")
    ls.set_defaults(func=image_ls)
    rm = isub.add_parser("rm", help="remove images")
    rm.add_argument("refs", nargs="+")
    rm.add_argument("-f", "--force", action="store_true")
    rm.set_defaults(func=image_rm)
    img.set_defaults(func=lambda a: (img.print_help(), 0)[1])


def build(args: argparse.Namespace) -> int:
    from composer.buildplan import bake_config, parse_build_args

    cli_args = parse_build_args(args.build_arg)
    if args.print_bake:
        from composer.cli.stackargs import load_from_args

        stack = load_from_args(args).with_services_enabled(args.services)
        project = Project(stack, None)  # type: ignore[arg-type]  # no engine: nothing runs
        names = _with_deps(project, args.services, args.with_dependencies)
        print(json.dumps(bake_config(stack, names, project.image_ref, cli_args, pull=args.pull,
                                     no_cache=args.no_cache), indent=2))
        return 0

    async def go(project: Project) -> int:
        names = _with_deps(project, args.services, args.with_dependencies)
        await project.build(names, no_cache=args.no_cache, build_args=cli_args, pull=args.pull,
                            quiet=args.quiet)
        return 0

    return run(with_project(args, go))


def _with_deps(project: Project, services: list[str], deps: bool) -> list[str]:
    """The named services (all when none), and with `deps` what they depend on, in
    dependency order."""
    project.check_services(services)
    if not services:
        return sorted(project.stack.services)
    if not deps:
        return list(services)
    return project.selected(services)


def pull(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        names = _with_deps(project, args.services, args.include_deps)
        await project.pull_images(names, policy=args.policy, quiet=args.quiet,
                                  ignore_failures=args.ignore_pull_failures,
                                  ignore_buildable=args.ignore_buildable)
        return 0

    return run(with_project(args, go))


async def _client_do(fn: Callable[[Client], Awaitable[T]]) -> T:
    client = await engine()
    try:
        return await fn(client)
    finally:
        await client.close()


def image_import(args: argparse.Namespace) -> int:
    path = os.path.abspath(args.file)
    info = run(_client_do(lambda c: c.import_image(path, args.tag)))
    print(info.id)
    return 0


def image_load(args: argparse.Namespace) -> int:
    path = os.path.abspath(args.file)
    for info in run(_client_do(lambda c: c.load_image(path))):
        print(f"Loaded image: {', '.join(info.tags) or info.id}")
    return 0


def image_ls(args: argparse.Namespace) -> int:
    images = run(_client_do(lambda c: c.list_images()))
    print(f"{'REPOSITORY:TAG':<50} {'IMAGE ID':<14} SIZE")
    for i in images:
        for tag in i.tags or ("<none>",):
            print(f"{tag:<50} {i.id.split(':')[-1][:12]:<14} {i.size / 1048576:.1f}MiB")
    return 0


def image_rm(args: argparse.Namespace) -> int:
    async def go(c):  # type: ignore[no-untyped-def]
        for ref in args.refs:
            for line in await c.remove_image(ref, args.force):
                print(line)

    run(_client_do(go))
    return 0
