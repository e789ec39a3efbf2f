"""Merging stack files (`-f a.yaml -f b.yaml`, overrides, `extends`) with Compose's rules.

Works on the raw mappings after each file was interpolated and validated, so the values
have the right shapes. Rules (as the Compose spec's merge section):
- mappings merge key by key, the later file wins (environment, labels, sysctls, ulimits,
  build.args, networks, depends_on ... whether written as list or mapping);
- `ports`, `expose`, `dns`, `dns_search`, `tmpfs`, `cap_add`, `device_cgroup_rules` ...
  concatenate without duplicates; `volumes` and `devices` merge by container path;
  `secrets`/`configs` by source;
- `pre_start`, `post_start`, `pre_stop` and `develop.watch` are appended;
- `command`, `entrypoint`, `healthcheck.test` and any other sequence are replaced.
"""
from __future__ import annotations

import copy
from typing import Any

from composer.spec.mounts import is_host_path

_MAP_LIKE = ("environment", "labels", "annotations", "sysctls")
_UNION = (
    "ports", "expose", "dns", "dns_search", "dns_opt", "tmpfs", "cap_add", "cap_drop",
    "security_opt", "group_add", "links", "external_links", "volumes_from", "profiles",
    "env_file", "label_file", "extra_hosts", "device_cgroup_rules",
)
_CONCAT = ("pre_start", "post_start", "pre_stop")  # appended, as compose-go's default for sequences


def merge_stacks(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if key == "services" and isinstance(value, dict) and isinstance(out.get(key), dict):
            services = dict(out[key])
            for name, svc in value.items():
                if name in services and isinstance(services[name], dict) and isinstance(svc, dict):
                    services[name] = merge_service(services[name], svc)
                else:
                    services[name] = normalise_service(svc) if isinstance(svc, dict) else svc
            out[key] = services
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def merge_service(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    base, over = normalise_service(base), normalise_service(over)
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if old is None or value is None:
            out[key] = value
        elif key in _UNION:
            out[key] = _union(_as_list(old), _as_list(value))
        elif key in _CONCAT:
            out[key] = _as_list(old) + _as_list(value)
        elif key == "develop" and isinstance(old, dict) and isinstance(value, dict):
            out[key] = _merge_develop(old, value)
        elif key == "volumes":
            out[key] = _by_key(old, value, _volume_target)
        elif key == "devices":
            out[key] = _by_key(old, value, _device_target)
        elif key in ("secrets", "configs"):
            out[key] = _by_key(old, value, _ref_source)
        elif key == "healthcheck" and isinstance(old, dict) and isinstance(value, dict):
            out[key] = {**old, **value}
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = _merge_maps(old, value)
        else:
            out[key] = value
    return out


def _merge_develop(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`develop.watch` rules of both files, the later appended (compose-go appends sequences)."""
    out = _merge_maps(old, {k: v for k, v in new.items() if k != "watch"})
    if isinstance(old.get("watch"), list) and isinstance(new.get("watch"), list):
        out["watch"] = old["watch"] + copy.deepcopy(new["watch"])
    elif "watch" in new:
        out["watch"] = copy.deepcopy(new["watch"])
    return out


def normalise_service(svc: dict[str, Any]) -> dict[str, Any]:
    """List forms that merge by key become mappings (as Compose does before merging)."""
    out = dict(svc)
    for key in _MAP_LIKE:
        if isinstance(out.get(key), list):
            out[key] = _list_to_map(out[key])
    if isinstance(out.get("build"), str):
        out["build"] = {"context": out["build"]}
    if isinstance(out.get("build"), dict):
        build = dict(out["build"])
        for key in ("args", "labels"):
            if isinstance(build.get(key), list):
                build[key] = _list_to_map(build[key])
        out["build"] = build
    if isinstance(out.get("depends_on"), list):
        out["depends_on"] = {s: {"condition": "service_started"} for s in out["depends_on"]}
    if isinstance(out.get("networks"), list):
        out["networks"] = {n: None for n in out["networks"]}
    return out


def _list_to_map(items: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        text = str(item)
        key, sep, value = text.partition("=")
        out[key] = value if sep else None
    return out


def _merge_maps(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_maps(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _union(old: list[Any], new: list[Any]) -> list[Any]:
    out = list(old)
    for item in new:
        if item not in out:
            out.append(item)
    return out


def _by_key(old: Any, new: Any, key_of: Any) -> list[Any]:
    merged: dict[Any, Any] = {}
    for item in _as_list(old) + _as_list(new):
        merged[key_of(item)] = item
    return list(merged.values())


def _volume_target(item: Any) -> Any:
    if isinstance(item, dict):
        return item.get("target", repr(item))
    if isinstance(item, str):
        parts = item.split(":")
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2 and parts[0].startswith("/") and not parts[1].startswith("/"):
            return parts[0]
        return parts[1]
    return repr(item)


def _device_target(item: Any) -> Any:
    """The container path of a `devices` entry (its identity when merging, as in Compose)."""
    if isinstance(item, dict):
        return item.get("target") or item.get("source", repr(item))
    if isinstance(item, str):
        parts = item.split(":")
        return parts[1] if len(parts) > 1 and parts[1] else parts[0]
    return repr(item)


def _ref_source(item: Any) -> Any:
    if isinstance(item, dict):
        return item.get("source", repr(item))
    return item


def rebase_paths(svc: dict[str, Any], from_dir: str) -> dict[str, Any]:
    """Make a service's relative paths absolute against `from_dir` (for `extends: {file:}`
    and for services a sub-project brings in with `include:`)."""
    from composer.spec.mounts import resolve_path, resolve_security_opt

    out = dict(svc)
    build = out.get("build")
    if isinstance(build, str) and not _remote(build):
        out["build"] = resolve_path(build, from_dir)
    elif isinstance(build, dict) and isinstance(build.get("context", "."), str):
        ctx = build.get("context", ".")
        if not _remote(ctx):
            out["build"] = {**build, "context": resolve_path(ctx, from_dir)}
    env_file = out.get("env_file")
    if isinstance(env_file, str):
        out["env_file"] = resolve_path(env_file, from_dir)
    elif isinstance(env_file, list):
        out["env_file"] = [
            resolve_path(e, from_dir) if isinstance(e, str)
            else {**e, "path": resolve_path(e["path"], from_dir)}
            if isinstance(e, dict) and isinstance(e.get("path"), str) else e
            for e in env_file
        ]
    if isinstance(out.get("volumes"), list):
        out["volumes"] = [_rebase_volume(v, from_dir) for v in out["volumes"]]
    develop = out.get("develop")
    if isinstance(develop, dict) and isinstance(develop.get("watch"), list):
        out["develop"] = {**develop, "watch": [
            {**r, "path": resolve_path(r["path"], from_dir)}
            if isinstance(r, dict) and isinstance(r.get("path"), str) else r
            for r in develop["watch"]]}
    label_file = out.get("label_file")
    if isinstance(label_file, str):
        out["label_file"] = resolve_path(label_file, from_dir)
    elif isinstance(label_file, list):
        out["label_file"] = [resolve_path(p, from_dir) if isinstance(p, str) else p for p in label_file]
    if isinstance(out.get("security_opt"), list):
        out["security_opt"] = [resolve_security_opt(o, from_dir) if isinstance(o, str) else o
                               for o in out["security_opt"]]
    return out


def _remote(context: str) -> bool:
    """A build context that is a URL or git address (kept as written, as BuildSpec does)."""
    from composer.spec.resources import is_remote_context

    return is_remote_context(context)


def _rebase_volume(item: Any, from_dir: str) -> Any:
    from composer.spec.mounts import resolve_path

    if isinstance(item, str):
        parts = item.split(":")
        if len(parts) >= 2 and is_host_path(parts[0]):
            return ":".join([resolve_path(parts[0], from_dir), *parts[1:]])
        return item
    if isinstance(item, dict) and item.get("type") == "bind" and isinstance(item.get("source"), str):
        return {**item, "source": resolve_path(item["source"], from_dir)}
    return item


def apply_resets(merged: dict[str, Any], paths: list[tuple[str, ...]]) -> dict[str, Any]:
    """Drop what earlier files set at each key path a later file marked `!reset` or
    `!override` (compose-go's ResetProcessor.Apply, run before that file merges in). Paths
    through a sequence are not followed, as there."""
    if not paths:
        return merged
    out = copy.deepcopy(merged)
    for path in paths:
        node: Any = out
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return out
