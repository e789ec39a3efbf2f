"""`composer build` and `composer image import|load|ls|rm`."""
from __future__ import annotations

import argparse
import os

from composer.cli.common import add_services_arg, engine, run, with_project
from composer.operations import Project


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    b = sub.add_parser("build", help="build the stack's images")
    add_services_arg(b)
    b.add_argument("--no-cache", action="store_true")
    b.set_defaults(func=build)

    pl = sub.add_parser("pull", help="pull the stack's images from their registries")
    add_services_arg(pl)
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
    async def go(project: Project) -> int:
        await project.build(args.services, no_cache=args.no_cache)
        return 0

    return run(with_project(args, go))


def pull(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        await project.pull(args.services)
        return 0

    return run(with_project(args, go))


async def _client_do(fn):  # type: ignore[no-untyped-def]
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
