"""`composer cp`, `export` and `commit`: a service container's files, in and out.

The daemon reads and writes inside the container (runtime.containerfs: never outside its
root); this side applies Docker's archive rules (composer.cli.cparchive) and reads or writes
the host's files. `cp` to a service copies into each of its containers (or `--index N`),
from a service out of the first one, as docker compose.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import AsyncIterator
from typing import Any

from composer import labels as L
from composer.cli import cparchive
from composer.cli.common import run, with_project
from composer.errors import ComposerError
from composer.operations import Project
from runtime.api import CommitRequest, ContainerInfo
from runtime.errors import NotFound


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cp = sub.add_parser(
        "cp", help="copy files/folders between a service container and the local filesystem",
        usage="composer cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n"
              "       composer cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH")
    cp.add_argument("source", metavar="SRC", help="SERVICE:PATH, a host path, or - (a tar on stdin)")
    cp.add_argument("destination", metavar="DEST",
                    help="SERVICE:PATH, a host path, or - (a tar on stdout)")
    cp.add_argument("-a", "--archive", action="store_true",
                    help="keep the uid/gid of the source (else: root in the container, you on "
                         "the host)")
    cp.add_argument("-L", "--follow-link", action="store_true",
                    help="copy what a symlink at SRC_PATH points to, not the link")
    cp.add_argument("--index", type=int, default=0,
                    help="only the container with this number (default: all when copying "
                         "to a service, the first when copying from one)")
    cp.add_argument("--all", action="store_true",
                    help="also the containers of `composer run`")
    cp.set_defaults(func=cp_cmd)

    ex = sub.add_parser("export", help="export a service container's filesystem as a tar archive")
    ex.add_argument("service", metavar="SERVICE")
    ex.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    ex.add_argument("--index", type=int, default=0,
                    help="the container with this number (default: the first)")
    ex.set_defaults(func=export_cmd)

    cm = sub.add_parser("commit", help="create a new image from a service container's changes")
    cm.add_argument("service", metavar="SERVICE")
    cm.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]",
                    help="tag of the new image (default: untagged)")
    cm.add_argument("-m", "--message", default="", help="commit message (the image's history)")
    cm.add_argument("-a", "--author", default="",
                    help='author (e.g. "Jane Doe <jane@example.com>")')
    cm.add_argument("-c", "--change", action="append", default=[], metavar="INSTRUCTION",
                    help='a Dockerfile instruction applied to the image config, e.g. '
                         '"CMD [\\"sh\\"]" (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, '
                         "WORKDIR, STOPSIGNAL, SHELL, HEALTHCHECK); repeatable")
    cm.add_argument("-p", "--pause", nargs="?", const="true", default="true",
                    metavar="true|false", help="pause the container while it is read "
                                               "(always: false is refused)")
    cm.add_argument("--index", type=int, default=0,
                    help="the container with this number (default: the first)")
    cm.set_defaults(func=commit_cmd)


async def service_containers(project: Project, service: str, *, index: int = 0,
                             oneoff: bool = False) -> list[ContainerInfo]:
    """The service's containers (stopped ones too), by number; `index` picks one."""
    project.check_services([service])
    cs = await project.containers([service], all=True, oneoff=None if oneoff else False)
    if index:
        cs = [c for c in cs if c.labels.get(L.CONTAINER_NUMBER) == str(index)]
        if not cs:
            raise ComposerError(f"service {service} has no container #{index} (see "
                                f"`composer ps -a {service}`)")
    if not cs:
        raise ComposerError(f"no container found for service {service}: create it first "
                            f"(`composer up -d {service}` or `composer create {service}`)")
    return cs


# ---------------------------------------------------------------- cp


def cp_cmd(args: argparse.Namespace) -> int:
    src, dst = cparchive.container_arg(args.source), cparchive.container_arg(args.destination)
    if not args.source or not args.destination:
        raise ComposerError("cp: the source and the destination can't be empty")
    if src and dst:
        raise ComposerError("cp: copying between services is not supported: copy to the host "
                            "first")
    if not src and not dst:
        raise ComposerError("cp: one of SRC and DEST must be SERVICE:PATH (e.g. `composer cp "
                            "web:/etc/nginx ./nginx`)")
    args.services = [(src or dst)[0]]  # type: ignore[index]

    async def go(project: Project) -> int:
        if src is not None:
            service, path = src
            cs = await service_containers(project, service, index=args.index, oneoff=args.all)
            await _from_container(project, cs[0], path, args)
        else:
            assert dst is not None
            service, path = dst
            for c in await service_containers(project, service, index=args.index,
                                              oneoff=args.all):
                await _to_container(project, c, path, args)
        return 0

    return run(with_project(args, go, lock=False))


async def _container_dest(project: Project, c: ContainerInfo, path: str) -> cparchive.Dest:
    """Stat the container path, following a symlink at it once (as docker compose)."""
    try:
        st = await project.engine.stat_path(c.id, path)
    except NotFound:
        return cparchive.Dest(path, False, False)
    if st.link_target:
        target = st.link_target
        if not target.startswith("/"):
            target = os.path.join(cparchive.split_dir_entry(path)[0], target)
        try:
            st = await project.engine.stat_path(c.id, target)
        except NotFound:
            return cparchive.Dest(target, False, False)
        path = target
    if not (st.is_dir or (st.mode & 0o170000) == 0o100000):
        raise ComposerError(f'destination "{c.name}:{path}" must be a directory or a regular file')
    return cparchive.Dest(path, True, st.is_dir)


async def _to_container(project: Project, c: ContainerInfo, path: str,
                        args: argparse.Namespace) -> None:
    from runtime import containerfs
    from runtime.threadpipe import CHUNK, produce

    label = f"Container {c.name}"
    dest = await _container_dest(project, c, path)
    if args.source == "-":
        if not dest.is_dir:
            raise ComposerError(f'destination "{c.name}:{path}" must be a directory when the '
                                "source is a tar stream on stdin")
        directory = dest.path
        chunks: AsyncIterator[bytes] = produce(
            lambda out: shutil.copyfileobj(sys.stdin.buffer, out, CHUNK))
    else:
        source = cparchive.host_source(args.source, args.follow_link)
        where = cparchive.place(source, dest)
        directory = where.directory
        parent, base = cparchive.split_dir_entry(source.path)
        root = containerfs.host_root(parent)

        def write(out: Any) -> None:
            try:
                containerfs.write_tar(root, "/" + base if base != "." else "/.", out,
                                      top=where.name)
            finally:
                os.close(root.fd)

        chunks = produce(write)
    project.progress(label, "Copying")
    try:
        await project.engine.put_archive(c.id, directory, chunks, copy_uid_gid=args.archive)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    project.progress(label, "Copied")


async def _from_container(project: Project, c: ContainerInfo, path: str,
                          args: argparse.Namespace) -> None:
    from runtime import containerfs
    from runtime.threadpipe import consume

    label = f"Container {c.name}"
    project.progress(label, "Copying")
    if args.destination == "-":
        _, chunks = await project.engine.get_archive(c.id, path, follow_link=args.follow_link)
        out = sys.stdout.buffer
        async for chunk in chunks:
            out.write(chunk)
        out.flush()
        project.progress(label, "Copied")
        return
    dest = cparchive.host_dest(args.destination)
    st, chunks = await project.engine.get_archive(c.id, path, follow_link=args.follow_link)
    _, base = cparchive.split_dir_entry(path)
    source = cparchive.Source(path, st.is_dir, "." if base == "." else (base or "."))
    try:
        where = cparchive.place(source, dest)
    except BaseException:
        await chunks.aclose()  # type: ignore[attr-defined]
        raise
    root = containerfs.host_root(where.directory)
    keep = args.archive

    def extract(src: Any) -> None:
        try:
            containerfs.extract_tar(
                root, "/", src, (lambda u, g: (u, g)) if keep else (lambda u, g: None),
                rename=containerfs.rebase(source.name, where.name))
        finally:
            os.close(root.fd)

    await consume(chunks, extract)
    project.progress(label, "Copied")


# ---------------------------------------------------------------- export, commit


def export_cmd(args: argparse.Namespace) -> int:
    args.services = [args.service]
    if args.output is None and sys.stdout.isatty():
        raise ComposerError("export: refusing to write a tar archive to a terminal: use -o "
                            "FILE or redirect the output")

    async def go(project: Project) -> int:
        c = (await service_containers(project, args.service, index=args.index))[0]
        chunks = project.engine.export_container(c.id)
        if args.output is None:
            out = sys.stdout.buffer
            async for chunk in chunks:
                out.write(chunk)
            out.flush()
            return 0
        tmp = f"{args.output}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                async for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, args.output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return 0

    return run(with_project(args, go, lock=False))


def commit_cmd(args: argparse.Namespace) -> int:
    args.services = [args.service]
    if args.pause.lower() in ("false", "0", "f"):
        raise ComposerError("commit --pause=false is not supported: the container is always "
                            "paused while its changes are read (drop the flag)")

    async def go(project: Project) -> int:
        c = (await service_containers(project, args.service, index=args.index))[0]
        info = await project.engine.commit_container(c.id, CommitRequest(
            tag=args.reference or "", comment=args.message, author=args.author,
            changes=tuple(args.change)))
        print(info.id)
        return 0

    return run(with_project(args, go, lock=False))
