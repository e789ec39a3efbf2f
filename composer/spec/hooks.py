"""Lifecycle hooks (`pre_start`, `post_start`, `pre_stop`) and `develop.watch` of a service.

A hook is Compose's `ServiceHook`: a command with its own user, privileges, working folder
and environment. `post_start` / `pre_stop` hooks are exec'd in the service's container;
a `pre_start` hook runs in a container of its own (the service's image unless `image:` is
given) before the service's containers start. `develop.watch` rules say what `composer
watch` / `up --watch` does when a file under `path` changes.
"""
from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from composer.spec.parts import parse_command
from composer.spec.where import (
    Where,
    as_bool,
    as_list,
    as_map,
    as_str,
    check_keys,
    list_or_dict,
    str_or_list,
)

HOOK_KEYS = ("command", "user", "privileged", "working_dir", "environment")
PRE_START_KEYS = (*HOOK_KEYS, "image", "per_replica")
WATCH_ACTIONS = ("rebuild", "sync", "restart", "sync+restart", "sync+exec")
SYNC_ACTIONS = ("sync", "sync+restart", "sync+exec")
WATCH_KEYS = ("path", "action", "target", "ignore", "include", "exec", "initial_sync")


@dataclass(frozen=True)
class ServiceHook:
    command: tuple[str, ...] | None = None  # None: the image's (pre_start only)
    user: str | None = None  # None: the container's user (exec) / the image's (pre_start)
    privileged: bool = False  # every capability for this command, as `docker exec --privileged`
    working_dir: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    image: str | None = None  # pre_start: the image of its container (default: the service's)

    @classmethod
    def parse(cls, raw: Any, w: Where, environ: Mapping[str, str], *,
              pre_start: bool = False) -> ServiceHook:
        raw = as_map(raw, w)
        check_keys(raw, w, PRE_START_KEYS if pre_start else HOOK_KEYS)
        if "command" not in raw and not pre_start:
            w.fail("missing key command (the command the hook runs)")
        command = parse_command(raw["command"], w.key("command")) if "command" in raw else None
        if pre_start and "per_replica" in raw and as_bool(raw["per_replica"], w.key("per_replica")):
            w.key("per_replica").fail(
                "not supported: per_replica: true (a pre_start hook runs once per service, "
                "before its first replica starts; remove per_replica or set it to false)")
        env: dict[str, str] = {}
        if raw.get("environment") is not None:
            for key, value in list_or_dict(raw["environment"], w.key("environment")).items():
                if value is not None:
                    env[key] = value
                elif key in environ:  # `KEY` alone: from the environment, as a service's
                    env[key] = environ[key]
        return cls(
            command=command,
            user=_opt_str(raw, "user", w),
            privileged=as_bool(raw.get("privileged", False), w.key("privileged")),
            working_dir=_opt_str(raw, "working_dir", w),
            environment=env,
            image=_opt_str(raw, "image", w),
        )

    @classmethod
    def parse_all(cls, raw: Any, w: Where, environ: Mapping[str, str], *,
                  pre_start: bool = False) -> tuple[ServiceHook, ...]:
        return tuple(cls.parse(item, w.idx(i), environ, pre_start=pre_start)
                     for i, item in enumerate(as_list(raw, w)))

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.command is not None:
            out["command"] = list(self.command)
        for key in ("image", "user", "working_dir"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.privileged:
            out["privileged"] = True
        if self.environment:
            out["environment"] = dict(sorted(self.environment.items()))
        return out


@dataclass(frozen=True)
class WatchRule:
    """One `develop.watch` entry: `path` absolute (relative paths against the project
    directory, as Compose); `ignore` / `include` are .dockerignore patterns relative to it."""

    path: str
    action: str
    target: str | None = None
    ignore: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exec: ServiceHook | None = None  # sync+exec
    initial_sync: bool = False

    @classmethod
    def parse(cls, raw: Any, w: Where, base_dir: str, environ: Mapping[str, str],
              warnings: list[str]) -> WatchRule:
        from composer.spec.mounts import resolve_path

        raw = as_map(raw, w)
        check_keys(raw, w, WATCH_KEYS)
        for key in ("path", "action"):
            if key not in raw:
                w.fail(f"missing key {key}")
        action = as_str(raw["action"], w.key("action"))
        if action not in WATCH_ACTIONS:
            w.key("action").fail(f'invalid action "{action}" (use one of {", ".join(WATCH_ACTIONS)})')
        target = _opt_str(raw, "target", w)
        if not target and action not in ("rebuild", "restart"):
            w.key("target").fail(f"target is required for action {action} (the path in the container)")
        if target is not None:
            target = posixpath.normpath("/" + target.lstrip("/"))  # relative: from /, as Docker's copy
        hook = None
        if "exec" in raw:
            hook = ServiceHook.parse(raw["exec"], w.key("exec"), environ)
        if action == "sync+exec" and hook is None:
            w.fail("action sync+exec needs exec: {command: ...} (the command to run after a sync)")
        initial = as_bool(raw.get("initial_sync", False), w.key("initial_sync"))
        if "x-initialSync" in raw:
            warnings.append(f"{w.file}: {w.key('x-initialSync').path}: x-initialSync is deprecated "
                            "(use initial_sync)")
            initial = initial or as_bool(raw["x-initialSync"], w.key("x-initialSync"))
        return cls(
            path=resolve_path(as_str(raw["path"], w.key("path")), base_dir),
            action=action,
            target=target,
            ignore=_patterns(raw, "ignore", w),
            include=_patterns(raw, "include", w),
            exec=hook,
            initial_sync=initial,
        )

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "path": self.path}
        if self.target is not None:
            out["target"] = self.target
        if self.ignore:
            out["ignore"] = list(self.ignore)
        if self.include:
            out["include"] = list(self.include)
        if self.exec is not None:
            out["exec"] = self.exec.render()
        if self.initial_sync:
            out["initial_sync"] = True
        return out


@dataclass(frozen=True)
class Develop:
    watch: tuple[WatchRule, ...] = ()

    @classmethod
    def parse(cls, raw: Any, w: Where, base_dir: str, environ: Mapping[str, str],
              warnings: list[str]) -> Develop:
        if raw is None:
            return cls()
        raw = as_map(raw, w)
        check_keys(raw, w, ("watch",))
        if raw.get("watch") is None:
            return cls()
        return cls(tuple(
            WatchRule.parse(item, w.key("watch").idx(i), base_dir, environ, warnings)
            for i, item in enumerate(as_list(raw["watch"], w.key("watch")))))

    def render(self) -> dict[str, Any]:
        return {"watch": [r.render() for r in self.watch]}


def _opt_str(raw: Mapping[str, Any], key: str, w: Where) -> str | None:
    return as_str(raw[key], w.key(key)) if raw.get(key) is not None else None


def _patterns(raw: Mapping[str, Any], key: str, w: Where) -> tuple[str, ...]:
    return str_or_list(raw[key], w.key(key)) if raw.get(key) is not None else ()
