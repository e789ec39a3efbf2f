"""`extends:` — a service starts from another service (same file or another file).

The base service is resolved first (it may extend again; a loop is an error), its relative
paths are made absolute against its own file's folder when it comes from another file,
then the extending service is merged over it with the usual merge rules.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from composer.spec.merge import merge_service, rebase_paths
from composer.spec.where import Where, as_map, as_str, check_keys

# (absolute path of a stack file, display name) -> its interpolated services mapping
FileLoader = Callable[[str, str], dict[str, Any]]


def resolve_extends(
    services: dict[str, Any], file_path: str, display: str, load_file: FileLoader
) -> dict[str, Any]:
    """Return `services` with every `extends` applied (the key removed)."""
    cache: dict[tuple[str, str], dict[str, Any]] = {}
    out = {}
    for name in services:
        out[name] = _resolve(file_path, display, name, services, load_file, cache, ())
    return out


def _resolve(
    file_path: str, display: str, name: str, services: dict[str, Any], load_file: FileLoader,
    cache: dict[tuple[str, str], dict[str, Any]], chain: tuple[tuple[str, str], ...],
) -> Any:
    here = (file_path, name)
    w = Where(display, f"services.{name}", service=name)
    if here in chain:
        loop = " -> ".join(n for _, n in (*chain, here))
        w.key("extends").fail(f"extends loop: {loop}")
    if here in cache:
        return cache[here]
    raw = services.get(name)
    if not isinstance(raw, dict) or "extends" not in raw:
        return raw
    spec = raw["extends"]
    we = w.key("extends")
    if isinstance(spec, str):
        base_name, base_file = spec, None
    else:
        spec = as_map(spec, we)
        check_keys(spec, we, ("service", "file"))
        if "service" not in spec:
            we.fail("missing key service (the service to extend)")
        base_name = as_str(spec["service"], we.key("service"))
        base_file = as_str(spec["file"], we.key("file")) if "file" in spec else None
    if base_file is None:
        base_path, base_display, base_services = file_path, display, services
    else:
        base_path = os.path.normpath(os.path.join(os.path.dirname(file_path), base_file))
        base_display = base_file
        base_services = load_file(base_path, base_file)
    if base_name not in base_services:
        we.fail(f'cannot extend service "{base_name}": not defined in {base_display}')
    base = _resolve(base_path, base_display, base_name, base_services, load_file, cache, (*chain, here))
    if not isinstance(base, dict):
        base = {}
    if base_path != file_path:
        base = rebase_paths(base, os.path.dirname(base_path))
    own = {k: v for k, v in raw.items() if k != "extends"}
    merged = merge_service(base, own)
    cache[here] = merged
    return merged
