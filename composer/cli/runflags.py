"""The `run` flags that change the one-off container (docker compose run's): published
ports (-p, --service-ports), extra mounts (-v), labels (-l), capabilities (--cap-add,
--cap-drop), network aliases (--use-aliases), and how its image is got (--build, --pull).

Values are parsed as the stack file's own entries (`ports:`, `volumes:`), so they mean the
same and fail the same way; a relative bind source is relative to the current directory,
as docker compose does.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import replace

from composer import labels as L
from composer.convert import mount_of
from composer.errors import ComposerError
from composer.spec import Stack
from composer.spec.mounts import VolumeMount
from composer.spec.ports import PortSpec
from composer.spec.where import Where
from runtime.errors import InvalidArgument
from runtime.process.config import normalize_cap
from runtime.types import ContainerSpec, PortBinding


def apply_run_flags(stack: Stack, spec: ContainerSpec, args: argparse.Namespace) -> ContainerSpec:
    """`spec` (the service's container, before the one-off's own changes) with the flags."""
    ports: tuple[PortBinding, ...] = spec.ports if args.service_ports else ()
    extra: list[PortBinding] = []
    for i, item in enumerate(args.publish):
        for p in PortSpec.parse(item, Where("command line", f"--publish[{i}]")):
            extra.append(PortBinding(p.target, p.protocol, p.host_ip,  # type: ignore[arg-type]
                                     p.published or 0, host_port_end=p.published_end or 0))
    mounts = list(spec.mounts)
    for i, item in enumerate(args.volume):
        m = VolumeMount.parse(item, Where("command line", f"--volume[{i}]"), os.getcwd())
        if m.type == "volume" and m.source and m.source not in stack.volumes:
            raise ComposerError(
                f"run --volume {item!r}: volume {m.source!r} is not declared in the stack's "
                "volumes: (declare it, or give a path for a bind mount)")
        mount = mount_of(stack, m)
        mounts = [x for x in mounts if x.target != mount.target] + [mount]  # -v wins
    labels = dict(spec.labels)
    for item in args.label:
        key, sep, value = item.partition("=")
        if not key:
            raise ComposerError(f"invalid --label {item!r}: use KEY=VALUE")
        if key.startswith(L.PREFIX):
            raise ComposerError(f"--label {key}: the {L.PREFIX}* labels are composer's own "
                                "(it finds its containers by them); use another key")
        labels[key] = value
    for flag, caps in (("--cap-add", args.cap_add), ("--cap-drop", args.cap_drop)):
        for cap in caps:
            try:
                normalize_cap(cap)
            except InvalidArgument as e:
                raise ComposerError(f"{flag}: {e}") from None
    networks = spec.networks if args.use_aliases else tuple(
        replace(n, aliases=()) for n in spec.networks)
    return replace(spec, ports=(*ports, *extra), mounts=tuple(mounts), labels=labels,
                   cap_add=(*spec.cap_add, *args.cap_add), cap_drop=(*spec.cap_drop, *args.cap_drop),
                   networks=networks)
