"""Base images made on this machine, without a registry.

`FROM debian:bookworm`, `FROM debian:bookworm-slim` and `FROM busybox` work offline (only
the Debian mirror the host already uses is needed): the rootfs is made with `debootstrap
--variant=minbase` (the same variant the official image uses) or from the host's static
busybox, then stored as an ordinary one-layer image through the build sinks.

A debootstrap takes minutes, so its result is kept as a tarball under
`<state>/build/bases/`: a later `ensure_base` (after the image store was wiped, or on a
machine sharing the state root) extracts the tarball in seconds instead.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.images.build.errors import BuildError
from runtime.images.build.interfaces import (
    DEFAULT_PATH,
    BuildImage,
    ImageConfig,
    ImageSink,
    LayerSink,
    Progress,
)
from runtime.storage.errors import StorageError
from runtime.storage.rootfs import detach
from runtime.storage.tarextract import extract_tar
from runtime.storage.tarpack import pack_dir

SUITE = "bookworm"
FALLBACK_MIRROR = "http://deb.debian.org/debian"

# What the official -slim image leaves out (its /etc/dpkg/dpkg.cfg.d/docker), so packages
# installed later stay slim too.
SLIM_DPKG_CFG = """\
# made by composer: keep the image slim like the official debian:*-slim
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
# Also as in the official image: apt keeps no package cache and no translations.
APT_CLEAN = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""
APT_NO_LANGUAGES = 'Acquire::Languages "none";\n'


@dataclass(frozen=True)
class BaseRecipe:
    name: str  # normalised ref, the tag it is stored under
    kind: str  # "debian" | "busybox"
    slim: bool = False


RECIPES = {
    "debian:bookworm": BaseRecipe("debian:bookworm", "debian"),
    "debian:12": BaseRecipe("debian:bookworm", "debian"),
    "debian:bookworm-slim": BaseRecipe("debian:bookworm-slim", "debian", slim=True),
    "debian:12-slim": BaseRecipe("debian:bookworm-slim", "debian", slim=True),
    "busybox:latest": BaseRecipe("busybox:latest", "busybox"),
}


def normalize_ref(ref: str) -> str:
    """`docker.io/library/debian:bookworm` -> `debian:bookworm`; a missing tag is `latest`."""
    r = ref
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if r.startswith(prefix):
            r = r[len(prefix):]
    if r.startswith("library/"):
        r = r[len("library/"):]
    if "@" not in r and ":" not in r.rsplit("/", 1)[-1]:
        r += ":latest"
    return r


def recipe_for(ref: str) -> BaseRecipe | None:
    return RECIPES.get(normalize_ref(ref))


def can_create(ref: str) -> bool:
    return recipe_for(ref) is not None


def host_mirror(etc_apt: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this host installs from (deb822 `.sources` first, then sources.list)."""
    files = sorted((etc_apt / "sources.list.d").glob("*.sources")) if (etc_apt / "sources.list.d").is_dir() else []
    for f in files:
        for stanza in re.split(r"\n\s*\n", f.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                k, _, v = line.partition(":")
                fields[k.strip().lower()] = v.strip()
            if fields.get("enabled", "yes").lower() == "no" or "deb" not in fields.get("types", "").split():
                continue
            if SUITE in fields.get("suites", "").split() and fields.get("uris"):
                return fields["uris"].split()[0].rstrip("/")
    lists = [etc_apt / "sources.list"]
    if (etc_apt / "sources.list.d").is_dir():
        lists += sorted((etc_apt / "sources.list.d").glob("*.list"))
    for f in lists:
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1].rstrip("/")
    return FALLBACK_MIRROR


def _config_for(recipe: BaseRecipe) -> ImageConfig:
    if recipe.kind == "busybox":
        return ImageConfig(env=(f"PATH={DEFAULT_PATH}",), cmd=("sh",))
    return ImageConfig(env=(f"PATH={DEFAULT_PATH}",), cmd=("bash",))


async def ensure_base(
    ref: str,
    *,
    layers: LayerSink,
    images: ImageSink,
    cache_dir: Path,
    progress: Progress = lambda _line: None,
) -> BuildImage:
    """The image `ref` from the store, creating it locally first if it is a known base.

    `cache_dir` (e.g. `<state root>/build/bases`) keeps debootstrap tarballs between runs.
    Raises BuildError for a base that cannot be made here, saying how to load it instead."""
    existing = images.get(ref) or images.get(normalize_ref(ref))
    if existing is not None:
        return existing
    recipe = recipe_for(ref)
    if recipe is None:
        raise BuildError(
            f"base image {ref!r} is not in the image store and cannot be created locally "
            f"(known: {', '.join(sorted({r.name for r in RECIPES.values()}))}): "
            "load it with `composer image load FILE` (a `docker save` tar) and build again"
        )
    started = time.monotonic()
    work_parent = cache_dir / "tmp"
    work_parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="base-", dir=work_parent))
    rootfs = work / "rootfs"
    try:
        rootfs.mkdir()
        if recipe.kind == "busybox":
            progress(f"creating base image {recipe.name} locally from the host's static busybox")
            from runtime.images.busybox import populate_rootfs

            try:
                populate_rootfs(rootfs)
            except LookupError as e:
                raise BuildError(f"cannot create {recipe.name}: {e}") from e
        else:
            await _debian_rootfs(recipe, rootfs, cache_dir, progress)
        layer = layers.add_dir(rootfs)
        image = BuildImage(layers=(layer,), config=_config_for(recipe))
        images.put(image, tags=(recipe.name,))
    finally:
        await asyncio.to_thread(_remove_tree, work)
    progress(f"created base image {recipe.name} in {time.monotonic() - started:.1f}s")
    return image


def tarball_path(cache_dir: Path, recipe: BaseRecipe) -> Path:
    return cache_dir / (recipe.name.replace(":", "_").replace("/", "_") + ".tar")


async def _debian_rootfs(recipe: BaseRecipe, rootfs: Path, cache_dir: Path, progress: Progress) -> None:
    tarball = tarball_path(cache_dir, recipe)
    if tarball.is_file():
        progress(f"creating base image {recipe.name} locally from the cached rootfs {tarball}")
        await asyncio.to_thread(_extract, tarball, rootfs)
        return
    if shutil.which("debootstrap") is None:
        raise BuildError(
            f"cannot create {recipe.name}: debootstrap is not installed (apt-get install debootstrap), "
            "or load the image with `composer image load FILE`"
        )
    mirror = host_mirror()
    progress(f"creating base image {recipe.name} locally: debootstrap --variant=minbase {SUITE} "
             f"from {mirror} (takes a few minutes, done once)")
    try:
        await _run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror], progress,
                   what="debootstrap")
    finally:
        _umount_below(rootfs)  # debootstrap mounts proc/sys (and may bind /dev) in the target
    _finish_debian(rootfs, recipe, mirror)
    tmp = tarball.with_suffix(".tar.part")
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        await asyncio.to_thread(_pack, rootfs, tmp)
        os.replace(tmp, tarball)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _extract(tarball: Path, rootfs: Path) -> None:
    """The cached rootfs tarball into the empty `rootfs` (owners, modes, xattrs kept)."""
    with tarfile.open(tarball, "r:") as tf:
        extract_tar(tf, str(rootfs))


def _pack(rootfs: Path, dest: Path) -> None:
    """`rootfs` as a tarball the next image creation starts from (see `_extract`)."""
    with open(dest, "wb") as out:
        pack_dir(str(rootfs), out)


def _finish_debian(rootfs: Path, recipe: BaseRecipe, mirror: str) -> None:
    """Make the debootstrap result look like the official image."""
    for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
        p = rootfs / d
        if p.is_dir():
            for child in p.iterdir():
                if child.is_file() and child.name != "lock":
                    child.unlink()
    for f in ("var/cache/apt/pkgcache.bin", "var/cache/apt/srcpkgcache.bin"):
        with contextlib.suppress(FileNotFoundError):
            (rootfs / f).unlink()
    for f in ("var/log/bootstrap.log", "etc/machine-id", "var/lib/dbus/machine-id"):
        with contextlib.suppress(FileNotFoundError):
            (rootfs / f).write_text("") if f == "etc/machine-id" else (rootfs / f).unlink()
    (rootfs / "etc/hostname").write_text("localhost\n")
    (rootfs / "etc/resolv.conf").unlink(missing_ok=True)
    (rootfs / "etc/resolv.conf").write_text("")
    # the host's mirror for bookworm, -updates and -security, as the official image has
    with contextlib.suppress(FileNotFoundError):
        (rootfs / "etc/apt/sources.list").unlink()
    security = mirror.rsplit("/", 1)[0] + "/debian-security" if mirror.endswith("/debian") else "http://deb.debian.org/debian-security"
    (rootfs / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {mirror}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security}\nSuites: {SUITE}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    (rootfs / "etc/apt/apt.conf.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN)
    (rootfs / "etc/apt/apt.conf.d/docker-no-languages").write_text(APT_NO_LANGUAGES)
    if recipe.slim:
        (rootfs / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
        (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(SLIM_DPKG_CFG)
        _slim(rootfs)


def _slim(rootfs: Path) -> None:
    share = rootfs / "usr/share"
    for d in ("man", "groff", "info", "lintian", "linda"):
        if (share / d).is_dir():
            _empty_dir(share / d)
    if (share / "doc").is_dir():
        for pkg in (share / "doc").iterdir():
            if pkg.is_dir() and not pkg.is_symlink():
                for child in pkg.iterdir():
                    if child.name != "copyright":
                        _remove_tree(child)
    if (share / "locale").is_dir():
        for child in (share / "locale").iterdir():
            if child.name != "locale.alias":
                _remove_tree(child)


def _empty_dir(d: Path) -> None:
    for child in d.iterdir():
        _remove_tree(child)


def _remove_tree(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.exists():
        _umount_below(p)
        shutil.rmtree(p)


def _umount_below(path: Path) -> None:
    """Lazily unmount everything mounted at or below `path`, deepest first."""
    prefix = os.path.realpath(path)
    targets = []
    with open("/proc/self/mounts") as f:
        for line in f:
            target = line.split()[1].replace("\\040", " ")
            if target == prefix or target.startswith(prefix + "/"):
                targets.append(target)
    for target in sorted(targets, key=len, reverse=True):
        with contextlib.suppress(StorageError):  # busy or gone: rmtree says what is left
            detach(target)


async def _run(argv: list[str], progress: Progress, *, what: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL
    )
    tail: list[str] = []
    assert proc.stdout is not None
    try:
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            tail = (tail + [line])[-20:]
            if line.startswith(("I: Retrieving", "I: Validating", "I: Extracting", "I: Unpacking", "I: Configuring")):
                continue  # debootstrap's per-package chatter
            progress(line)
        rc = await proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if rc != 0:
        raise BuildError(f"{what} failed (exit code {rc}): " + " | ".join(tail[-5:]), exit_code=rc,
                         output="\n".join(tail))
