"""The one converter from the stack model to the runtime's input types.

`container_spec()` turns a `ServiceSpec` into a `runtime.types.ContainerSpec` (no YAML left:
engine names for networks and volumes, resources in cgroup units, durations in seconds);
`network_spec()` / `volume_spec()` do the same for top-level networks and volumes;
`config_hash()` is the `com.docker.compose.config-hash` label value.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from composer.errors import SpecError
from composer.spec.hooks import ServiceHook
from composer.spec.mounts import VolumeMount
from composer.spec.render import render_service
from composer.spec.service import ServiceSpec
from composer.spec.stack import Stack
from runtime.api import BuildRequest
from runtime.types import (
    ContainerSpec,
    DeviceMapping,
    Healthcheck,
    InjectedFile,
    LogConfig,
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
    file_binds, files = _files(stack, svc)
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
        mounts=_mounts(stack, svc) + file_binds,
        files=files,
        read_only=svc.read_only,
        shm_size=svc.shm_size,
        storage_size=svc.storage_opt,
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
        ipc_mode=_shared(stack, svc, "ipc", svc.ipc),
        pid_mode=_shared(stack, svc, "pid", svc.pid),
        uts_mode=svc.uts or "",
        cgroupns_mode=svc.cgroup or "",
        logging=log_config(svc),
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
def _shared(stack: Stack, svc: ServiceSpec, key: str, mode: str | None) -> str:
    """`service:NAME` names the service's first container (as network_mode does)."""
    if mode and mode.endswith(":"):
        raise SpecError(f'{key} "{mode}" names no {mode[:-1]} (is a variable unset?)',
                        file=_file_of(stack), path=f"services.{svc.name}.{key}", service=svc.name)
    if mode and mode.startswith("service:"):
        return f"container:{stack.container_name(mode.split(':', 1)[1], 1)}"
    return mode or ""


def log_config(svc: ServiceSpec) -> LogConfig:
    """`logging:` (validated by the spec) -> the runtime's LogConfig; defaults are the engine's."""
    lg = svc.logging
    if lg is None:
        return LogConfig()
    return LogConfig(lg.driver or "json-file", lg.max_size, lg.max_file,  # type: ignore[arg-type]
                     lg.compress, fluentd_address=lg.fluentd_address, tag=lg.tag,
                     fluentd_async=lg.fluentd_async, fluentd_sub_second=lg.fluentd_sub_second)


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
            ipv4_address=n.ipv4_address, priority=n.priority, mac_address=n.mac_address,
            interface_name=n.interface_name, link_local_ips=n.link_local_ips, gw_priority=n.gw_priority,
        )
        for n in (svc.networks or ())
    ]
    if not attachments:
        attachments = [NetworkAttachment(network=stack.network_name("default"), aliases=(svc.name,))]
    attachments.sort(key=lambda a: -a.priority)
    if svc.mac_address:  # the service's goes to its main network (as Compose)
        main = attachments[0]
        if main.mac_address and main.mac_address != svc.mac_address:
            raise SpecError(f"the service-level mac_address should have the same value as network "
                            f"{main.network}'s", path=f"services.{svc.name}.mac_address", service=svc.name)
        attachments[0] = replace(main, mac_address=svc.mac_address)
    return "bridge", tuple(attachments)


def _mounts(stack: Stack, svc: ServiceSpec) -> tuple[Mount, ...]:
    for i, m in enumerate(svc.volumes):
        if m.type == "image" and not m.source:
            raise SpecError("an image mount needs the image as source (is a variable unset?)",
                            file=_file_of(stack), path=f"services.{svc.name}.volumes[{i}].source",
                            service=svc.name)
    return tuple(mount_of(stack, m) for m in (*svc.volumes, *svc.tmpfs))


def _files(stack: Stack, svc: ServiceSpec) -> tuple[tuple[Mount, ...], tuple[InjectedFile, ...]]:
    """Secrets and configs: a file one without uid/gid/mode is a read-only bind of the host
    file (live, as Compose binds it); from `environment:` or `content:`, or with uid/gid/
    mode, the engine makes the file with that owner and mode (default 0444, as Compose)."""
    binds: list[Mount] = []
    made: list[InjectedFile] = []
    for kind, refs, objects, folder in (
        ("secret", svc.secrets, stack.secrets, "/run/secrets"),
        ("config", svc.configs, stack.configs, "/"),
    ):
        for i, ref in enumerate(refs):
            obj = objects[ref.source]
            where = f"services.{svc.name}.{kind}s[{i}]"
            target = ref.target or ref.source
            if not target.startswith("/"):
                target = posixpath.join(folder, target)
            if obj.external:
                raise SpecError(f'not supported: external {kind} "{ref.source}" (swarm only: give it '
                                f"a file, environment or content)", path=where, service=svc.name)
            owned = ref.uid is not None or ref.gid is not None or ref.mode is not None
            if obj.file is not None and not owned:
                binds.append(Mount("bind", target, obj.file, read_only=True, create_host_path=False))
                continue
            content = ""
            if obj.environment is not None:
                if obj.environment not in stack.environment:
                    raise SpecError(f'environment variable {obj.environment} required by {kind} '
                                    f'"{ref.source}" is not set (set it, or put it in .env)',
                                    path=where, service=svc.name)
                content = _b64(stack.environment[obj.environment])
            elif obj.content is not None:
                content = _b64(obj.content)
            made.append(InjectedFile(
                target, content=content, source=obj.file or "",
                uid=int(ref.uid) if ref.uid is not None else 0,
                gid=int(ref.gid) if ref.gid is not None else 0,
                mode=ref.mode if ref.mode is not None else 0o444))
    return tuple(binds), tuple(made)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def mount_of(stack: Stack, m: VolumeMount) -> Mount:
    """A `volumes:` entry as the engine mounts it."""
    if m.type == "bind":
        return Mount(
            "bind", m.target, m.source or "", read_only=m.read_only,
            create_host_path=m.create_host_path, propagation=m.propagation,
        )
    if m.type == "tmpfs":
        return Mount("tmpfs", m.target, read_only=m.read_only, tmpfs_size=m.tmpfs_size, tmpfs_mode=m.tmpfs_mode)
    if m.type == "image":
        return Mount("image", m.target, m.source or "", read_only=True, subpath=m.subpath or "")
    source = stack.volume_name(m.source) if m.source else ""
    return Mount("volume", m.target, source, read_only=m.read_only, nocopy=m.nocopy,
                 subpath=m.subpath or "")


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


def build_request(stack: Stack, service_name: str, tag: str, *, no_cache: bool = False,
                  ssh_agents: Mapping[str, str] | None = None) -> BuildRequest:
    """What the engine's builder needs for a service's `build:`. An arg without a value takes
    it from the environment (.env, then the process), else the Dockerfile's default applies
    (as Compose's resolveAndMergeBuildArgs)."""
    svc = stack.services[service_name]
    b = svc.build
    if b is None:
        raise SpecError(f'service "{service_name}" has no build section', service=service_name)
    if b.remote:
        raise SpecError(
            f"not supported yet: a git or URL build context ({b.context}): clone it and set "
            "context to the local folder", file=_file_of(stack), path=f"services.{service_name}.build.context",
            service=service_name)
    args = {k: v if v is not None else stack.environment.get(k) for k, v in b.args.items()}
    return BuildRequest(
        context=b.context, dockerfile=b.dockerfile or "Dockerfile", tag=tag, target=b.target,
        build_args={k: v for k, v in args.items() if v is not None},
        # no_cache_filter: those stages without the cache; the builder has one switch, so no
        # stage uses it (a fresher build than asked, never a staler one)
        no_cache=no_cache or b.no_cache or bool(b.no_cache_filter), dockerfile_inline=b.dockerfile_inline,
        tags=tuple(t for t in b.tags if t != tag), labels=dict(b.labels), pull=b.pull,
        network=b.network or "default", shm_size=b.shm_size, extra_hosts=b.extra_hosts,
        named_contexts=_named_contexts(stack, service_name),
        secrets=_build_secrets(stack, service_name),
        ssh=_build_ssh(stack, service_name, ssh_agents or {}),
        entitlements=b.granted,
    )


def ssh_sources(stack: Stack, service_name: str) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """build.ssh split as BuildKit's CLI reads it: (id -> an agent's socket, id -> key files).
    No path means this process's $SSH_AUTH_SOCK (as `docker compose build`); a path that is a
    socket is an agent; otherwise the paths are private keys, served from an agent that
    composer.sshkeys starts for the build."""
    b = stack.services[service_name].build
    assert b is not None
    sockets: dict[str, str] = {}
    keys: dict[str, tuple[str, ...]] = {}
    where = f"services.{service_name}.build.ssh"
    for sid, path in b.ssh:
        if path is None:
            sock = os.environ.get("SSH_AUTH_SOCK", "")
            if not sock:
                raise SpecError(f'ssh agent "{sid}": SSH_AUTH_SOCK is not set (start one: '
                                "eval $(ssh-agent) && ssh-add)", file=_file_of(stack),
                                path=where, service=service_name)
            path = sock
        paths = tuple(path.split(","))
        modes = []
        for one in paths:
            try:
                modes.append(os.stat(one).st_mode)
            except OSError as e:
                raise SpecError(f'ssh agent "{sid}": cannot use {one}: {e.strerror}',
                                file=_file_of(stack), path=where, service=service_name) from None
        if len(paths) == 1 and stat.S_ISSOCK(modes[0]):
            sockets[sid] = paths[0]
        elif all(stat.S_ISREG(m) for m in modes):
            keys[sid] = paths
        else:
            raise SpecError(f'ssh agent "{sid}": {path} is neither one agent socket nor key '
                            "files", file=_file_of(stack), path=where, service=service_name)
    return sockets, keys


def _build_ssh(stack: Stack, service_name: str, key_agents: Mapping[str, str]) -> dict[str, str]:
    """build.ssh as the builder takes them: id -> an agent's socket; an id given as key files
    takes the socket of the agent started for them (`key_agents`, composer.sshkeys)."""
    sockets, keys = ssh_sources(stack, service_name)
    for sid in keys:
        if sid not in key_agents:
            raise SpecError(f'ssh agent "{sid}": key files need an agent started for the build '
                            "(composer.sshkeys.key_agents)", file=_file_of(stack),
                            path=f"services.{service_name}.build.ssh", service=service_name)
        sockets[sid] = key_agents[sid]
    return sockets


def _build_secrets(stack: Stack, service_name: str) -> dict[str, str]:
    """build.secrets as the builder takes them: the id the Dockerfile names (`target`, else
    the secret's key) -> the content, read here from its file, variable or inline text."""
    b = stack.services[service_name].build
    assert b is not None
    out: dict[str, str] = {}
    for i, ref in enumerate(b.secrets):
        obj = stack.secrets[ref.source]
        where = f"services.{service_name}.build.secrets[{i}]"
        if obj.external:
            raise SpecError(f'not supported: external secret "{ref.source}" for a build (give it '
                            "a file, environment or content)", file=_file_of(stack), path=where,
                            service=service_name)
        if obj.environment is not None:
            if obj.environment not in stack.environment:
                raise SpecError(f"environment variable {obj.environment} required by build secret "
                                f'"{ref.source}" is not set (set it, or put it in .env)',
                                file=_file_of(stack), path=where, service=service_name)
            content = stack.environment[obj.environment]
        elif obj.content is not None:
            content = obj.content
        else:
            assert obj.file is not None
            try:
                content = Path(obj.file).read_bytes().decode("utf-8", "surrogateescape")
            except OSError as e:
                raise SpecError(f'build secret "{ref.source}": cannot read {obj.file}: '
                                f"{e.strerror}", file=_file_of(stack), path=where,
                                service=service_name) from None
        out[ref.target or ref.source] = content
    return out


def build_dependencies(stack: Stack, service_name: str) -> tuple[str, ...]:
    """Services whose image this service's build uses (`additional_contexts: service:NAME`)."""
    b = stack.services[service_name].build
    names = [v.split(":", 1)[1] for v in (b.additional_contexts.values() if b else ()) if v.startswith("service:")]
    return tuple(dict.fromkeys(names))


def _named_contexts(stack: Stack, service_name: str) -> dict[str, str]:
    b = stack.services[service_name].build
    assert b is not None
    out = {}
    for name, value in b.additional_contexts.items():
        if value.startswith("service:"):
            other = value.split(":", 1)[1]
            svc = stack.services.get(other)
            if svc is None or svc.build is None and svc.image is None:
                raise SpecError(f'additional context {name}: no service "{other}" to build from',
                                file=_file_of(stack), service=service_name,
                                path=f"services.{service_name}.build.additional_contexts.{name}")
            out[name] = "image:" + (svc.image or f"{stack.name}-{other}")
        elif value.startswith("docker-image://"):
            out[name] = "image:" + value.removeprefix("docker-image://")
        else:
            out[name] = "dir:" + value
    return out


def _file_of(stack: Stack) -> str | None:
    return os.path.basename(stack.files[0]) if stack.files else None


def network_spec(stack: Stack, name: str) -> NetworkSpec:
    net = stack.networks.get(name)
    if net is None:
        raise SpecError(f'no such network "{name}"', path=f"networks.{name}")
    pool = next((p for p in net.ipam if not p.ipv6), None)  # one IPv4 pool (checked at load)
    mtu = net.driver_opts.get(MTU_OPTION)
    return NetworkSpec(
        name=stack.network_name(name),
        internal=net.internal,
        subnet=pool.subnet if pool else None,
        gateway=pool.gateway if pool else None,
        ip_range=pool.ip_range if pool else None,
        aux_addresses=dict(pool.aux_addresses) if pool else {},
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
        external=vol.external, driver_opts=dict(vol.driver_opts),
    )


def config_hash(service: ServiceSpec) -> str:
    """sha256 of the service's normalised config; like Compose, ignores build, pull_policy
    and the replica count (scaling alone must not recreate containers); x-* keys too (they
    change nothing here, so they must not recreate either)."""
    data = {k: v for k, v in render_service(service).items() if not k.startswith("x-")}
    for key in ("build", "pull_policy", "scale"):
        data.pop(key, None)
    if "deploy" in data:
        data["deploy"] = {k: v for k, v in data["deploy"].items() if k != "replicas"}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()
