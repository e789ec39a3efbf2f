"""Top-level `include:` — other stack files loaded as sub-projects whose resources join ours.

As the Compose spec (and compose-go) do it:
- an entry is a path (short syntax) or `{path, project_directory, env_file}` (long syntax);
  `path` may be a list: the files are merged like `-f a -f b`, the first one is the main
  file; relative `path`, `project_directory` and `env_file` resolve against the including
  project's directory;
- the sub-project's directory is `project_directory`, else the main file's folder: its
  relative paths (build contexts, bind mounts, env files, secret/config files) resolve
  against it, so they are made absolute before its resources are copied over;
- its interpolation uses its `env_file`s (else its own `.env`), the including project's
  environment winning over them (compose-go's `Mapping.Merge`);
- each file's includes are applied to that file before `-f` files merge, so an override
  file can still change an included service;
- a name both in the including file and an included one (or in two included files) is an
  error naming both files, unless both definitions are identical (Compose accepts that);
- includes nest; a file that includes itself, directly or not, is an error naming the chain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from composer.spec.merge import rebase_paths
from composer.spec.mounts import resolve_path
from composer.spec.where import Where, as_list, as_map, as_str, check_keys, str_or_list

INCLUDE_KEYS = ("path", "project_directory", "env_file")
SECTIONS = ("services", "networks", "volumes", "secrets", "configs")


@dataclass(frozen=True)
class IncludeEntry:
    paths: tuple[str, ...]  # as written (relative to the including project's directory)
    project_directory: str | None = None
    env_files: tuple[str, ...] | None = None  # None: the sub-project's own .env if present
    where: Where = Where("")


def parse_includes(raw: Any, w: Where) -> list[IncludeEntry]:
    out: list[IncludeEntry] = []
    for i, item in enumerate(as_list(raw, w)):
        wi = w.idx(i)
        if isinstance(item, str):
            if not item:
                wi.fail("empty path (name a stack file to include)")
            out.append(IncludeEntry((item,), where=wi))
            continue
        item = as_map(item, wi)
        check_keys(item, wi, INCLUDE_KEYS)
        if "path" not in item:
            wi.fail("missing key path (the stack file to include)")
        paths = str_or_list(item["path"], wi.key("path"))
        if not paths or not all(paths):
            wi.key("path").fail("empty path (name a stack file to include)")
        project_dir = (
            as_str(item["project_directory"], wi.key("project_directory"))
            if "project_directory" in item else None
        )
        env_files = str_or_list(item["env_file"], wi.key("env_file")) if "env_file" in item else None
        out.append(IncludeEntry(paths, project_dir, env_files, wi))
    return out


def absolute_model(doc: dict[str, Any], project_dir: str) -> dict[str, Any]:
    """The resources of a loaded sub-project with its relative paths made absolute."""
    out: dict[str, Any] = {}
    for section in SECTIONS:
        items = doc.get(section)
        if not isinstance(items, dict):
            continue
        if section == "services":
            out[section] = {
                n: rebase_paths(s, project_dir) if isinstance(s, dict) else s for n, s in items.items()
            }
        elif section in ("secrets", "configs"):
            out[section] = {n: _rebase_file(o, project_dir) for n, o in items.items()}
        elif section == "volumes":
            out[section] = {n: _rebase_device(v, project_dir) for n, v in items.items()}
        else:
            out[section] = dict(items)
    return out


def _rebase_device(vol: Any, project_dir: str) -> Any:
    """A local volume's bind `device:` is relative to its own project directory."""
    opts = vol.get("driver_opts") if isinstance(vol, dict) else None
    if isinstance(opts, dict) and isinstance(opts.get("device"), str) and "bind" in str(opts.get("o", "")):
        return {**vol, "driver_opts": {**opts, "device": resolve_path(opts["device"], project_dir)}}
    return vol


def _rebase_file(obj: Any, project_dir: str) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("file"), str):
        return {**obj, "file": resolve_path(obj["file"], project_dir)}
    return obj


def import_resources(
    target: dict[str, Any], target_origins: dict[tuple[str, str], str], target_file: str,
    imported: dict[str, Any], imported_origins: dict[tuple[str, str], str], imported_file: str,
    w: Where,
) -> None:
    """Copy `imported`'s resources into `target` (in place); a differing duplicate is an error.

    `*_origins` name the file each imported resource comes from (absent: that file itself)."""
    for section in SECTIONS:
        items = imported.get(section)
        if not items:
            continue
        into = target.get(section)
        if not isinstance(into, dict):
            into = target[section] = {}
        for name, value in items.items():
            key = (section, name)
            source = imported_origins.get(key, imported_file)
            if name in into:
                if into[name] == value:
                    continue
                existing = target_origins.get(key, target_file)
                w.fail(
                    f"{section}.{name} from {source} conflicts with {section}.{name} from {existing} "
                    f"(Compose: conflicts with imported resource; rename one of them)"
                )
            into[name] = value
            target_origins[key] = source
