"""A `Stack` back to a plain mapping in Docker Compose's `config` shape (long forms).

Ports, volumes, depends_on and networks are written in their long syntax, environment as
a mapping, durations as Go-style text (`1m30s`); unset keys are left out. Strings have `$`
doubled, so the output loads again to the same model (as `docker compose config`).
"""
from __future__ import annotations

from typing import Any

from composer.spec.mounts import VolumeMount
from composer.spec.ports import PortSpec
from composer.spec.resources import Deploy, ResourceLimits
from composer.spec.service import ServiceSpec
from composer.spec.stack import Stack
from composer.spec.toplevel import FileObject, NetworkConfig, VolumeConfig
from composer.spec.units import format_duration


def render_stack(stack: Stack, *, escape: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"name": stack.name}
    out["services"] = {n: render_service(s) for n, s in sorted(stack.services.items())}
    if stack.networks:
        out["networks"] = {k: _network(stack, n) for k, n in sorted(stack.networks.items())}
    if stack.volumes:
        out["volumes"] = {k: _volume(stack, v) for k, v in sorted(stack.volumes.items())}
    for key, objs in (("secrets", stack.secrets), ("configs", stack.configs)):
        if objs:
            out[key] = {k: _file_object(o) for k, o in sorted(objs.items())}
    out.update(sorted(stack.extensions.items()))  # x-* keys, as docker compose config keeps them
    return _escape(out) if escape else out


def render_service(s: ServiceSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    simple = (
        "image", "container_name", "hostname", "domainname", "user", "working_dir", "restart",
        "stop_signal", "pull_policy", "platform", "cpuset", "cpus", "cpu_shares", "cpu_quota",
        "cpu_period", "pids_limit", "mem_limit", "memswap_limit", "mem_reservation", "shm_size",
        "network_mode", "mac_address", "userns_mode", "ipc", "pid", "uts", "cgroup", "init", "scale",
    )
    for key in simple:
        value = getattr(s, key)
        if value is not None:
            out[key] = value
    if s.storage_opt is not None:  # a map of strings, as Compose writes it
        out["storage_opt"] = {"size": str(s.storage_opt)}
    for key in ("read_only", "privileged", "tty", "stdin_open", "oom_kill_disable"):
        if getattr(s, key):
            out[key] = True
    if not s.attach:
        out["attach"] = False
    if s.build is not None:
        out["build"] = _build(s)
    for key in ("command", "entrypoint"):
        value = getattr(s, key)
        if value is not None:
            out[key] = list(value)
    for key in ("environment", "labels", "annotations", "sysctls"):
        if getattr(s, key):
            out[key] = dict(sorted(getattr(s, key).items()))
    for key in ("expose", "volumes_from", "links", "external_links", "cap_add", "cap_drop",
                "security_opt", "group_add", "dns", "dns_search", "dns_opt", "profiles",
                "device_cgroup_rules"):
        if getattr(s, key):
            out[key] = list(getattr(s, key))
    if s.env_files:
        out["env_file"] = [{"path": e.path, "required": e.required, **({"format": e.format} if e.format else {})}
                           for e in s.env_files]
    if s.label_files:
        out["label_file"] = list(s.label_files)
    if s.ports:
        out["ports"] = [_port(p) for p in s.ports]
    if s.volumes:
        out["volumes"] = [_mount(m) for m in s.volumes]
    if s.tmpfs:
        out["tmpfs"] = [_tmpfs(m) for m in s.tmpfs]
    if s.devices:
        out["devices"] = [{"source": d.source, "target": d.target, "permissions": d.permissions}
                          for d in s.devices]
    if s.depends_on:
        out["depends_on"] = {
            d.service: {"condition": d.condition, "required": d.required, "restart": d.restart}
            for d in s.depends_on
        }
    if s.networks:
        out["networks"] = {n.name: _service_network(n) for n in s.networks}
    if s.extra_hosts:
        out["extra_hosts"] = [f"{h}={ip}" for h, ip in s.extra_hosts]
    if s.ulimits:
        out["ulimits"] = {u.name: {"soft": u.soft, "hard": u.hard} for u in s.ulimits}
    if s.healthcheck is not None:
        out["healthcheck"] = _healthcheck(s)
    if s.stop_grace_period is not None:
        out["stop_grace_period"] = format_duration(s.stop_grace_period)
    deploy = _deploy(s.deploy)
    if deploy:
        out["deploy"] = deploy
    if s.logging is not None:
        out["logging"] = {k: v for k, v in (("driver", s.logging.driver), ("options", s.logging.options)) if v}
    for key in ("pre_start", "post_start", "pre_stop"):
        hooks = getattr(s, key)
        if hooks:
            out[key] = [h.render() for h in hooks]
    if s.develop is not None and s.develop.watch:
        out["develop"] = s.develop.render()
    for key in ("secrets", "configs"):
        refs = getattr(s, key)
        if refs:
            out[key] = [
                {k: v for k, v in (("source", r.source), ("target", r.target), ("uid", r.uid),
                                   ("gid", r.gid), ("mode", r.mode)) if v is not None}
                for r in refs
            ]
    out.update(s.extensions)
    return dict(sorted(out.items()))


def _build(s: ServiceSpec) -> dict[str, Any]:
    b = s.build
    assert b is not None
    out: dict[str, Any] = {"context": b.context}
    for key in ("dockerfile", "dockerfile_inline", "target", "network", "shm_size"):
        if getattr(b, key) is not None:
            out[key] = getattr(b, key)
    if b.args:
        out["args"] = dict(b.args)
    if b.labels:
        out["labels"] = dict(b.labels)
    for key in ("tags", "cache_from"):
        if getattr(b, key):
            out[key] = list(getattr(b, key))
    if b.no_cache:
        out["no_cache"] = True
    if b.pull:
        out["pull"] = True
    if b.privileged:
        out["privileged"] = True
    if b.entitlements:
        out["entitlements"] = list(b.entitlements)
    if b.extra_hosts:
        out["extra_hosts"] = [f"{h}={ip}" for h, ip in b.extra_hosts]
    if b.additional_contexts:
        out["additional_contexts"] = dict(b.additional_contexts)
    if b.secrets:
        out["secrets"] = [{k: v for k, v in (("source", r.source), ("target", r.target))
                           if v is not None} for r in b.secrets]
    if b.ssh:
        out["ssh"] = [sid if path is None else f"{sid}={path}" for sid, path in b.ssh]
    out.update(b.extra)
    return out


def _port(p: PortSpec) -> dict[str, Any] | str:
    if p.as_written is not None:
        return p.as_written
    out: dict[str, Any] = {"mode": p.mode, "target": p.target}
    if p.published is not None:
        out["published"] = p.published_text  # a string, "8000-8010" for a host range
    out["protocol"] = p.protocol
    if p.host_ip:
        out["host_ip"] = p.host_ip
    if p.name:
        out["name"] = p.name
    if p.app_protocol:
        out["app_protocol"] = p.app_protocol
    return out


def _mount(m: VolumeMount) -> dict[str, Any]:
    out: dict[str, Any] = {"type": m.type}
    if m.source is not None:
        out["source"] = m.source
    out["target"] = m.target
    if m.read_only:
        out["read_only"] = True
    if m.consistency:
        out["consistency"] = m.consistency
    if m.type == "bind":
        bind: dict[str, Any] = {"create_host_path": m.create_host_path}
        if m.propagation:
            bind["propagation"] = m.propagation
        if m.selinux:
            bind["selinux"] = m.selinux
        out["bind"] = bind
    elif m.type == "volume":
        vol: dict[str, Any] = {}
        if m.nocopy:
            vol["nocopy"] = True
        if m.subpath:
            vol["subpath"] = m.subpath
        out["volume"] = vol
    elif m.type == "image":
        if m.subpath:
            out["image"] = {"subpath": m.subpath}
    else:
        out.update(_tmpfs_opts(m))
    return out


def _tmpfs_opts(m: VolumeMount) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if m.tmpfs_size is not None:
        opts["size"] = m.tmpfs_size
    if m.tmpfs_mode is not None:
        opts["mode"] = m.tmpfs_mode
    return {"tmpfs": opts} if opts else {}


def _tmpfs(m: VolumeMount) -> str:
    opts = []
    if m.tmpfs_size is not None:
        opts.append(f"size={m.tmpfs_size}")
    if m.tmpfs_mode is not None:
        opts.append(f"mode={m.tmpfs_mode:o}")
    if m.read_only:
        opts.append("ro")
    return m.target + (":" + ",".join(opts) if opts else "")


def _service_network(n: Any) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if n.aliases:
        out["aliases"] = list(n.aliases)
    for key in ("ipv4_address", "ipv6_address", "mac_address", "interface_name"):
        if getattr(n, key):
            out[key] = getattr(n, key)
    if n.link_local_ips:
        out["link_local_ips"] = list(n.link_local_ips)
    for key in ("priority", "gw_priority"):
        if getattr(n, key):
            out[key] = getattr(n, key)
    return out or None


def _healthcheck(s: ServiceSpec) -> dict[str, Any]:
    h = s.healthcheck
    assert h is not None
    out: dict[str, Any] = {}
    if h.disable:
        out["disable"] = True
    if h.test is not None:
        out["test"] = list(h.test)
    for key in ("interval", "timeout", "start_period", "start_interval"):
        value = getattr(h, key)
        if value is not None:
            out[key] = format_duration(value)
    if h.retries is not None:
        out["retries"] = h.retries
    return out


def _limits(r: ResourceLimits) -> dict[str, Any]:
    out = {k: getattr(r, k) for k in ("cpus", "pids") if getattr(r, k) is not None}
    if r.memory is not None:
        out["memory"] = str(r.memory)  # the schema wants a string here
    return dict(sorted(out.items()))


def _deploy(d: Deploy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if d.replicas is not None:
        out["replicas"] = d.replicas
    if d.mode != "replicated":
        out["mode"] = d.mode
    res = {k: v for k, v in (("limits", _limits(d.limits)), ("reservations", _limits(d.reservations))) if v}
    if res:
        out["resources"] = res
    if d.restart_policy is not None:
        rp = d.restart_policy
        policy: dict[str, Any] = {"condition": rp.condition}
        if rp.max_attempts is not None:
            policy["max_attempts"] = rp.max_attempts
        for key in ("delay", "window"):
            if getattr(rp, key) is not None:
                policy[key] = format_duration(getattr(rp, key))
        out["restart_policy"] = policy
    return out


def _network(stack: Stack, n: NetworkConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"name": stack.network_name(n.key)}
    if n.external:
        out["external"] = True
        return out
    if n.driver:
        out["driver"] = n.driver
    for key in ("internal", "attachable", "enable_ipv6"):
        if getattr(n, key):
            out[key] = True
    if n.driver_opts:
        out["driver_opts"] = dict(n.driver_opts)
    if n.ipam or n.ipam_driver:
        out["ipam"] = {**({"driver": n.ipam_driver} if n.ipam_driver else {}), "config": [
            {k: getattr(p, k) for k in ("subnet", "gateway", "ip_range", "aux_addresses") if getattr(p, k)}
            for p in n.ipam
        ]}
    if n.labels:
        out["labels"] = dict(n.labels)
    out.update(n.extensions)
    return out


def _volume(stack: Stack, v: VolumeConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"name": stack.volume_name(v.key)}
    if v.external:
        out["external"] = True
        return out
    if v.driver:
        out["driver"] = v.driver
    if v.driver_opts:
        out["driver_opts"] = dict(v.driver_opts)
    if v.labels:
        out["labels"] = dict(v.labels)
    out.update(v.extensions)
    return out


def _file_object(o: FileObject) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("name", "file", "environment", "content"):
        if getattr(o, key) is not None:
            out[key] = getattr(o, key)
    if o.external:
        out["external"] = True
    if o.labels:
        out["labels"] = dict(o.labels)
    out.update(o.extensions)
    return out


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value
