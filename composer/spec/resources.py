"""deploy (replicas, resources, restart_policy), ulimits, build and logging."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from composer.spec.mounts import resolve_path
from composer.spec.parts import FileRef
from composer.spec.units import parse_bytes, parse_duration
from composer.spec.where import (
    Where,
    as_bool,
    as_int,
    as_map,
    as_number,
    as_str,
    check_keys,
    list_or_dict,
    scalar_text,
    str_list,
    str_or_list,
    unique_items,
)
from runtime.api import BUILD_ENTITLEMENTS
from runtime.process.fluentd import TAG_FIELDS, parse_address

BUILD_NETWORKS = ("default", "host", "none")  # what BuildKit (and our builder) offers RUN
SWARM_ONLY = ("endpoint_mode", "labels", "placement", "update_config", "rollback_config")


@dataclass(frozen=True)
class ResourceLimits:
    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None

    @classmethod
    def parse(cls, raw: Any, w: Where, *, reservations: bool = False) -> ResourceLimits:
        raw = as_map(raw, w)
        unsupported = {
            "generic_resources": "generic_resources",
            "devices": "devices (device reservations need a vendor's container toolkit; pass "
                       "device nodes with the service's devices: instead)",
        }
        check_keys(raw, w, ("cpus", "memory", "pids"), unsupported=unsupported)
        cpus = as_number(raw["cpus"], w.key("cpus")) if "cpus" in raw else None
        if cpus is not None and cpus < 0:
            w.key("cpus").fail("cpus must not be negative")
        memory = parse_bytes(as_str(raw["memory"], w.key("memory")), w.key("memory")) if "memory" in raw else None
        pids = as_int(raw["pids"], w.key("pids")) if "pids" in raw else None
        return cls(cpus, memory, pids)


@dataclass(frozen=True)
class RestartPolicy:
    condition: str = "any"  # none | on-failure | any
    max_attempts: int | None = None
    delay: float | None = None
    window: float | None = None


@dataclass(frozen=True)
class Deploy:
    replicas: int | None = None
    mode: str = "replicated"
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    reservations: ResourceLimits = field(default_factory=ResourceLimits)
    restart_policy: RestartPolicy | None = None
    ignored: tuple[str, ...] = ()  # swarm-only keys given (warned about)

    @classmethod
    def parse(cls, raw: Any, w: Where) -> Deploy:
        if raw is None:
            return cls()
        raw = as_map(raw, w)
        check_keys(raw, w, ("replicas", "mode", "resources", "restart_policy", *SWARM_ONLY))
        mode = as_str(raw.get("mode", "replicated"), w.key("mode"))
        if mode not in ("replicated", "global"):
            w.key("mode").fail(f'invalid mode "{mode}" (use replicated or global)')
        replicas = as_int(raw["replicas"], w.key("replicas")) if "replicas" in raw else None
        if replicas is not None and replicas < 0:
            w.key("replicas").fail("replicas must not be negative")
        limits = reservations = ResourceLimits()
        if "resources" in raw:
            res = as_map(raw["resources"], w.key("resources"))
            wr = w.key("resources")
            check_keys(res, wr, ("limits", "reservations"))
            if "limits" in res:
                limits = ResourceLimits.parse(res["limits"], wr.key("limits"))
            if "reservations" in res:
                reservations = ResourceLimits.parse(res["reservations"], wr.key("reservations"), reservations=True)
        policy = None
        if "restart_policy" in raw:
            policy = _restart_policy(raw["restart_policy"], w.key("restart_policy"))
        return cls(
            replicas, mode, limits, reservations, policy,
            ignored=tuple(k for k in SWARM_ONLY if k in raw),
        )


def _restart_policy(raw: Any, w: Where) -> RestartPolicy:
    raw = as_map(raw, w)
    check_keys(raw, w, ("condition", "delay", "max_attempts", "window"))
    cond = as_str(raw.get("condition", "any"), w.key("condition"))
    if cond not in ("none", "on-failure", "any"):
        w.key("condition").fail(f'invalid condition "{cond}" (use none, on-failure or any)')
    return RestartPolicy(
        cond,
        as_int(raw["max_attempts"], w.key("max_attempts")) if "max_attempts" in raw else None,
        parse_duration(raw["delay"], w.key("delay")) if "delay" in raw else None,
        parse_duration(raw["window"], w.key("window")) if "window" in raw else None,
    )


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int

    @classmethod
    def parse_all(cls, raw: Any, w: Where) -> tuple[Ulimit, ...]:
        out = []
        for name, value in as_map(raw, w).items():
            wi = w.key(name)
            if not name.isalpha() or not name.islower():
                wi.fail(f'invalid ulimit name "{name}" (e.g. nofile, nproc)')
            if isinstance(value, dict):
                check_keys(value, wi, ("soft", "hard"))
                for k in ("soft", "hard"):
                    if k not in value:
                        wi.fail(f"missing key {k}")
                soft, hard = as_int(value["soft"], wi.key("soft")), as_int(value["hard"], wi.key("hard"))
            else:
                soft = hard = as_int(value, wi)
            if soft > hard and hard >= 0:
                wi.fail(f"soft limit {soft} is above the hard limit {hard}")
            out.append(cls(name, soft, hard))
        return tuple(out)


BUILD_KEYS = (
    "context", "dockerfile", "dockerfile_inline", "args", "target", "labels", "cache_from",
    "cache_to", "no_cache", "pull", "network", "shm_size", "extra_hosts", "tags", "platforms",
    "isolation", "provenance", "sbom", "no_cache_filter", "additional_contexts", "secrets",
    "ssh", "privileged", "entitlements",
)
BUILD_UNSUPPORTED = {"ulimits": "build ulimits"}
# kept for `config`, without effect here: a warning says so (composer.spec.validate)
BUILD_IGNORED = {
    "cache_from": "external build caches are not used (the builder keeps its own local cache)",
    "cache_to": "external build caches are not written (the builder keeps its own local cache)",
    "platforms": "images are built for this host's platform only",
    "isolation": "isolation is a Windows setting",
    "provenance": "no attestations are made",
    "sbom": "no attestations are made",
}


@dataclass(frozen=True)
class BuildSpec:
    context: str  # absolute path (or URL as written)
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    args: dict[str, str | None] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    no_cache: bool = False
    pull: bool = False
    shm_size: int | None = None
    tags: tuple[str, ...] = ()
    cache_from: tuple[str, ...] = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()
    # NAME -> "service:SVC", "docker-image://REF", or an absolute directory
    additional_contexts: dict[str, str] = field(default_factory=dict)
    # top-level secrets for RUN --mount=type=secret: `source`, and `target` = the id the
    # Dockerfile names (default: the source)
    secrets: tuple[FileRef, ...] = ()
    # ssh agents for RUN --mount=type=ssh,id=ID: (ID, absolute path of the agent's socket or
    # key file(s), comma-separated; None = the CLI's $SSH_AUTH_SOCK). Not read at load time
    # (Compose's config accepts a missing key file too): checked when the build starts.
    ssh: tuple[tuple[str, str | None], ...] = ()
    # BuildKit's entitlements: `privileged: true` grants security.insecure (RUN
    # --security=insecure); `entitlements` lists network.host and/or security.insecure
    privileged: bool = False
    entitlements: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # other accepted keys, as written

    @property
    def no_cache_filter(self) -> tuple[str, ...]:
        value = self.extra.get("no_cache_filter") or ()
        return (value,) if isinstance(value, str) else tuple(value)

    @property
    def ignored(self) -> tuple[str, ...]:
        """Keys given that have no effect here (warned about)."""
        return tuple(k for k in BUILD_IGNORED if k in self.extra or (k == "cache_from" and self.cache_from))

    @property
    def granted(self) -> tuple[str, ...]:
        """The entitlements the build holds, as Compose and buildx ask for them: the listed
        ones, security.insecure for `privileged: true`, network.host for `network: host`."""
        out = list(self.entitlements)
        for name, given in (("security.insecure", self.privileged),
                            ("network.host", self.network == "host")):
            if given and name not in out:
                out.append(name)
        return tuple(out)

    @property
    def remote(self) -> bool:
        """A git or URL context (kept as written; building one is not supported yet)."""
        return is_remote_context(self.context)

    @classmethod
    def parse(cls, raw: Any, w: Where, base_dir: str) -> BuildSpec:
        if isinstance(raw, str):
            return cls(_context(raw, base_dir))
        raw = as_map(raw, w)
        check_keys(raw, w, BUILD_KEYS, unsupported=BUILD_UNSUPPORTED)
        context = _context(as_str(raw.get("context", "."), w.key("context")), base_dir)
        if "dockerfile" in raw and "dockerfile_inline" in raw:
            w.fail("dockerfile and dockerfile_inline are exclusive (use one)")
        labels = list_or_dict(raw.get("labels", {}), w.key("labels"))
        for k in ("cache_from", "cache_to", "tags", "platforms"):
            if k in raw:
                str_list(raw[k], w.key(k))
        extra = {k: raw[k] for k in ("cache_to", "platforms", "isolation",
                                     "provenance", "sbom", "no_cache_filter") if k in raw}
        _check_build_extras(raw, w)
        network = as_str(raw["network"], w.key("network")) if "network" in raw else None
        if network not in (None, *BUILD_NETWORKS):
            w.key("network").fail(f'not supported: build network "{network}" (use default, host or none)')
        return cls(
            context=context,
            dockerfile=as_str(raw["dockerfile"], w.key("dockerfile")) if "dockerfile" in raw else None,
            dockerfile_inline=(
                as_str(raw["dockerfile_inline"], w.key("dockerfile_inline"))
                if "dockerfile_inline" in raw else None
            ),
            args=list_or_dict(raw.get("args", {}), w.key("args")),
            target=as_str(raw["target"], w.key("target")) if "target" in raw else None,
            labels={k: v or "" for k, v in labels.items()},
            network=network,
            no_cache=as_bool(raw.get("no_cache", False), w.key("no_cache")),
            pull=as_bool(raw.get("pull", False), w.key("pull")),
            shm_size=parse_bytes(_int_or_str(raw["shm_size"], w.key("shm_size")), w.key("shm_size")) if "shm_size" in raw else None,
            tags=str_list(raw.get("tags", []), w.key("tags")),
            cache_from=str_list(raw.get("cache_from", []), w.key("cache_from")),
            extra_hosts=parse_extra_hosts(raw["extra_hosts"], w.key("extra_hosts")) if "extra_hosts" in raw else (),
            additional_contexts=_named_contexts(raw.get("additional_contexts", {}), w.key("additional_contexts"),
                                                base_dir),
            secrets=_build_secrets(raw.get("secrets", []), w.key("secrets")),
            ssh=_build_ssh(raw.get("ssh", []), w.key("ssh"), base_dir),
            privileged=as_bool(raw.get("privileged", False), w.key("privileged")),
            entitlements=_entitlements(raw.get("entitlements", []), w.key("entitlements")),
            extra=extra,
        )


def _entitlements(raw: Any, w: Where) -> tuple[str, ...]:
    """build.entitlements: BuildKit's network.host and security.insecure, each once."""
    out: list[str] = []
    for i, name in enumerate(str_list(raw, w)):
        if name not in BUILD_ENTITLEMENTS:
            w.idx(i).fail(f'unknown or unsupported build entitlement "{name}": use '
                          + " or ".join(BUILD_ENTITLEMENTS))
        if name not in out:
            out.append(name)
    return tuple(out)


def _build_secrets(raw: Any, w: Where) -> tuple[FileRef, ...]:
    """build.secrets: the owner and mode of a build secret are the Dockerfile's
    (RUN --mount=type=secret,uid=,gid=,mode=), so here they would do nothing: an error."""
    refs = FileRef.parse_all(raw, w)
    for i, ref in enumerate(refs):
        for key in ("uid", "gid", "mode"):
            if getattr(ref, key) is not None:
                w.idx(i).key(key).fail(
                    f"not supported: {key} of a build secret (set it where the Dockerfile "
                    f"mounts it: RUN --mount=type=secret,id={ref.target or ref.source},{key}=...)")
        if ref.target is not None and (not ref.target or "/" in ref.target):
            w.idx(i).key("target").fail(
                f'invalid build secret target "{ref.target}": it is the id the Dockerfile '
                "names (RUN --mount=type=secret,id=ID), not a path")
    return refs


def _build_ssh(raw: Any, w: Where, base_dir: str) -> tuple[tuple[str, str | None], ...]:
    """build.ssh: `[default, ID=PATH]` or `{ID: PATH}`; a relative PATH is the stack
    file's folder's (as the build context)."""
    out = []
    for sid, path in list_or_dict(raw, w).items():
        if not sid:
            w.fail(f'invalid ssh entry "={path}": name the agent (ID=PATH, or default)')
        if path is not None:
            path = ",".join(resolve_path(p, base_dir) for p in path.split(",") if p)
        out.append((sid, path or None))
    return tuple(out)


def _check_build_extras(raw: dict[str, Any], w: Where) -> None:
    """Keys kept as written for the builder: still checked for their types."""
    if "no_cache_filter" in raw:
        str_or_list(raw["no_cache_filter"], w.key("no_cache_filter"))
    if "isolation" in raw:
        as_str(raw["isolation"], w.key("isolation"))
    for key in ("provenance", "sbom"):
        if key in raw and not isinstance(raw[key], (str, bool)):
            w.key(key).fail("expected a string or boolean")


def _named_contexts(raw: Any, w: Where, base_dir: str) -> dict[str, str]:
    """additional_contexts: `service:NAME` (that service's image, built first),
    `docker-image://REF`, or a directory (relative to the project, as compose-go)."""
    out: dict[str, str] = {}
    for name, value in list_or_dict(raw, w).items():
        if not value:
            w.key(name).fail("expected a context: service:NAME, docker-image://REF or a directory")
        if value.startswith(("service:", "docker-image://")):
            out[name] = value
        elif is_remote_context(value) or value.startswith("oci-layout://"):
            w.key(name).fail(f"not supported yet: a git, URL or OCI layout context ({value}): use a "
                             "local directory, service:NAME or docker-image://REF")
        else:
            out[name] = resolve_path(value, base_dir)
    return out


def _int_or_str(value: Any, w: Where) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        w.fail(f"expected an integer or a size like \"64m\", got {value!r}")
    return value


def is_remote_context(text: str) -> bool:
    """A build context that is a URL or git address (kept as written)."""
    return "://" in text or text.startswith(("git@", "github.com/"))


def _context(text: str, base_dir: str) -> str:
    if is_remote_context(text):
        return text
    return resolve_path(text, base_dir)


def parse_extra_hosts(v: Any, w: Where) -> tuple[tuple[str, str], ...]:
    """`extra_hosts` (service or build): `host:ip` / `host=ip` entries, or a mapping of a host
    to one address or a list of them."""
    out: list[tuple[str, str]] = []
    if isinstance(v, list):
        unique_items(v, w)
        for i, text in enumerate(str_list(v, w)):
            sep = min((text.find(s) for s in "=:" if s in text), default=-1)
            if sep <= 0:
                w.idx(i).fail(f'invalid extra host "{text}" (use "host:ip" or "host=ip")')
            out.append((text[:sep], text[sep + 1:].strip("[]")))
        return tuple(out)
    for host, ips in as_map(v, w).items():
        for ip in ([ips] if isinstance(ips, str) else str_list(ips, w.key(host))):
            out.append((host, ip))
    return tuple(out)


LOG_DRIVERS = ("json-file", "local", "none", "fluentd")
LOG_OPTIONS = ("max-size", "max-file", "compress")
# Docker's fluentd driver: the ones composer carries out (runtime.process.fluentd); others
# (labels, env, fluentd-buffer-limit, fluentd-retry-wait, ...) are refused as unknown
FLUENTD_OPTIONS = ("fluentd-address", "tag", "fluentd-async", "fluentd-async-connect",
                   "fluentd-sub-second-precision")
# json-file options that only add attributes to each entry, which nothing here reads: kept
# in `config`, ignored with a warning
LOG_ATTR_OPTIONS = ("labels", "labels-regex", "env", "env-regex", "tag")
_DECIMAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?\s*$", re.IGNORECASE)
_DECIMAL_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


@dataclass(frozen=True)
class Logging:
    """`logging:` -- where a service's output is kept. composer's monitor writes Docker's
    json-file format and rotates it: `json-file` and `local` (same options, `local`'s
    defaults) map onto it, `none` keeps nothing (attach and `up` still show the output).
    `fluentd` sends each line to a Forward endpoint as Docker's driver does, and keeps the
    json-file log as Docker's dual-logging cache (so `logs` works). Other drivers (syslog,
    journald, gelf, ...) are refused: their output would be lost.
    Sizes are decimal (`10m` = 10,000,000 bytes) as Docker's `max-size`."""

    driver: str | None = None
    options: dict[str, str | None] = field(default_factory=dict)
    max_size: int | None = None  # bytes
    max_file: int | None = None
    compress: bool | None = None
    fluentd_address: str = ""  # tcp://host:port or unix:///path
    tag: str = ""
    fluentd_async: bool = False
    fluentd_sub_second: bool = False

    @classmethod
    def parse(cls, raw: Any, w: Where, warnings: list[str] | None = None) -> Logging:
        raw = as_map(raw, w)
        check_keys(raw, w, ("driver", "options"))
        options: dict[str, str | None] = {}
        if "options" in raw:
            for k, v in as_map(raw["options"], w.key("options")).items():
                if isinstance(v, bool):
                    w.key("options").key(k).fail("expected a string or number, got boolean")
                options[k] = scalar_text(v, w.key("options").key(k), allow_null=True)
        driver = as_str(raw["driver"], w.key("driver")) if "driver" in raw else None
        if driver is not None and driver not in LOG_DRIVERS:
            w.key("driver").fail(
                f"logging driver {driver!r} is not supported: composer keeps the output in "
                "json-file logs; use json-file (the default), local, none or fluentd")
        where = w.key("options")
        if driver == "fluentd":
            return cls._fluentd(options, where)
        allowed = () if driver == "none" else LOG_OPTIONS + (
            LOG_ATTR_OPTIONS if driver in (None, "json-file") else ())
        for k in options:
            if k not in allowed:
                known = ", ".join(allowed) or "none"
                where.key(k).fail(f"unknown option {k!r} for logging driver "
                                  f"{driver or 'json-file'} (known: {known})")
            if k in LOG_ATTR_OPTIONS and warnings is not None:
                warnings.append(f"{w.file}: {where.key(k).path}: only adds attributes to log "
                                "entries, which composer does not show: ignored")
        max_size = max_file = None
        compress = None
        if options.get("max-size") is not None:
            max_size = _decimal_size(options["max-size"], where.key("max-size"))
            if max_size <= 0:
                where.key("max-size").fail("max-size must be a positive number")
        if options.get("max-file") is not None:
            text = str(options["max-file"]).strip()
            if not text.lstrip("-").isdigit():
                where.key("max-file").fail(f"max-file {text!r} is not a whole number")
            max_file = int(text)
            if max_file < 1:
                where.key("max-file").fail("max-file cannot be less than 1")
        if options.get("compress") is not None:
            text = str(options["compress"]).strip().lower()
            if text not in _BOOL_TEXT:
                where.key("compress").fail(f"compress {options['compress']!r} is not true or false")
            compress = _BOOL_TEXT[text]
            if compress and driver in (None, "json-file") and (
                    max_size is None or (max_file or 1) < 2):
                where.key("compress").fail(
                    "compress cannot be true when max-file is less than 2 or max-size is not set")
        return cls(driver, options, max_size, max_file, compress)


    @classmethod
    def _fluentd(cls, options: dict[str, str | None], where: Where) -> Logging:
        for k in options:
            if k not in FLUENTD_OPTIONS:
                where.key(k).fail(f"unknown option {k!r} for logging driver fluentd "
                                  f"(known: {', '.join(FLUENTD_OPTIONS)})")
        try:
            address = parse_address(options.get("fluentd-address") or "")
        except ValueError as e:
            where.key("fluentd-address").fail(str(e))
        tag = options.get("tag") or ""
        for name in re.findall(r"\{\{\s*\.(\w+)\s*\}\}", tag):
            if name not in TAG_FIELDS:
                where.key("tag").fail(f"unknown tag field {{{{.{name}}}}} (known: "
                                      + ", ".join(f"{{{{.{f}}}}}" for f in TAG_FIELDS) + ")")
        flags = {}
        for k in ("fluentd-async", "fluentd-async-connect", "fluentd-sub-second-precision"):
            text = str(options.get(k) or "false").strip().lower()
            if text not in _BOOL_TEXT:
                where.key(k).fail(f"{k} {options[k]!r} is not true or false")
            flags[k] = _BOOL_TEXT[text]
        return cls("fluentd", options, fluentd_address=address, tag=tag,
                   fluentd_async=flags["fluentd-async"] or flags["fluentd-async-connect"],
                   fluentd_sub_second=flags["fluentd-sub-second-precision"])


_BOOL_TEXT = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def _decimal_size(text: str | None, w: Where) -> int:
    """Docker's units.FromHumanSize: `10m` = 10 MB (decimal), `1.5g`, `500kb`, `1024`."""
    m = _DECIMAL.match(text or "")
    if not m:
        w.fail(f'invalid size "{text}" (use e.g. "10m", "1g", "500k")')
    return int(float(m.group(1)) * _DECIMAL_UNITS[m.group(2).lower()])
