"""COPY and ADD in Python: write the files a step adds into the step's upper directory.

The upper directory is the step's diff (overlay format) and becomes its layer. Parent
directories that exist in the image are recreated in the upper dir with the image's
owner and mode (an upper dir's metadata wins in the merged view), and destination paths
are resolved through the image's symlinks (Debian's `/bin -> usr/bin`), so a COPY never
replaces a symlink of the base with a directory.

Ownership: files from the build context become 0:0 unless `--chown`; files from another
stage or image and from an archive keep their owners unless `--chown` (Docker's rules).
`--chown=user` alone uses the user's uid as gid too (Docker's documented behaviour).
"""
from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runtime.images.build.errors import BuildError
from runtime.images.build.rootview import RootView


def _chown(path: Path, uid: int, gid: int) -> None:
    """chown; without root only our own ids are possible, so others are left as they are
    (unit tests and rootless use; the engine builds as root)."""
    try:
        os.chown(path, uid, gid, follow_symlinks=False)
    except PermissionError:
        if os.geteuid() == 0:
            raise


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


def _lookup_id(text: str | None, name: str) -> int | None:
    if not text:
        return None
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    return None


def resolve_chown(spec: str, view: RootView) -> Owner:
    """`user[:group]` (names or numbers) against the image's /etc/passwd and /etc/group."""
    user, _, group = spec.partition(":")
    if not user:
        raise BuildError(f"invalid --chown={spec!r}: use USER[:GROUP]")
    if user.isdigit():
        uid = int(user)
    else:
        found = _lookup_id(view.read_text("/etc/passwd"), user)
        if found is None:
            raise BuildError(f"--chown={spec}: no user {user!r} in the image's /etc/passwd: "
                             "create it first (RUN useradd/adduser) or use a numeric uid")
        uid = found
    if not group:
        return Owner(uid, uid)
    if group.isdigit():
        return Owner(uid, int(group))
    gid = _lookup_id(view.read_text("/etc/group"), group)
    if gid is None:
        raise BuildError(f"--chown={spec}: no group {group!r} in the image's /etc/group: "
                         "create it first (RUN groupadd/addgroup) or use a numeric gid")
    return Owner(uid, gid)


class UpperWriter:
    """Writes entries into `upper` at image paths, mirroring the image's parent dirs."""

    def __init__(self, upper: Path, view: RootView) -> None:
        self.upper = upper
        self.view = view
        self._dir_map: dict[str, str] = {}  # image dir path as named -> resolved path

    def real_dir(self, rel: str) -> str:
        """Where directory `rel` (relative, clean) really is in the image."""
        if rel in ("", "."):
            return ""
        if rel not in self._dir_map:
            parent, name = posixpath.split(rel)
            base = self.real_dir(parent)
            cand = f"{base}/{name}" if base else name
            up = self.upper / cand
            if not up.is_dir() or up.is_symlink():
                entry = self.view.lookup(cand, follow_last=False)
                if entry is not None and entry.is_symlink():
                    cand = self.view.resolve(cand)
            self._dir_map[rel] = cand
        return self._dir_map[rel]

    def ensure_dir(self, rel: str, owner: Owner | None = None, mode: int = 0o755) -> Path:
        """Create directory `rel` (and parents) in the upper dir; returns its host path.
        Dirs the image has keep the image's metadata; new ones get `owner`/`mode` (parents
        of a new dir: root, 0755)."""
        real = self.real_dir(rel)
        path = self.upper
        parts = [p for p in real.split("/") if p]
        for i, comp in enumerate(parts):
            path = path / comp
            if path.is_dir() and not path.is_symlink():
                continue
            if path.exists() or path.is_symlink():
                path.unlink()  # a file of an earlier source in this step: a dir replaces it
            sub = "/".join(parts[: i + 1])
            st = self.view.lstat(sub)
            os.mkdir(path)
            if st is not None and stat.S_ISDIR(st.st_mode):
                _chown(path, st.st_uid, st.st_gid)
                os.chmod(path, stat.S_IMODE(st.st_mode))
            elif i == len(parts) - 1:
                _chown(path, *((owner.uid, owner.gid) if owner else (0, 0)))
                os.chmod(path, mode)
            else:
                _chown(path, 0, 0)
                os.chmod(path, 0o755)
        return path

    def target(self, rel: str) -> Path:
        """Host path for a non-directory entry at image path `rel` (parent created)."""
        parent, name = posixpath.split(rel)
        d = self.ensure_dir(parent)
        t = d / name
        if t.is_dir() and not t.is_symlink():
            shutil.rmtree(t)
        elif t.exists() or t.is_symlink():
            t.unlink()
        return t


@dataclass(frozen=True)
class Entry:
    """One thing to copy: `sub` is its path below the copied source ('' = the source itself)."""

    sub: str
    host: Path
    st: os.stat_result


def copy_entries(
    writer: UpperWriter,
    entries: Iterable[Entry],
    dest: str,
    *,
    owner: Owner | None,
    chmod: int | None,
    keep_owner: bool,
) -> int:
    """Copy `entries` under image dir `dest` (relative), or to file `dest` for a single
    non-directory entry with sub == '' and `dest` not a dir. Returns files written."""
    count = 0
    for e in entries:
        rel = posixpath.join(dest, e.sub) if e.sub else dest
        kind = stat.S_IFMT(e.st.st_mode)
        uid, gid = (owner.uid, owner.gid) if owner else ((e.st.st_uid, e.st.st_gid) if keep_owner else (0, 0))
        mode = chmod if chmod is not None else stat.S_IMODE(e.st.st_mode)
        if kind == stat.S_IFDIR:
            if e.sub:
                path = writer.ensure_dir(rel)
                _chown(path, uid, gid)
                os.chmod(path, mode)
            else:
                writer.ensure_dir(rel, Owner(uid, gid) if (owner or keep_owner) else None)
            continue
        t = writer.target(rel)
        if kind == stat.S_IFREG:
            shutil.copyfile(e.host, t, follow_symlinks=False)
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(e.host), t)
        elif kind in (stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK):
            os.mknod(t, e.st.st_mode, e.st.st_rdev)
        else:
            continue  # sockets are not copied (as Docker)
        _chown(t, uid, gid)
        if kind != stat.S_IFLNK:
            os.chmod(t, mode)
        os.utime(t, ns=(e.st.st_atime_ns, e.st.st_mtime_ns), follow_symlinks=False)
        count += 1
    return count


def is_archive(path: Path) -> bool:
    """A local tar, tar.gz, tar.bz2 or tar.xz that ADD extracts (detected by content)."""
    if not path.is_file():
        return False
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError):
        return False


def extract_archive(archive: Path, tmp_parent: Path) -> Path:
    """Extract `archive` into a new temp dir under `tmp_parent` (safely: no absolute names,
    no `..`, no links out; owners kept). The caller removes the dir."""
    out = Path(tempfile.mkdtemp(prefix="add-", dir=tmp_parent))
    try:
        with tarfile.open(archive) as tf:
            tf.extractall(out, numeric_owner=True, filter="tar")
    except (tarfile.TarError, OSError) as e:
        shutil.rmtree(out, ignore_errors=True)
        raise BuildError(f"ADD: cannot extract {archive.name}: {e}") from e
    return out


def entries_of_dir(root: Path, sub_prefix: str = "") -> Iterable[Entry]:
    """Entries of a host directory tree (parents first), for extracted archives."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        yield Entry(rel_dir, Path(dirpath), os.lstat(dirpath))
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            yield Entry(f"{rel_dir}/{name}" if rel_dir else name, p, os.lstat(p))
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
