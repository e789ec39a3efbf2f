"""`load_stack(LoadOptions) -> Stack`: the one entry point every command uses.

Pipeline (as docker-compose's config.load): find files -> environment (.env / --env-file,
then the process environment wins) -> per file: YAML -> top-level keys -> interpolation ->
includes (sub-projects, see include.py) -> extends -> validation (errors name that file) ->
merge files -> typed model -> cross-references (networks, volumes, secrets) -> profiles.
"""
from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import NoStackFile, SpecError
from composer.labels import PROJECT_NAME
from composer.readlog import is_file
from composer.spec.dotenv import read_env_file
from composer.spec.extends import resolve_extends
from composer.spec.include import IncludeEntry, absolute_model, import_resources, parse_includes
from composer.spec.interpolate import Interpolator
from composer.spec.keys import TOP_LEVEL_KEYS, TOP_LEVEL_UNSUPPORTED
from composer.spec.merge import apply_resets, merge_stacks
from composer.spec.mounts import resolve_path
from composer.spec.service import ParseContext, ServiceSpec
from composer.spec.stack import Stack, service_enabled
from composer.spec.toplevel import FileObject, NetworkConfig, VolumeConfig
from composer.spec.validate import check_references, model_warnings
from composer.spec.where import Where, as_map, check_keys, extensions
from composer.spec.yamlio import parse_yaml_tagged, read_yaml_tagged, take_merge_tags

# compose-go's cli.DefaultFileNames / DefaultOverrideFileNames, in its order of preference:
# the first stack file found is used with the first override file found, of either family
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = ("compose.override.yml", "compose.override.yaml", "docker-compose.override.yml",
                  "docker-compose.override.yaml")
SECTION_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")


@dataclass(frozen=True)
class LoadOptions:
    files: Sequence[str] = ()  # -f, in order; empty: COMPOSE_FILE or the default names
    project_name: str | None = None  # -p
    project_directory: str | None = None  # --project-directory
    env_files: Sequence[str] = ()  # --env-file; empty: <project dir>/.env if present
    profiles: Sequence[str] = ()  # --profile; empty: COMPOSE_PROFILES
    environ: Mapping[str, str] | None = None  # None: os.environ
    working_dir: str | None = None  # None: os.getcwd()
    read_env_files: bool = True  # read services' env_file into environment
    stdin: str | None = None  # the text of `-f -` (the CLI reads standard input once)
    interpolate: bool = True  # False: `${VAR}` left as written (config --no-interpolate)


def load_stack(opts: LoadOptions) -> Stack:
    environ = dict(os.environ if opts.environ is None else opts.environ)
    cwd = Path(opts.working_dir or os.getcwd()).resolve()
    files, found_warnings = _find_files(opts, _with_dotenv_file_var(opts, environ, cwd), cwd)
    if files[0] == STDIN and not opts.project_directory:
        project_dir = cwd  # as Compose: a stack on stdin belongs to the working folder
    else:
        project_dir = Path(opts.project_directory).resolve() if opts.project_directory else files[0].parent
    token = _STDIN_TEXT.set(opts.stdin)
    try:
        return _load(opts, environ, cwd, files, found_warnings, project_dir)
    finally:
        _STDIN_TEXT.reset(token)


def _load(opts: LoadOptions, environ: dict[str, str], cwd: Path, files: list[Path],
          found_warnings: list[str], project_dir: Path) -> Stack:
    env = _environment(opts, environ, project_dir, cwd)
    interp = Interpolator(env, keep=not opts.interpolate)
    ctx = ParseContext(str(project_dir), env, read_env_files=False, interpolated=opts.interpolate)
    site = _Site(project_dir, env, (), cwd, project_dir, opts.interpolate)
    merged: dict[str, Any] = {}
    origins: dict[tuple[str, str], str] = {}
    for path in files:
        # with one file the final parse names it anyway: skip the separate per-file pass
        resets: list[tuple[str, ...]] = []
        doc = _load_file(path, _display(path, cwd, project_dir), interp, ctx, site, origins,
                         validate=len(files) > 1, resets=resets)
        merged = merge_stacks(apply_resets(merged, resets), doc)
    ctx.read_env_files = opts.read_env_files
    ctx.origins = origins
    ctx.warnings = found_warnings + interp.warnings + ctx.warnings
    display = _display(files[0], cwd, project_dir)
    stack = _build(merged, display, ctx, opts, env, project_dir, files)
    return stack


STDIN = Path("-")  # the stack file `-f -`: its text is LoadOptions.stdin
_STDIN_TEXT: contextvars.ContextVar[str | None] = contextvars.ContextVar("stdin", default=None)


def stack_files(opts: LoadOptions) -> list[Path]:
    """The stack files `load_stack(opts)` would read first (-f, COMPOSE_FILE, the default
    names with their override), without loading them (`config --variables`)."""
    environ = dict(os.environ if opts.environ is None else opts.environ)
    cwd = Path(opts.working_dir or os.getcwd()).resolve()
    return _find_files(opts, _with_dotenv_file_var(opts, environ, cwd), cwd)[0]


def _with_dotenv_file_var(opts: LoadOptions, environ: dict[str, str],
                          cwd: Path) -> dict[str, str]:
    """As Compose, COMPOSE_FILE (and COMPOSE_PATH_SEPARATOR) may come from the env files of
    the working folder (`.env`, or --env-file / COMPOSE_ENV_FILES) when not set outside."""
    if opts.files or "COMPOSE_FILE" in environ:
        return environ
    base = Path(opts.project_directory).resolve() if opts.project_directory else cwd
    env = _environment(opts, environ, base, cwd)
    return {**environ, **{k: env[k] for k in ("COMPOSE_FILE", "COMPOSE_PATH_SEPARATOR")
                          if k in env}}


def _find_files(opts: LoadOptions, environ: Mapping[str, str], cwd: Path) -> tuple[list[Path], list[str]]:
    """The stack files, and Compose's warnings when several default names exist."""
    base = Path(opts.project_directory) if opts.project_directory else cwd
    names = list(opts.files)
    if not names and environ.get("COMPOSE_FILE"):
        sep = environ.get("COMPOSE_PATH_SEPARATOR", os.pathsep)
        names = [n for n in environ["COMPOSE_FILE"].split(sep) if n]
    if names:
        if names.count("-") > 1:
            raise SpecError("-f - (the stack on standard input) can be given only once")
        if "-" in names and opts.stdin is None:
            raise SpecError("-f -: no standard input was read")
        out = [STDIN if n == "-" else (cwd / n).resolve() if not os.path.isabs(n) else Path(n)
               for n in names]
        for p, n in zip(out, names, strict=True):
            if p != STDIN and not is_file(p):
                raise SpecError("file not found (check -f / COMPOSE_FILE)", file=n)
        return out, []
    for folder in (base.resolve(), *base.resolve().parents):
        found = [folder / n for n in DEFAULT_FILES if is_file(folder / n)]
        if not found:
            continue
        warnings = _several("config files", found)
        overrides = [folder / n for n in OVERRIDE_FILES if is_file(folder / n)]
        warnings += _several("override files", overrides)
        return found[:1] + overrides[:1], warnings
    raise NoStackFile(
        f"no stack file found in {base} or its parents "
        f"(create compose.yaml or pass -f FILE)"
    )


def _several(kind: str, found: list[Path]) -> list[str]:
    if len(found) < 2:
        return []
    return [f"found multiple {kind} with supported names: {', '.join(str(p) for p in found)}; "
            f"using {found[0]}"]


def _environment(opts: LoadOptions, environ: dict[str, str], project_dir: Path, cwd: Path) -> dict[str, str]:
    """Variables for interpolation: env files first, the process environment wins."""
    env: dict[str, str] = {}
    names, flag = list(opts.env_files), "--env-file"
    if not names and environ.get("COMPOSE_ENV_FILES"):
        names = [n.strip() for n in environ["COMPOSE_ENV_FILES"].split(",") if n.strip()]
        flag = "COMPOSE_ENV_FILES"
    if names:
        for name in names:
            path = Path(name) if os.path.isabs(name) else cwd / name
            if not is_file(path):
                raise SpecError(f"env file not found (check {flag})", file=name)
            env.update(read_env_file(path, {**env, **environ}, label=name))
    elif _truthy(environ.get("COMPOSE_DISABLE_ENV_FILE", "")):
        pass  # as Compose: no .env at all
    elif is_file(project_dir / ".env"):
        env.update(read_env_file(project_dir / ".env", environ, label=".env"))
    env.update(environ)
    return env


def _truthy(value: str) -> bool:
    """Go's strconv.ParseBool as Compose reads its boolean variables."""
    return value.strip().lower() in ("1", "t", "true")


def _display(path: Path, cwd: Path, project_dir: Path) -> str:
    """How errors name a file: relative to the working or project folder when inside it."""
    for base in (cwd, project_dir):
        try:
            return str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)


@dataclass(frozen=True)
class _Site:
    """Where a (sub-)project sits: what its `include:` entries resolve against."""

    working_dir: Path  # its project directory: include paths, project_directory, env_file
    env: dict[str, str]  # its interpolation environment (the includer's wins in sub-projects)
    chain: tuple[Path, ...]  # the files including it, outermost first (cycle detection)
    cwd: Path  # for display names
    root: Path  # the main project directory, for display names
    interpolate: bool = True  # False: values kept as written (config --no-interpolate)

    def display(self, path: Path) -> str:
        return _display(path, self.cwd, self.root)


def _load_file(
    path: Path, display: str, interp: Interpolator, ctx: ParseContext, site: _Site,
    origins: dict[tuple[str, str], str], *, validate: bool = True,
    resets: list[tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """One stack file, interpolated, with its includes imported and its extends resolved.
    `origins` receives the file each imported resource comes from; `resets` the key paths
    its `!reset` / `!override` tags name (to apply to the files merged before it)."""
    raw: dict[str, Any] = interp.tree(_read_top(path, display, resets), Where(display))
    if "include" in raw:
        _apply_includes(raw, path, display, ctx, site, origins)
    if isinstance(raw.get("services"), dict):
        def load_other(other: str, shown: str) -> dict[str, Any]:
            doc: dict[str, Any] = interp.tree(_read_top(Path(other), shown), Where(shown))
            return _section(doc, "services", Where(shown))

        raw["services"] = resolve_extends(raw["services"], str(path), display, load_other)
    if validate:
        ctx.origins = origins
        _validate_file(raw, display, ctx)
    return raw


def _apply_includes(
    raw: dict[str, Any], path: Path, display: str, ctx: ParseContext, site: _Site,
    origins: dict[tuple[str, str], str],
) -> None:
    """Load each `include:` entry as a sub-project and copy its resources into `raw`."""
    w = Where(display)
    entries = parse_includes(raw.pop("include"), w.key("include"))
    for key in ("services", "networks", "volumes", "secrets", "configs"):
        _section(raw, key, w)  # a wrong shape is reported before anything is imported
    chain = (*site.chain, path.resolve())
    for entry in entries:
        sub, sub_origins, sub_display = _load_include(entry, chain, ctx, site)
        import_resources(raw, origins, display, sub, sub_origins, sub_display, entry.where)


def _load_include(
    entry: IncludeEntry, chain: tuple[Path, ...], ctx: ParseContext, site: _Site,
) -> tuple[dict[str, Any], dict[tuple[str, str], str], str]:
    """An included sub-project: its merged resources (absolute paths), their origins, its name."""
    w = entry.where
    base = str(site.working_dir)
    files: list[Path] = []
    for name in entry.paths:
        file = Path(resolve_path(name, base))
        if not is_file(file):
            w.fail(f"included file not found: {name} (check the path; it is relative to {base})")
        if file.resolve() in chain:
            loop = " -> ".join(site.display(p) for p in (*chain, file.resolve()))
            w.fail(f"include cycle: {loop}")
        files.append(file)
    project_dir = (
        Path(resolve_path(entry.project_directory, base)) if entry.project_directory else files[0].parent
    )
    from_files: dict[str, str] = {}
    if entry.env_files is not None:
        for name in entry.env_files:
            if name == os.devnull:
                continue
            env_path = Path(resolve_path(name, base))
            if not is_file(env_path):
                w.fail(f"env file not found: {name} (check env_file; it is relative to {base})")
            from_files.update(read_env_file(env_path, {**from_files, **site.env}, label=site.display(env_path)))
    elif is_file(project_dir / ".env"):
        env_path = project_dir / ".env"
        from_files.update(read_env_file(env_path, site.env, label=site.display(env_path)))
    env = {**from_files, **site.env}  # the including project's variables win (as compose-go)
    interp = Interpolator(env, keep=not site.interpolate)
    sub_ctx = ParseContext(str(project_dir), env, read_env_files=False,
                           interpolated=site.interpolate)
    sub_site = _Site(project_dir, env, chain, site.cwd, site.root, site.interpolate)
    merged: dict[str, Any] = {}
    origins: dict[tuple[str, str], str] = {}
    for file in files:
        file_origins: dict[tuple[str, str], str] = {}
        resets: list[tuple[str, ...]] = []
        doc = _load_file(file, site.display(file), interp, sub_ctx, sub_site, file_origins,
                         resets=resets)
        merged = merge_stacks(apply_resets(merged, resets), doc)
        origins.update(file_origins)
    ctx.warnings.extend(interp.warnings + sub_ctx.warnings)
    return absolute_model(merged, str(project_dir)), origins, site.display(files[0])


def _read_top(path: Path, display: str, resets: list[tuple[str, ...]] | None = None) -> dict[str, Any]:
    text = _STDIN_TEXT.get()
    tagged = parse_yaml_tagged(text, display) if path == STDIN and text is not None else \
        read_yaml_tagged(path, display)
    doc, paths = take_merge_tags(tagged)
    if resets is not None:
        resets.extend(paths)
    if doc is None:
        raise SpecError("empty stack file (add a services: section)", file=display)
    w = Where(display)
    doc = as_map(doc, w)
    check_keys(doc, w, TOP_LEVEL_KEYS, unsupported=TOP_LEVEL_UNSUPPORTED)
    return doc


def _validate_file(raw: dict[str, Any], display: str, ctx: ParseContext) -> None:
    """Parse each part of one file so that errors name the file that holds them."""
    _parse_sections(raw, display, ctx)


def _parse_sections(raw: dict[str, Any], display: str, ctx: ParseContext) -> dict[str, Any]:
    w = Where(display)

    def at(key: str, name: str) -> Where:  # an included resource is named in its own file
        return Where(ctx.origins.get((key, name), display), f"{key}.{name}")

    out: dict[str, Any] = {}
    services = _section(raw, "services", w)
    out["services"] = {
        name: ServiceSpec.parse(name, svc, Where(at("services", name).file, f"services.{name}", name), ctx)
        for name, svc in services.items()
    }
    out["networks"] = {k: NetworkConfig.parse(k, v, at("networks", k))
                       for k, v in _section(raw, "networks", w).items()}
    out["volumes"] = {k: VolumeConfig.parse(k, v, at("volumes", k), ctx.base_dir)
                      for k, v in _section(raw, "volumes", w).items()}
    for key, kind in (("secrets", "secret"), ("configs", "config")):
        section = _section(raw, key, w)
        out[key] = {
            k: FileObject.parse(k, kind, v, at(key, k), ctx.base_dir) for k, v in section.items()
        }
    if "name" in raw and not isinstance(raw["name"], str):
        w.key("name").fail("expected a string")
    if "version" in raw:
        if not isinstance(raw["version"], str):
            w.key("version").fail("expected a string")
        ctx.warnings.append(f"{display}: version is obsolete and ignored")
    return out


def _section(raw: dict[str, Any], key: str, w: Where) -> dict[str, Any]:
    """A top-level section: a mapping whose keys are names (letters, digits, `._-`)."""
    if key not in raw:
        return {}
    section = as_map(raw[key], w.key(key))
    for name in section:
        if not SECTION_NAME.match(name):
            w.key(key).key(name).fail(f'invalid name "{name}" (use letters, digits, ".", "_", "-")')
    return section


def _build(
    merged: dict[str, Any], display: str, ctx: ParseContext, opts: LoadOptions,
    env: dict[str, str], project_dir: Path, files: list[Path],
) -> Stack:
    parts = _parse_sections(merged, display, ctx)
    services: dict[str, ServiceSpec] = parts["services"]
    networks: dict[str, NetworkConfig] = parts["networks"]
    files_of = {n: ctx.origins.get(("services", n), display) for n in services}
    check_references(services, networks, parts["volumes"], parts["secrets"], parts["configs"], display,
                     files_of)
    ctx.warnings.extend(model_warnings(services, networks, display, files_of))
    if "default" not in networks and any(
        not s.network_mode and not s.networks for s in services.values()
    ):
        networks = {**networks, "default": NetworkConfig("default")}
    profiles = _profiles(opts, env)
    enabled = {n: s for n, s in services.items() if service_enabled(s, profiles)}
    disabled = {n: s for n, s in services.items() if n not in enabled}
    return Stack(
        name=project_name(opts, env, merged.get("name"), project_dir, display),
        project_directory=str(project_dir), services=enabled, networks=networks,
        volumes=parts["volumes"], secrets=parts["secrets"], configs=parts["configs"],
        disabled_services=disabled, profiles=profiles, files=tuple(str(f) for f in files),
        environment=env, warnings=tuple(dict.fromkeys(ctx.warnings)), extensions=extensions(merged),
    )


def _profiles(opts: LoadOptions, env: Mapping[str, str]) -> tuple[str, ...]:
    if opts.profiles:
        names = list(opts.profiles)
    else:
        names = [p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",")]
    return tuple(dict.fromkeys(p for p in names if p))


def normalise_project_name(text: str) -> str:
    """Compose's rule for a name taken from a folder: lowercase, only [a-z0-9_-], no leading _-."""
    name = re.sub(r"[^a-z0-9_-]", "", text.lower())
    return name.lstrip("_-")


def project_name(
    opts: LoadOptions, env: Mapping[str, str], from_file: Any, project_dir: Path, display: str,
) -> str:
    """-p, then COMPOSE_PROJECT_NAME, then `name:`, then the project folder's name."""
    for given, origin in (
        (opts.project_name, "-p"),
        (env.get("COMPOSE_PROJECT_NAME"), "COMPOSE_PROJECT_NAME"),
        (from_file, f"{display}: name"),
    ):
        if given:
            if not PROJECT_NAME.match(given):
                fixed = normalise_project_name(given)
                hint = f' (e.g. "{fixed}")' if fixed else ""
                raise SpecError(
                    f'invalid project name "{given}" from {origin}: use lowercase letters, '
                    f'digits, "_" and "-", starting with a letter or digit{hint}'
                )
            return str(given)
    name = normalise_project_name(project_dir.name)
    if not name:
        raise SpecError(
            f'cannot derive a project name from the folder "{project_dir.name}" (use -p NAME or name:)'
        )
    return name
