"""`ServiceSpec`: one service of a stack, every supported key typed and normalised.

`ServiceSpec.parse(name, raw, ctx)` takes the service mapping after interpolation, merge
and `extends`; each key goes through its own small parser (table `_PARSERS`), so a wrong
value fails with the file and the key path (`services.web.ports[1]`).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.readlog import is_file
from composer.spec.devices import DeviceSpec, parse_cgroup_rules
from composer.spec.dotenv import read_env_file, read_raw_env_file
from composer.spec.hooks import Develop, ServiceHook
from composer.spec.keys import SERVICE_KEYS, SERVICE_UNSUPPORTED, SERVICE_WARN
from composer.spec.mounts import VolumeMount, parse_tmpfs_entry, resolve_path
from composer.spec.parts import (
    DependsOn,
    EnvFile,
    FileRef,
    Healthcheck,
    ServiceNetwork,
    parse_command,
    parse_mac,
)
from composer.spec.ports import PortSpec, parse_expose
from composer.spec.resources import BuildSpec, Deploy, Logging, Ulimit, parse_extra_hosts
from composer.spec.secopts import parse_security_opts
from composer.spec.units import parse_bytes, parse_duration
from composer.spec.where import (
    Where,
    as_bool,
    as_int,
    as_list,
    as_map,
    as_number,
    as_str,
    check_keys,
    extensions,
    list_or_dict,
    str_list,
    str_or_list,
    type_name,
    unique_items,
)

RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
PULL_POLICY = re.compile(r"^(always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+)$")
CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
PROFILE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
NETWORK_MODE = re.compile(r"^(host|none|bridge|default|(container|service):.+)$")
_SHARED_NS = re.compile(r"^(container|service):.*$")  # an empty name (unset ${VAR}): at convert


@dataclass
class ParseContext:
    base_dir: str  # project directory: relative paths resolve against it
    environ: Mapping[str, str]  # interpolation environment (for `KEY` without a value)
    warnings: list[str] = field(default_factory=list)
    read_env_files: bool = True
    # (section, name) -> the file a resource came from when `include:` imported it, so
    # that errors and warnings about it name that file rather than the including one
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    # False under `config --no-interpolate`: a value may still hold `${VAR}`, printed as
    # written where it can't be normalised (a short port, a bind source, container_name)
    interpolated: bool = True


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str | None = None
    build: BuildSpec | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: dict[str, str] = field(default_factory=dict)  # env_file first, then environment
    env_files: tuple[EnvFile, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)  # label_file first, then labels
    label_files: tuple[str, ...] = ()  # absolute paths
    annotations: dict[str, str] = field(default_factory=dict)
    ports: tuple[PortSpec, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    tmpfs: tuple[VolumeMount, ...] = ()
    volumes_from: tuple[str, ...] = ()
    depends_on: tuple[DependsOn, ...] = ()
    links: tuple[str, ...] = ()
    external_links: tuple[str, ...] = ()
    networks: tuple[ServiceNetwork, ...] = ()  # empty + network_mode None -> the default network
    network_mode: str | None = None
    healthcheck: Healthcheck | None = None
    deploy: Deploy = field(default_factory=Deploy)
    scale: int | None = None
    mem_limit: int | None = None
    memswap_limit: int | None = None
    mem_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset: str | None = None
    pids_limit: int | None = None
    oom_kill_disable: bool = False
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict)
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    devices: tuple[DeviceSpec, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    user: str | None = None
    userns_mode: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    extra_hosts: tuple[tuple[str, str], ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    init: bool | None = None
    stop_signal: str | None = None
    stop_grace_period: float | None = None  # seconds
    shm_size: int | None = None
    storage_opt: int | None = None  # storage_opt.size: bytes of the writable layer
    read_only: bool = False
    privileged: bool = False
    tty: bool = False
    stdin_open: bool = False
    restart: str | None = None
    profiles: tuple[str, ...] = ()
    container_name: str | None = None
    pull_policy: str | None = None
    platform: str | None = None
    logging: Logging | None = None
    mac_address: str | None = None  # of the main (first by priority) network
    ipc: str | None = None  # private | shareable | host | service:NAME | container:NAME
    pid: str | None = None  # host | service:NAME | container:NAME
    uts: str | None = None  # host
    cgroup: str | None = None  # host | private
    attach: bool = True
    secrets: tuple[FileRef, ...] = ()
    configs: tuple[FileRef, ...] = ()
    pre_start: tuple[ServiceHook, ...] = ()
    post_start: tuple[ServiceHook, ...] = ()
    pre_stop: tuple[ServiceHook, ...] = ()
    develop: Develop | None = None
    extensions: dict[str, Any] = field(default_factory=dict)  # x-* keys, kept for `config`

    @property
    def replicas(self) -> int:
        if self.scale is not None:
            return self.scale
        return self.deploy.replicas if self.deploy.replicas is not None else 1

    @classmethod
    def parse(cls, name: str, raw: Any, w: Where, ctx: ParseContext) -> ServiceSpec:
        if raw is None:
            raw = {}
        raw = as_map(raw, w)
        check_keys(raw, w, SERVICE_KEYS, unsupported=SERVICE_UNSUPPORTED)
        values: dict[str, Any] = {"name": name, "extensions": extensions(raw)}
        for key, value in raw.items():
            if key.startswith("x-") or key == "extends":
                continue
            if key in SERVICE_WARN:
                ctx.warnings.append(f"{w.file}: {w.key(key).path}: {SERVICE_WARN[key]}")
            parser = _PARSERS.get(key)
            if value is None and key not in _NULL_OK:
                w.key(key).fail("expected a value, got null")
            values[key] = parser(value, w.key(key), ctx) if parser else value
        if values.get("container_name") == "":
            del values["container_name"]  # `${NAME}` unset: as if not given
        values["environment"] = _environment(raw, values, w, ctx)
        values.pop("env_file", None)
        if "env_file" in raw and raw["env_file"] is not None:
            values["env_files"] = EnvFile.parse_all(raw["env_file"], w.key("env_file"), ctx.base_dir)
        if "label_file" in values:
            values["label_files"] = values.pop("label_file")
            values["labels"] = {**_label_files(values["label_files"], w.key("label_file"), ctx),
                                **values.get("labels", {})}
        _check_service(values, w, ctx)
        return cls(**values)


def _environment(raw: dict[str, Any], values: dict[str, Any], w: Where, ctx: ParseContext) -> dict[str, str]:
    env: dict[str, str] = {}
    if raw.get("env_file") is not None and ctx.read_env_files:
        for ef in EnvFile.parse_all(raw["env_file"], w.key("env_file"), ctx.base_dir):
            path = Path(ef.path)
            if not is_file(path):
                if ef.required:
                    w.key("env_file").fail(f'env file "{ef.path}" not found (create it or set required: false)')
                continue
            read = read_raw_env_file if ef.format == "raw" else read_env_file
            env.update(read(path, ctx.environ))
    given = values.get("environment") or {}
    for key, value in given.items():
        if value is not None:
            env[key] = value
        elif key in ctx.environ:
            env[key] = ctx.environ[key]
        else:
            env.pop(key, None)
    return env


def _label_files(paths: tuple[str, ...], w: Where, ctx: ParseContext) -> dict[str, str]:
    """Labels from `label_file` (the .env syntax, later files win), as compose-go reads them;
    a missing file is an error. Skipped while one file of several is validated alone."""
    out: dict[str, str] = {}
    if not ctx.read_env_files:
        return out
    for path in paths:
        if not is_file(path):
            w.fail(f'label file "{path}" not found (create it or remove it from label_file)')
        out.update(read_env_file(Path(path), ctx.environ))
    return out


def _check_service(values: dict[str, Any], w: Where, ctx: ParseContext) -> None:
    if values.get("network_mode") and values.get("networks"):
        w.key("network_mode").fail("network_mode and networks cannot be combined (use one)")
    if values.get("mac_address") and (values.get("network_mode") or "bridge") not in ("bridge", "default"):
        w.key("mac_address").fail(f"mac_address and network_mode {values['network_mode']} conflict "
                                  "(the container has no interface of its own)")
    if values.get("uts") == "host" and values.get("hostname"):
        w.key("hostname").fail("hostname and uts: host conflict (the host's name is used; drop one)")
    scale, deploy = values.get("scale"), values.get("deploy")
    if scale is not None and deploy is not None and deploy.replicas is not None and deploy.replicas != scale:
        w.key("scale").fail(f"scale {scale} differs from deploy.replicas {deploy.replicas} (set one)")
    if deploy is not None:  # the same limit written twice must agree, as compose-go checks
        for key, other, value in (
            ("cpus", "deploy.resources.limits.cpus", deploy.limits.cpus),
            ("mem_limit", "deploy.resources.limits.memory", deploy.limits.memory),
            ("mem_reservation", "deploy.resources.reservations.memory", deploy.reservations.memory),
            ("pids_limit", "deploy.resources.limits.pids", deploy.limits.pids),
        ):
            mine = values.get(key)
            if mine and value is not None and mine != value:
                w.key(key).fail(f"can't set distinct values on {key} ({mine}) and {other} ({value}) "
                                "(set one of them)")
    count = scale if scale is not None else (deploy.replicas if deploy is not None else None)
    if count is not None and count > 1 and values.get("container_name"):
        attr = "scale" if scale is not None else "deploy.replicas"
        w.key("container_name").fail(
            f"can't set container_name and {attr} {count}: a container name must be unique "
            "(remove container_name or run one replica)")
    if count is not None:
        at = w.key("scale") if scale is not None else w.key("deploy").key("replicas")
        check_replicas(count, at, ctx.environ)


# A typo such as `replicas: 100000` would otherwise make containers until the host gives out.
MAX_REPLICAS = 1000
MAX_REPLICAS_ENV = "COMPOSER_MAX_REPLICAS"


def max_replicas(environ: Mapping[str, str]) -> int:
    text = environ.get(MAX_REPLICAS_ENV, "")
    return int(text) if text.strip().isdigit() else MAX_REPLICAS


def check_replicas(count: int, w: Where, environ: Mapping[str, str]) -> None:
    limit = max_replicas(environ)
    if count > limit:
        w.fail(f"{count} replicas is more than the limit of {limit} per service "
               f"(set {MAX_REPLICAS_ENV} to raise it)")


# -- per-key parsers ---------------------------------------------------------------------------

Parser = Callable[[Any, Where, ParseContext], Any]


def _str(v: Any, w: Where, _c: ParseContext) -> str:
    return as_str(v, w)


def _bool(v: Any, w: Where, _c: ParseContext) -> bool:
    return as_bool(v, w)


def _bytes(v: Any, w: Where, _c: ParseContext) -> int:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
        return -1 if v == -1 else w.fail("must not be negative (use -1 for unlimited)")
    return parse_bytes(v, w)


def _storage_opt(v: Any, w: Where, _c: ParseContext) -> int | None:
    """`storage_opt: {size: 10G}`: the only option of overlay2 that applies here."""
    if not isinstance(v, dict):
        w.fail(f'expected a mapping like {{size: "10G"}}, got {type_name(v)}')
    for k in v:
        if k != "size":
            w.key(k).fail(f'unsupported storage option "{k}" (only size is supported)')
    if "size" not in v:
        return None
    size = parse_bytes(v["size"], w.key("size"))
    if size <= 0:
        w.key("size").fail("must be a positive size like \"10G\"")
    return size


def _bytes_no_float(v: Any, w: Where, c: ParseContext) -> int:
    if isinstance(v, float):
        w.fail(f"expected an integer or a size like \"512m\", got {v}")
    return _bytes(v, w, c)


def _int(v: Any, w: Where, _c: ParseContext) -> int:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return as_int(v, w)


def _unique_strs(v: Any, w: Where, _c: ParseContext) -> tuple[str, ...]:
    unique_items(as_list(v, w), w)
    return str_list(v, w)


def _str_or_list(v: Any, w: Where, _c: ParseContext) -> tuple[str, ...]:
    if isinstance(v, list):
        unique_items(v, w)
    return str_or_list(v, w)


def _string_map(v: Any, w: Where, _c: ParseContext) -> dict[str, str]:
    return {k: val or "" for k, val in list_or_dict(v, w).items()}


def _env_map(v: Any, w: Where, _c: ParseContext) -> dict[str, str | None]:
    return list_or_dict(v, w)


def _ports(v: Any, w: Where, c: ParseContext) -> tuple[PortSpec, ...]:
    items = as_list(v, w)
    unique_items(items, w)
    out = []
    for i, item in enumerate(items):
        for p in PortSpec.parse(item, w.idx(i)):
            if p.as_written is not None and c.interpolated:  # a literal `$${` left a `${`
                w.idx(i).fail(f'invalid port "{p.as_written}" (use '
                              "[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL])")
            out.append(p)
    return tuple(out)


def _volumes(v: Any, w: Where, c: ParseContext) -> tuple[VolumeMount, ...]:
    items = as_list(v, w)
    unique_items(items, w)
    out = []
    for i, item in enumerate(items):
        m = VolumeMount.parse(item, w.idx(i), c.base_dir)
        if c.interpolated and m.type == "bind" and (m.source or "").startswith("${"):
            w.idx(i).fail(f'invalid volume source "{m.source}": not a path nor a volume name')
        out.append(m)
    return tuple(out)


def _tmpfs(v: Any, w: Where, c: ParseContext) -> tuple[VolumeMount, ...]:
    items = _str_or_list(v, w, c)
    return tuple(parse_tmpfs_entry(t, w if isinstance(v, str) else w.idx(i)) for i, t in enumerate(items))


def _restart(v: Any, w: Where, _c: ParseContext) -> str:
    text = as_str(v, w)
    if not RESTART.match(text):
        w.fail(f'invalid restart policy "{text}" (use no, always, on-failure[:N] or unless-stopped)')
    return text


def _pull_policy(v: Any, w: Where, _c: ParseContext) -> str:
    text = as_str(v, w)
    if not PULL_POLICY.match(text):
        w.fail(f'invalid pull_policy "{text}" (use always, never, missing, build, ...)')
    return text


def _container_name(v: Any, w: Where, c: ParseContext) -> str:
    text = as_str(v, w)
    # `${NAME}` stays only under config --no-interpolate: checked once substituted
    if text and not CONTAINER_NAME.match(text) and (c.interpolated or not text.startswith("${")):
        w.fail(f'invalid container name "{text}" (letters, digits, "_.-"; at least 2 characters)')
    return text


def _profiles(v: Any, w: Where, c: ParseContext) -> tuple[str, ...]:
    names = _unique_strs(v, w, c)
    for i, p in enumerate(names):
        if not PROFILE.match(p):
            w.idx(i).fail(f'invalid profile name "{p}"')
    return names


def _network_mode(v: Any, w: Where, _c: ParseContext) -> str:
    text = as_str(v, w)
    if not NETWORK_MODE.match(text):
        w.fail(f'not supported: network_mode "{text}" (use host, none, bridge, container:NAME or service:NAME)')
    return text


def _ipc(v: Any, w: Where, _c: ParseContext) -> str:
    text = as_str(v, w)
    if text == "none":
        w.fail('not supported: ipc "none" (a private namespace without /dev/shm; use private)')
    if text not in ("private", "shareable", "host", "") and not _SHARED_NS.match(text):
        w.fail(f'invalid ipc "{text}" (use private, shareable, host, service:NAME or container:NAME)')
    return text


def _pid(v: Any, w: Where, _c: ParseContext) -> str:
    text = as_str(v, w)
    if text not in ("host", "") and not _SHARED_NS.match(text):
        w.fail(f'invalid pid "{text}" (use host, service:NAME or container:NAME)')
    return text


def _uts(v: Any, w: Where, _c: ParseContext) -> str:
    text = as_str(v, w)
    if text not in ("host", ""):
        w.fail(f'invalid uts "{text}" (only host: the host\'s hostname)')
    return text


def _cgroup(v: Any, w: Where, _c: ParseContext) -> str:
    text = as_str(v, w)
    if text not in ("host", "private"):
        w.fail(f'invalid cgroup "{text}" (use host or private)')
    return text


def _userns(v: Any, w: Where, _c: ParseContext) -> str:
    text = as_str(v, w)
    if text not in ("host", "private", ""):
        w.fail(f'not supported: userns_mode "{text}" (use host or private)')
    return text


def _scale(v: Any, w: Where, c: ParseContext) -> int:
    n = _int(v, w, c)
    if n < 0:
        w.fail("scale must not be negative")
    return n


def _cpus(v: Any, w: Where, _c: ParseContext) -> float:
    n = as_number(v, w)
    if n < 0:
        w.fail("cpus must not be negative")
    return n


def _healthcheck(v: Any, w: Where, _c: ParseContext) -> Healthcheck:
    return Healthcheck.parse(v, w)


def _volumes_from(v: Any, w: Where, c: ParseContext) -> tuple[str, ...]:
    items = _unique_strs(v, w, c)
    for i, item in enumerate(items):
        parts = item.split(":")
        if parts[0] == "container":
            parts = parts[1:]
        if not parts[0] or len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("ro", "rw")):
            w.idx(i).fail(f'invalid volumes_from "{item}" (use SERVICE[:ro|rw] or container:NAME[:ro|rw])')
    return items


def _null_empty(v: Any, w: Where, _c: ParseContext) -> dict[str, str | None]:
    return {} if v is None else list_or_dict(v, w)


def _attach(v: Any, w: Where, _c: ParseContext) -> bool:
    return as_bool(v, w)


_PARSERS: dict[str, Parser] = {
    "image": _str, "build": lambda v, w, c: BuildSpec.parse(v, w, c.base_dir),
    "command": lambda v, w, c: parse_command(v, w), "entrypoint": lambda v, w, c: parse_command(v, w),
    "environment": _env_map, "labels": _string_map, "annotations": _string_map,
    "ports": _ports, "expose": lambda v, w, c: parse_expose(_unique_any(v, w), w),
    "volumes": _volumes, "tmpfs": _tmpfs, "volumes_from": _volumes_from,
    "depends_on": lambda v, w, c: DependsOn.parse_all(v, w), "links": _unique_strs,
    "external_links": _unique_strs, "networks": lambda v, w, c: ServiceNetwork.parse_all(v, w),
    "network_mode": _network_mode, "healthcheck": _healthcheck,
    "deploy": lambda v, w, c: Deploy.parse(v, w), "scale": _scale,
    "mem_limit": _bytes, "memswap_limit": _bytes, "mem_reservation": _bytes_no_float, "shm_size": _bytes,
    "storage_opt": _storage_opt,
    "cpus": _cpus, "cpu_shares": _int, "cpu_quota": _int, "cpu_period": _int, "cpuset": _str,
    "pids_limit": _int, "oom_kill_disable": _bool, "ulimits": lambda v, w, c: Ulimit.parse_all(v, w),
    "sysctls": _string_map, "cap_add": _unique_strs, "cap_drop": _unique_strs,
    "devices": lambda v, w, c: DeviceSpec.parse_all(v, w),
    "device_cgroup_rules": lambda v, w, c: parse_cgroup_rules(v, w),
    "security_opt": lambda v, w, c: parse_security_opts(v, w, c.base_dir), "group_add": lambda v, w, c: tuple(
        _group(x, w.idx(i)) for i, x in enumerate(_unique_any(v, w))),
    "label_file": lambda v, w, c: tuple(resolve_path(p, c.base_dir) for p in _str_or_list(v, w, c)),
    "user": _str, "userns_mode": _userns, "working_dir": _str, "hostname": _str,
    "domainname": _str, "extra_hosts": lambda v, w, c: parse_extra_hosts(v, w), "dns": _str_or_list,
    "dns_search": _str_or_list, "dns_opt": _unique_strs, "init": _bool, "stop_signal": _str,
    "stop_grace_period": lambda v, w, c: parse_duration(v, w), "read_only": _bool,
    "privileged": _bool, "tty": _bool, "stdin_open": _bool, "restart": _restart,
    "profiles": _profiles, "container_name": _container_name, "pull_policy": _pull_policy,
    "platform": _str, "logging": lambda v, w, c: Logging.parse(v, w, c.warnings), "ipc": _ipc,
    "pid": _pid, "uts": _uts, "cgroup": _cgroup, "mac_address": lambda v, w, c: parse_mac(v, w),
    "attach": _attach, "secrets": lambda v, w, c: FileRef.parse_all(v, w),
    "configs": lambda v, w, c: FileRef.parse_all(v, w),
    "pre_start": lambda v, w, c: ServiceHook.parse_all(v, w, c.environ, pre_start=True),
    "post_start": lambda v, w, c: ServiceHook.parse_all(v, w, c.environ),
    "pre_stop": lambda v, w, c: ServiceHook.parse_all(v, w, c.environ),
    "develop": lambda v, w, c: Develop.parse(v, w, c.base_dir, c.environ, c.warnings),
}
_NULL_OK = frozenset({"command", "entrypoint", "deploy", "develop"})


def _unique_any(v: Any, w: Where) -> list[Any]:
    items = as_list(v, w)
    unique_items(items, w)
    return items


def _group(v: Any, w: Where) -> str:
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        w.fail(f"expected a group name or id, got {type_name(v)}")
    return str(v)
