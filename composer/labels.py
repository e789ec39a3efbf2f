"""Container labels as Docker Compose writes them.

Everything `up` creates carries these labels, so `ps`, `down` and the next `up` find a
project's containers from the engine alone (no local state file), and tools that know
Docker Compose labels read ours. Values are strings, as in Docker: numbers in decimal,
booleans as "True"/"False", lists comma-joined.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "com.docker.compose."
PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
CONTAINER_NUMBER = "com.docker.compose.container-number"
CONFIG_HASH = "com.docker.compose.config-hash"
ONEOFF = "com.docker.compose.oneoff"
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
DEPENDS_ON = "com.docker.compose.depends_on"
IMAGE = "com.docker.compose.image"  # the image id (digest) the container was created from
VERSION = "com.docker.compose.version"
NETWORK = "com.docker.compose.network"  # on networks: the network's key in the stack file
VOLUME = "com.docker.compose.volume"  # on volumes: the volume's key in the stack file
# on the short-lived container of a `pre_start` hook (value "pre_start"), as Compose marks
# it: not a container of the service (not planned, listed, nor counted as a replica)
HOOK = "com.docker.compose.hook"

COMPOSER_VERSION = "0.1.0"


@dataclass(frozen=True)
class DependsOnLabel:
    """One `depends_on` entry as stored in the label: `service:condition:restart`."""

    service: str
    condition: str = "service_started"
    restart: bool = False

    def format(self) -> str:
        return f"{self.service}:{self.condition}:{str(self.restart).lower()}"

    @classmethod
    def parse(cls, text: str) -> DependsOnLabel:
        """Parse `db`, `db:service_healthy` or `db:service_healthy:true`."""
        parts = text.strip().split(":")
        service = parts[0]
        condition = parts[1] if len(parts) > 1 and parts[1] else "service_started"
        restart = len(parts) > 2 and parts[2].lower() == "true"
        return cls(service, condition, restart)


def format_depends_on(deps: Iterable[DependsOnLabel]) -> str:
    """The label value: entries sorted by service name, comma-joined."""
    return ",".join(d.format() for d in sorted(deps, key=lambda d: d.service))


def parse_depends_on(value: str) -> tuple[DependsOnLabel, ...]:
    return tuple(DependsOnLabel.parse(p) for p in value.split(",") if p.strip())


def format_bool(value: bool) -> str:
    return "True" if value else "False"


def container_labels(
    project: str,
    service: str,
    number: int,
    config_hash: str,
    *,
    oneoff: bool = False,
    working_dir: str = "",
    config_files: Iterable[str] = (),
    depends_on: Iterable[DependsOnLabel] = (),
    image_id: str = "",
    user_labels: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """All labels of one container: the service's own labels, then ours over them.

    As in Docker Compose, a user label cannot override a `com.docker.compose.*` label we set.
    """
    labels = dict(user_labels or {})
    labels.update(
        {
            PROJECT: project,
            SERVICE: service,
            CONTAINER_NUMBER: str(number),
            CONFIG_HASH: config_hash,
            ONEOFF: format_bool(oneoff),
            WORKING_DIR: working_dir,
            CONFIG_FILES: ",".join(config_files),
            DEPENDS_ON: format_depends_on(depends_on),
            IMAGE: image_id,
            VERSION: COMPOSER_VERSION,
        }
    )
    return labels


def project_filter(project: str, *, oneoff: bool | None = False) -> dict[str, str]:
    """A label filter (for `list_containers(labels=...)`) matching a project's containers.

    oneoff=False: service containers only (the default, as `ps`); True: `run` containers
    only; None: both.
    """
    labels = {PROJECT: project}
    if oneoff is not None:
        labels[ONEOFF] = format_bool(oneoff)
    return labels


def service_filter(project: str, service: str, *, oneoff: bool | None = False) -> dict[str, str]:
    """A label filter matching one service's containers."""
    labels = project_filter(project, oneoff=oneoff)
    labels[SERVICE] = service
    return labels


@dataclass(frozen=True)
class ContainerLabels:
    """The compose labels of one container, parsed."""

    project: str
    service: str
    number: int
    config_hash: str = ""
    oneoff: bool = False
    image_id: str = ""
    depends_on: tuple[DependsOnLabel, ...] = ()

    @classmethod
    def parse(cls, labels: Mapping[str, str]) -> ContainerLabels | None:
        """None when the container was not made by a compose tool (no project/service), or
        is the container of a pre_start hook."""
        project = labels.get(PROJECT)
        service = labels.get(SERVICE)
        if not project or not service or HOOK in labels:
            return None
        try:
            number = int(labels.get(CONTAINER_NUMBER, "0"))
        except ValueError:
            number = 0
        return cls(
            project=project,
            service=service,
            number=number,
            config_hash=labels.get(CONFIG_HASH, ""),
            oneoff=labels.get(ONEOFF, "False").lower() == "true",
            image_id=labels.get(IMAGE, ""),
            depends_on=parse_depends_on(labels.get(DEPENDS_ON, "")),
        )


# a valid project name (compose-go's): lowercase letters, digits, "_" and "-"
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def label_services(project: str, containers: Iterable[Any]) -> list[str]:
    """The services of `project` as its containers' labels name them (hook containers and
    other projects' left out), in the order they come: a stack rebuilt from labels."""
    out: dict[str, None] = {}
    for c in containers:
        parsed = ContainerLabels.parse(c.labels)
        if parsed is not None and parsed.project == project:
            out[parsed.service] = None
    return list(out)


def project_containers(found: Iterable[Any], services: Collection[str] = (), *,
                       oneoff: bool | None = False, hooks: bool = False) -> list[Any]:
    """Of a project's containers (runtime.api.ContainerInfo), those of `services` (all when
    empty), `oneoff` ones or not (None: both), hook containers only with `hooks`; by service
    and number. What Project.containers and the CLI's quick path both list."""
    out = []
    for c in found:
        if (HOOK in c.labels) != hooks:
            continue
        if oneoff is not None and (c.labels.get(ONEOFF, "False") == "True") != oneoff:
            continue
        if services and c.labels.get(SERVICE) not in services:
            continue
        out.append(c)
    return sorted(out, key=lambda c: (c.labels.get(SERVICE, ""), _number(c.labels)))


def _number(labels: Mapping[str, str]) -> int:
    try:
        return int(labels.get(CONTAINER_NUMBER, "0"))
    except ValueError:
        return 0
