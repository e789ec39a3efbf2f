"""`Stack`: a loaded, merged, interpolated and validated stack file."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from composer.spec.service import ServiceSpec
from composer.spec.toplevel import FileObject, NetworkConfig, VolumeConfig


@dataclass(frozen=True)
class Stack:
    name: str  # the project name
    project_directory: str
    services: dict[str, ServiceSpec]  # enabled services (profiles applied)
    networks: dict[str, NetworkConfig] = field(default_factory=dict)
    volumes: dict[str, VolumeConfig] = field(default_factory=dict)
    secrets: dict[str, FileObject] = field(default_factory=dict)
    configs: dict[str, FileObject] = field(default_factory=dict)
    disabled_services: dict[str, ServiceSpec] = field(default_factory=dict)  # profile not active
    profiles: tuple[str, ...] = ()  # active profiles
    files: tuple[str, ...] = ()  # absolute paths of the stack files, in merge order
    environment: dict[str, str] = field(default_factory=dict)  # interpolation environment
    warnings: tuple[str, ...] = ()
    extensions: dict[str, Any] = field(default_factory=dict)  # top-level x-* keys

    def all_services(self) -> dict[str, ServiceSpec]:
        return {**self.services, **self.disabled_services}

    def with_services_enabled(self, names: Iterable[str]) -> Stack:
        """The stack with the services named on the command line enabled, as Compose does
        (`up debug`, `run debug`): each one's profiles join the active ones, so the services
        sharing one of them (e.g. its dependencies in the same profile) are enabled too. A
        dependency disabled by another profile stays disabled (the graph then reports it);
        names that are unknown or already enabled change nothing."""
        added = [p for n in names if n in self.disabled_services for p in self.disabled_services[n].profiles]
        if not added:
            return self
        profiles = tuple(dict.fromkeys((*self.profiles, *added)))
        every = self.all_services()
        enabled = {n: s for n, s in every.items() if service_enabled(s, profiles)}
        disabled = {n: s for n, s in every.items() if n not in enabled}
        return replace(self, services=enabled, disabled_services=disabled, profiles=profiles)

    def with_only_services(self, names: Iterable[str]) -> Stack:
        """The stack reduced to the enabled services `names` (a caller adds their dependencies)
        and the top-level networks, volumes, secrets and configs they use — as docker
        compose's `config SERVICE...` (compose-go's WithSelectedServices, then
        WithoutUnnecessaryResources). Services of inactive profiles are dropped too."""
        keep = {n: s for n, s in self.services.items() if n in set(names)}
        networks: set[str] = set()
        volumes: set[str] = set()
        secrets: set[str] = set()
        configs: set[str] = set()
        for svc in keep.values():
            networks.update(n.name for n in svc.networks)
            if not svc.network_mode and not svc.networks:
                networks.add("default")
            volumes.update(m.source for m in svc.volumes if m.type == "volume" and m.source)
            secrets.update(r.source for r in svc.secrets)
            configs.update(r.source for r in svc.configs)
        return replace(
            self, services=keep, disabled_services={},
            networks={k: v for k, v in self.networks.items() if k in networks},
            volumes={k: v for k, v in self.volumes.items() if k in volumes},
            secrets={k: v for k, v in self.secrets.items() if k in secrets},
            configs={k: v for k, v in self.configs.items() if k in configs},
        )

    def all_profiles(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for svc in self.all_services().values():
            for p in svc.profiles:
                seen[p] = None
        return tuple(sorted(seen))

    def network_name(self, key: str) -> str:
        """Engine name of a stack network: `<project>_<key>` unless named or external."""
        net = self.networks.get(key)
        if net is not None and net.name:
            return net.name
        if net is not None and net.external:
            return key
        return f"{self.name}_{key}"

    def volume_name(self, key: str) -> str:
        vol = self.volumes.get(key)
        if vol is not None and vol.name:
            return vol.name
        if vol is not None and vol.external:
            return key
        return f"{self.name}_{key}"

    def container_name(self, service: str, number: int = 1) -> str:
        spec = self.all_services()[service]
        return spec.container_name or f"{self.name}-{service}-{number}"


def service_enabled(svc: ServiceSpec, profiles: Iterable[str]) -> bool:
    """A service runs when it has no profiles, or one of them is active (`*`: all are)."""
    active = set(profiles)
    return not svc.profiles or "*" in active or any(p in active for p in svc.profiles)
