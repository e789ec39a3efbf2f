"""The one converter from the stack model to the runtime's input types.

`container_spec()` turns a `ServiceSpec` into a `runtime.types.ContainerSpec` (no YAML left:
engine names for networks and volumes, resources in cgroup units, durations in seconds);
`network_spec()` / `volume_spec()` do the same for top-level networks and volumes;
`config_hash()` is the `com.docker.compose.config-hash` label value.
"""
from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import replace

from composer.errors import SpecError
from composer.spec.hooks import ServiceHook
from composer.spec.mounts import VolumeMount
from composer.spec.render import render_service
from composer.spec.service import ServiceSpec
from composer.spec.stack import Stack
from runtime.types import (
    ContainerSpec,
    DeviceMapping,
    Healthcheck,
    Mount,
    NetworkAttachment,
    NetworkSpec,
    PortBinding,
    Resources,
    Ulimit,
    VolumeSpec,
)

CPU_PERIOD = 100_000
MTU_OPTION = "com.docker.network.driver.mtu"


def container_spec(stack: Stack, service_name: str, number: int, *, labels: dict[str, str]) -> ContainerSpec:
    svc = stack.services.get(service_name)
    if svc is None:
        raise SpecError(f'no such service "{service_name}"', service=service_name)
    network_mode, networks = _networking(stack, svc)
    return ContainerSpec(
        name=svc.container_name or f"{stack.name}-{service_name}-{number}",
        image=svc.image or f"{stack.name}-{service_name}",
        command=svc.command,
        entrypoint=svc.entrypoint,
        env=dict(svc.environment),
        working_dir=svc.working_dir,
        user=svc.user,
        group_add=svc.group_add,
        hostname=svc.hostname,
        domainname=svc.domainname,
        labels={**svc.labels, **labels},
        mounts=_mounts(stack, svc),
        read_only=svc.read_only,
        shm_size=svc.shm_size,
        resources=resources(svc),
        ulimits=tuple(Ulimit(u.name, u.soft, u.hard) for u in svc.ulimits),
        sysctls=dict(svc.sysctls),
        cap_add=svc.cap_add,
        cap_drop=svc.cap_drop,
        devices=tuple(DeviceMapping(d.source, d.target, d.permissions) for d in svc.devices),
        device_cgroup_rules=svc.device_cgroup_rules,
        privileged=svc.privileged,
        security_opt=svc.security_opt,
        init=bool(svc.init),
        tty=svc.tty,
        stdin_open=svc.stdin_open,
        stop_signal=svc.stop_signal,  # None: the image's STOPSIGNAL (the engine decides)
        stop_grace_period=svc.stop_grace_period if svc.stop_grace_period is not None else 10.0,
        network_mode=network_mode,
        networks=networks,
        ports=tuple(
            PortBinding(p.target, p.protocol, p.host_ip, p.published or 0,  # type: ignore[arg-type]
                        host_port_end=p.published_end or 0)
            for p in svc.ports
        ),
        dns=svc.dns,
        dns_search=svc.dns_search,
        dns_opt=svc.dns_opt,
        extra_hosts=svc.extra_hosts,
        restart=restart_policy(svc),
        healthcheck=healthcheck(svc),
        userns_mode=svc.userns_mode or None,
    )


def hook_container_spec(stack: Stack, service_name: str, target: ContainerSpec,
                        mounts: tuple[Mount, ...], hook: ServiceHook, index: int, *,
                        labels: dict[str, str]) -> ContainerSpec:
    """The container of a `pre_start` hook, as Compose makes it: the hook's image (else the
    service's), command (over the image's entrypoint), user, working_dir and privileged,
    the service's environment with the hook's over it, the mounts of the service's container
    (`mounts`: its volumes and binds, Docker's VolumesFrom) and its networks (no aliases: the
    service's name keeps resolving to the service's own containers)."""
    svc = stack.services[service_name]
    return ContainerSpec(
        name=f"{target.name}-pre_start-{index}",
        image=hook.image or target.image,
        command=hook.command,
        env={**svc.environment, **hook.environment},
        working_dir=hook.working_dir,
        user=hook.user,
        labels=labels,
        mounts=tuple(m for m in mounts if m.type != "tmpfs"),
        privileged=hook.privileged,
        network_mode=target.network_mode,
        networks=tuple(replace(n, aliases=(), ipv4_address=None) for n in target.networks),
        dns=target.dns,
        dns_search=target.dns_search,
        dns_opt=target.dns_opt,
        extra_hosts=target.extra_hosts,
        restart="no",
    )


def _networking(stack: Stack, svc: ServiceSpec) -> tuple[str, tuple[NetworkAttachment, ...]]:
    mode = svc.network_mode
    if mode in ("host", "none"):
        return mode, ()
    if mode and mode.startswith("service:"):
        target = mode.split(":", 1)[1]
        return f"container:{stack.container_name(target, 1)}", ()
    if mode and mode.startswith("container:"):
        return mode, ()
    attachments = [
        NetworkAttachment(
            network=stack.network_name(n.name), aliases=tuple(dict.fromkeys((svc.name, *n.aliases))),
            ipv4_address=n.ipv4_address, priority=n.priority,
        )
        for n in (svc.networks or ())
    ]
    if not attachments:
        attachments = [NetworkAttachment(network=stack.network_name("default"), aliases=(svc.name,))]
    attachments.sort(key=lambda a: -a.priority)
    return "bridge", tuple(attachments)


def _mounts(stack: Stack, svc: ServiceSpec) -> tuple[Mount, ...]:
    mounts = [_mount(stack, m) for m in (*svc.volumes, *svc.tmpfs)]
    for kind, refs, objects, folder in (
        ("secret", svc.secrets, stack.secrets, "/run/secrets"),
        ("config", svc.configs, stack.configs, "/"),
    ):
        for ref in refs:
            obj = objects[ref.source]
            if obj.file is None:
                raise SpecError(
                    f'not supported: {kind} "{ref.source}" without file: (use a file-based {kind})',
                    path=f"services.{svc.name}.{kind}s", service=svc.name,
                )
            target = ref.target or ref.source
            if not target.startswith("/"):
                target = posixpath.join(folder, target)
            mounts.append(Mount("bind", target, obj.file, read_only=True, create_host_path=False))
    return tuple(mounts)


def _mount(stack: Stack, m: VolumeMount) -> Mount:
    if m.type == "bind":
        return Mount(
            "bind", m.target, m.source or "", read_only=m.read_only,
            create_host_path=m.create_host_path, propagation=m.propagation,
        )
    if m.type == "tmpfs":
        return Mount("tmpfs", m.target, read_only=m.read_only, tmpfs_size=m.tmpfs_size, tmpfs_mode=m.tmpfs_mode)
    source = stack.volume_name(m.source) if m.source else ""
    return Mount("volume", m.target, source, read_only=m.read_only, nocopy=m.nocopy)


def resources(svc: ServiceSpec) -> Resources:
    limits, reserve = svc.deploy.limits, svc.deploy.reservations
    period = svc.cpu_period or CPU_PERIOD
    cpus = svc.cpus if svc.cpus is not None else limits.cpus
    quota = svc.cpu_quota
    if quota is None and cpus:
        quota = round(cpus * period)
    return Resources(
        memory=svc.mem_limit if svc.mem_limit is not None else limits.memory,
        memory_swap=svc.memswap_limit,
        memory_reservation=svc.mem_reservation if svc.mem_reservation is not None else reserve.memory,
        cpu_quota=quota,
        cpu_period=period,
        cpu_shares=svc.cpu_shares,
        pids_limit=svc.pids_limit if svc.pids_limit is not None else limits.pids,
        cpuset_cpus=svc.cpuset,
        oom_kill_disable=svc.oom_kill_disable,
    )


def restart_policy(svc: ServiceSpec) -> str:
    if svc.restart:
        return svc.restart
    rp = svc.deploy.restart_policy
    if rp is None:
        return "no"
    if rp.condition == "any":
        return "always"
    if rp.condition == "on-failure":
        return f"on-failure:{rp.max_attempts}" if rp.max_attempts else "on-failure"
    return "no"


def healthcheck(svc: ServiceSpec) -> Healthcheck | None:
    h = svc.healthcheck
    if h is None or h.test is None:
        return None  # the image's own healthcheck (if any) applies
    if h.disable or h.test == ("NONE",):
        return Healthcheck(test=("NONE",))
    return Healthcheck(
        test=h.test,
        interval=h.interval if h.interval is not None else 30.0,
        timeout=h.timeout if h.timeout is not None else 30.0,
        retries=h.retries if h.retries is not None else 3,
        start_period=h.start_period if h.start_period is not None else 0.0,
        start_interval=h.start_interval if h.start_interval is not None else 5.0,
    )


def network_spec(stack: Stack, name: str) -> NetworkSpec:
    net = stack.networks.get(name)
    if net is None:
        raise SpecError(f'no such network "{name}"', path=f"networks.{name}")
    pool = net.ipam[0] if net.ipam else None
    mtu = net.driver_opts.get(MTU_OPTION)
    return NetworkSpec(
        name=stack.network_name(name),
        internal=net.internal,
        subnet=pool.subnet if pool else None,
        gateway=pool.gateway if pool else None,
        mtu=int(mtu) if mtu and mtu.isdigit() else None,
        labels={**net.labels, "com.docker.compose.project": stack.name, "com.docker.compose.network": name},
        external=net.external,
    )


def volume_spec(stack: Stack, name: str) -> VolumeSpec:
    vol = stack.volumes.get(name)
    if vol is None:
        raise SpecError(f'no such volume "{name}"', path=f"volumes.{name}")
    return VolumeSpec(
        name=stack.volume_name(name),
        labels={**vol.labels, "com.docker.compose.project": stack.name, "com.docker.compose.volume": name},
        external=vol.external,
    )


def config_hash(service: ServiceSpec) -> str:
    """sha256 of the service's normalised config; like Compose, ignores build, pull_policy
    and the replica count (scaling alone must not recreate containers)."""
    data = render_service(service)
    for key in ("build", "pull_policy", "scale"):
        data.pop(key, None)
    if "deploy" in data:
        data["deploy"] = {k: v for k, v in data["deploy"].items() if k != "replicas"}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()
