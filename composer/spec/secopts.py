"""`security_opt` entries, spelled as Docker and Compose accept them, checked at load.

moby's parseSecurityOpt (daemon) plus what the docker CLI and Compose translate first:
`no-new-privileges` alone or `no-new-privileges=true|false`; `seccomp=unconfined|builtin|
default|FILE` (a relative FILE is relative to the project directory, as Compose reads it);
`apparmor=PROFILE`; `label=disable|user:U|role:R|type:T|level:L|filetype:T|nested` (and a
bare `disable`). `:` works as the separator too (Docker's deprecated spelling). Anything else
(a typo, `systempaths=unconfined`, `writable-cgroups=`, podman's `mask=`) is an error naming
the entry, never silently ignored. The runtime applies the options (runtime.launchcfg).
"""
from __future__ import annotations

from typing import Any

from composer.spec.mounts import resolve_path
from composer.spec.where import Where, as_list, str_list, unique_items

TRUE_WORDS = ("1", "t", "T", "true", "TRUE", "True")  # Go's strconv.ParseBool
FALSE_WORDS = ("0", "f", "F", "false", "FALSE", "False")
SECCOMP_BUILTIN = ("unconfined", "builtin", "default")
LABEL_KINDS = ("user", "role", "type", "level", "filetype")
NOT_YET = {
    "systempaths": "systempaths=unconfined (the masked /proc and /sys paths stay masked; use "
                   "privileged: true to lift them)",
    "writable-cgroups": "writable-cgroups (the container's cgroup file system is read-only)",
}
USAGE = ("use no-new-privileges[=true|false], seccomp=unconfined|PROFILE.json, apparmor=PROFILE "
         "or label=...")


def selinux_labels(opts: tuple[str, ...]) -> list[str]:
    """The `label=` entries that would set an SELinux label (not `disable`)."""
    out = []
    for opt in opts:
        key, value = split_option(opt)
        if key == "label" and value not in ("disable", None):
            out.append(opt)
    return out


def split_option(opt: str) -> tuple[str, str | None]:
    """(key, value) of one entry; value None for a bare word (`no-new-privileges`)."""
    for sep in ("=", ":"):  # "=" first: `label=type:svirt` keeps its ":" in the value
        if sep in opt:
            key, _, value = opt.partition(sep)
            return key.strip(), value.strip()
    return opt.strip(), None


def parse_security_opts(raw: Any, w: Where, base_dir: str) -> tuple[str, ...]:
    items = as_list(raw, w)
    unique_items(items, w)
    out = []
    for i, opt in enumerate(str_list(raw, w)):
        out.append(_one(opt, w.idx(i), base_dir))
    return tuple(out)


def _one(opt: str, w: Where, base_dir: str) -> str:
    key, value = split_option(opt)
    if value is None:
        if key in ("no-new-privileges", "disable"):
            return opt
        w.fail(f'invalid security_opt "{opt}" ({USAGE})')
    if key == "no-new-privileges":
        if value not in TRUE_WORDS + FALSE_WORDS:
            w.fail(f'invalid security_opt "{opt}": no-new-privileges takes true or false')
        if value in ("true", "false"):
            return opt
        # Go's other spellings (1, T, FALSE...) in the one form every runtime reads
        return f"no-new-privileges={'true' if value in TRUE_WORDS else 'false'}"
    if key == "seccomp":
        if not value:
            w.fail(f'invalid security_opt "{opt}": name a profile file or unconfined')
        if value in SECCOMP_BUILTIN or value.startswith(("{", "/")):
            return opt
        return f"seccomp={resolve_path(value, base_dir)}"  # Compose reads it from the project dir
    if key == "apparmor":
        if not value:
            w.fail(f'invalid security_opt "{opt}": name an AppArmor profile or unconfined')
        return opt
    if key == "label":
        kind, sep, _ = value.partition(":")
        if value in ("disable", "nested") or (sep and kind in LABEL_KINDS):
            return opt
        w.fail(f'invalid security_opt "{opt}": use label=disable or label=user|role|type|level:VALUE')
    if key in NOT_YET:
        w.fail(f"not supported yet: security_opt {NOT_YET[key]}")
    w.fail(f'invalid security_opt "{opt}" ({USAGE})')
