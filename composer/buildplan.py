"""What `composer build` adds to a service's `build:`: `--build-arg`, `--pull`, and the
bake file `build --print` shows (docker compose's prepareBakeBuild, the keys we have).

Build args as Compose merges them (resolveAndMergeBuildArgs): the service's `args`, then
`--build-arg`; an arg without a value takes it from the project's environment (`.env`,
then the process), and is left out when it has none (the Dockerfile's default applies).
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from composer import labels as L
from composer.errors import ComposerError
from composer.spec import Stack
from runtime.api import BuildRequest


def parse_build_args(items: Sequence[str]) -> dict[str, str | None]:
    """`--build-arg KEY=VALUE` / `--build-arg KEY` (its value from the environment)."""
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or any(c.isspace() for c in key):
            raise ComposerError(f"invalid --build-arg {item!r}: use KEY=VALUE or KEY")
        out[key] = value if sep else None
    return out


def merged_args(stack: Stack, service: str, cli: Mapping[str, str | None]) -> dict[str, str]:
    b = stack.services[service].build
    args: dict[str, str | None] = {**(dict(b.args) if b else {}), **cli}
    env = stack.environment
    resolved = {k: v if v is not None else env.get(k) for k, v in args.items()}
    return {k: v for k, v in resolved.items() if v is not None}


def with_overrides(req: BuildRequest, stack: Stack, service: str,
                   cli_args: Mapping[str, str | None], pull: bool) -> BuildRequest:
    """The service's build request with the command line's args and `--pull` applied."""
    b = stack.services[service].build
    return replace(req, build_args=merged_args(stack, service, cli_args),
                   pull=pull or bool(b and b.pull))


def image_labels(stack: Stack, service: str) -> dict[str, str]:
    """What Compose's getImageBuildLabels puts on a built image."""
    b = stack.services[service].build
    return {**(dict(b.labels) if b else {}), L.VERSION: L.COMPOSER_VERSION,
            L.PROJECT: stack.name, L.SERVICE: service}


def bake_config(stack: Stack, targets: Collection[str], image_ref: Any,
                cli_args: Mapping[str, str | None], *, pull: bool = False,
                no_cache: bool = False) -> dict[str, Any]:
    """`build --print`: the bake definition docker compose prints (`group.default.targets`
    are the services to build; every service with `build:` is a target). Keys that are empty
    are left out, as Go's omitempty; args keep `${` as `$${` (bake would interpolate)."""
    names = _target_names(stack)
    out: dict[str, Any] = {"group": {"default": {"targets": sorted(
        names[s] for s in targets if stack.services[s].build)}}, "target": {}}
    for name in sorted(stack.services):
        b = stack.services[name].build
        if b is None:
            continue
        dockerfile = b.dockerfile or "Dockerfile"
        if not dockerfile.startswith("/") and b.dockerfile_inline is None:
            dockerfile = f"{b.context.rstrip('/')}/{dockerfile}"
        target: dict[str, Any] = {
            "context": b.context,
            "dockerfile": None if b.dockerfile_inline is not None else dockerfile,
            "dockerfile-inline": (b.dockerfile_inline or "").replace("${", "$${") or None,
            "args": {k: v.replace("${", "$${")
                     for k, v in sorted(merged_args(stack, name, cli_args).items())} or None,
            "labels": dict(sorted(image_labels(stack, name).items())),
            "tags": [*b.tags, image_ref(name)],
            "cache-from": list(b.cache_from) or None,
            "target": b.target,
            "pull": (pull or b.pull) or None,
            "no-cache": (no_cache or b.no_cache) or None,
            "network": b.network,
            "shm-size": b.shm_size,
            # Compose's bakeEntitlements: the listed ones, security.insecure for privileged
            "entitlements": [*b.entitlements, *(["security.insecure"] if b.privileged else [])],
            "output": ["type=docker"],
        }
        out["target"][names[name]] = {k: v for k, v in target.items() if v not in (None, "", [])}
    return out


def _target_names(stack: Stack) -> dict[str, str]:
    """Compose's bakeTargetNames: `.` becomes `_`, a clash gets `_` appended."""
    used: set[str] = set()
    out: dict[str, str] = {}
    for name in sorted(stack.services):
        t = name.replace(".", "_")
        while t in used:
            t += "_"
        out[name] = t
        used.add(t)
    return out
