"""A project rebuilt from what the engine holds, for `composer -p NAME VERB` without a file.

As Compose (`projectFromName`), the verbs that only act on what exists (ps, logs, exec,
stop, start, restart, kill, rm, pause, unpause, down, top, port, images, events, attach,
stats) work from the project name alone: services are the `com.docker.compose.service`
labels of its containers, their order comes from the `com.docker.compose.depends_on`
label, and networks and volumes are the ones labelled with the project. Pure: the caller
lists containers, networks and volumes and hands them in.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from composer import labels as L
from composer.spec.parts import DependsOn, ServiceNetwork
from composer.spec.service import ServiceSpec
from composer.spec.stack import Stack
from composer.spec.toplevel import NetworkConfig, VolumeConfig
from runtime.api import ContainerInfo, NetworkInfo, VolumeInfo


def stack_from_labels(
    project: str,
    containers: Iterable[ContainerInfo],
    networks: Iterable[NetworkInfo] = (),
    volumes: Iterable[VolumeInfo] = (),
) -> Stack:
    """The `Stack` of `project` as its labelled containers, networks and volumes describe it.

    Each service comes from its lowest-numbered service container (a one-off container's
    labels only when the service has no other); dependencies are not required (a service
    whose containers are gone is simply not there).
    """
    nets = {
        n.spec.labels.get(L.NETWORK) or n.name: NetworkConfig(
            n.spec.labels.get(L.NETWORK) or n.name, name=n.name)
        for n in networks if n.spec.labels.get(L.PROJECT) == project
    }
    key_of = {cfg.name: key for key, cfg in nets.items()}
    vols = {
        v.spec.labels.get(L.VOLUME) or v.name: VolumeConfig(
            v.spec.labels.get(L.VOLUME) or v.name, name=v.name)
        for v in volumes if v.spec.labels.get(L.PROJECT) == project
    }
    found: list[tuple[ContainerInfo, L.ContainerLabels]] = []
    for c in containers:
        parsed = L.ContainerLabels.parse(c.labels)
        if parsed is not None and parsed.project == project:
            found.append((c, parsed))
    found.sort(key=lambda f: (f[1].oneoff, f[1].number, f[0].created_at))
    services: dict[str, ServiceSpec] = {}
    working_dir = ""
    for c, parsed in found:
        working_dir = working_dir or c.labels.get(L.WORKING_DIR, "")
        if parsed.service in services:
            continue
        mode = c.spec.network_mode
        services[parsed.service] = ServiceSpec(
            name=parsed.service,
            image=c.image,
            depends_on=tuple(
                DependsOn(d.service, d.condition, d.restart, required=False)
                for d in parsed.depends_on if d.service != parsed.service
            ),
            networks=tuple(ServiceNetwork(key_of[a.network]) for a in c.spec.networks
                           if a.network in key_of),
            network_mode=None if mode == "bridge" else mode,
        )
    return Stack(
        name=project,
        project_directory=working_dir or os.getcwd(),
        services=services,
        networks=nets,
        volumes=vols,
    )
